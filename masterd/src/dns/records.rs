//! The records Mesos-DNS would generate from this master's state (`records/generator.go`): what is
//! taken from the state under its lock ([`Snapshot`]), and the name table built from it
//! ([`Records`]), A/AAAA and SRV by fully qualified, lowercased name with the trailing dot.

use super::names::{self, LabelSpec};
use crate::cluster::ClusterState;
use crate::store::records::AgentLifecycle;
use gantry_proto::TaskState;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The framework every Gantry task belongs to, as `/master/state` names it.
pub const FRAMEWORK: &str = "marathon";

/// An agent as Mesos-DNS reads it (`slaves[]`: id, and the pid's host and port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub id: String,
    pub hostname: String,
    pub port: u16,
}

/// A TASK_RUNNING task as Mesos-DNS reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    pub task_id: String,
    pub app_id: String,
    pub agent_id: String,
    /// Host ports (`resources.ports`).
    pub ports: Vec<u16>,
}

/// What records are made of, copied out of the state under its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The leading master (this one): `leader` in `/master/state`.
    pub leader: SocketAddr,
    /// The DNS server's own address, for `ns1.<domain>` (the leader's when unknown).
    pub nameserver: Option<IpAddr>,
    pub agents: Vec<AgentView>,
    pub tasks: Vec<TaskView>,
}

impl Snapshot {
    /// Agents that are not gone, and the tasks in TASK_RUNNING (the only ones Mesos-DNS names).
    pub fn take(st: &ClusterState, leader: SocketAddr, nameserver: Option<IpAddr>) -> Self {
        let agents = st
            .agents
            .values()
            .filter(|a| a.record.lifecycle != AgentLifecycle::Gone)
            .map(|a| AgentView {
                id: a.record.id.to_string(),
                hostname: a.record.info.hostname.clone(),
                port: a.record.info.port,
            })
            .collect();
        let tasks = st
            .tasks()
            .values()
            .filter(|t| t.state == TaskState::TaskRunning)
            // Marathon's tasks (the `marathon` framework); job runs are not named.
            .filter_map(|t| Some((t, t.app_id()?)))
            .map(|(t, app_id)| TaskView {
                task_id: t.info.task_id.to_string(),
                app_id: app_id.to_owned(),
                agent_id: t.info.agent_id.to_string(),
                ports: t.info.ports.clone(),
            })
            .collect();
        Snapshot {
            leader,
            nameserver,
            agents,
            tasks,
        }
    }
}

/// The records of one name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// A (IPv4) and AAAA (IPv6) addresses, in the order generated, without repeats.
    pub ips: Vec<IpAddr>,
    /// SRV targets (fully qualified) and ports, in the order generated, without repeats.
    pub srv: Vec<(String, u16)>,
}

/// Every name Mesos-DNS would serve under the domain.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// The domain, lowercased, with the trailing dot (`mesos.`).
    pub domain: String,
    names: HashMap<String, Entry>,
}

/// Host names looked up, with when and what was found.
type HostCache = HashMap<String, (Instant, Option<IpAddr>)>;

/// The IP of a host as Mesos-DNS takes it: the literal, or the host name resolved (IPv4 first).
/// Lookups are remembered for a minute.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    static CACHE: OnceLock<Mutex<HostCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(c) = cache.lock() {
        if let Some((at, ip)) = c.get(host) {
            if at.elapsed() < Duration::from_secs(60) {
                return *ip;
            }
        }
    }
    let found: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.ip()).collect())
        .unwrap_or_default();
    let ip = found
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(found.first())
        .copied();
    if let Ok(mut c) = cache.lock() {
        c.insert(host.to_owned(), (Instant::now(), ip));
    }
    ip
}

impl Records {
    /// The records of `snap` under `domain` (Mesos-DNS's generator, with RFC 1123 labels unless
    /// `spec` says otherwise). May resolve agents' host names: call off the async workers.
    pub fn build(snap: &Snapshot, domain: &str, spec: LabelSpec) -> Records {
        let mut r = Records {
            domain: format!("{}.", domain.trim_matches('.').to_lowercase()),
            names: HashMap::new(),
        };
        let d = r.domain.clone();
        let leader_ip = snap.leader.ip();
        let port = snap.leader.port();
        r.a(&format!("leader.{d}"), leader_ip);
        for proto in ["_tcp", "_udp"] {
            r.srv(
                &format!("_leader.{proto}.{d}"),
                &format!("leader.{d}"),
                port,
            );
        }
        r.a(&format!("master.{d}"), leader_ip);
        r.a(&format!("master0.{d}"), leader_ip);
        let fw = spec.domain_frag(FRAMEWORK);
        r.a(&format!("{fw}.{d}"), leader_ip);
        r.srv(
            &format!("_framework._tcp.{fw}.{d}"),
            &format!("{fw}.{d}"),
            port,
        );
        r.a(&format!("ns1.{d}"), snap.nameserver.unwrap_or(leader_ip));

        let mut agent_ips: HashMap<&str, IpAddr> = HashMap::new();
        for a in &snap.agents {
            let Some(ip) = host_ip(&a.hostname) else {
                tracing::debug!(agent = %a.id, host = %a.hostname, "agent host has no IP: no records");
                continue;
            };
            agent_ips.insert(&a.id, ip);
            r.a(&format!("slave.{d}"), ip);
            r.srv(&format!("_slave._tcp.{d}"), &format!("slave.{d}"), a.port);
            // Gantry: each agent by its host name too, when that is a name and not an IP.
            if a.hostname.parse::<IpAddr>().is_err() {
                let host = spec.domain_frag(&a.hostname);
                if !host.is_empty() {
                    r.a(&format!("{host}.slave.{d}"), ip);
                }
            }
        }
        for t in &snap.tasks {
            let label = names::task_label(spec, &t.app_id);
            if label.is_empty() {
                continue;
            }
            let canonical = names::canonical(&label, &t.task_id, &t.agent_id);
            // Task IP sources netinfo, mesos, host: Gantry's tasks share their agent's address.
            if let Some(ip) = agent_ips.get(t.agent_id.as_str()).copied() {
                r.a(&format!("{label}.{fw}.{d}"), ip);
                r.a(&format!("{canonical}.{fw}.{d}"), ip);
                r.a(&format!("{label}.{fw}.slave.{d}"), ip);
                r.a(&format!("{canonical}.{fw}.slave.{d}"), ip);
            }
            let target = format!("{canonical}.{fw}.slave.{d}");
            for &p in &t.ports {
                for sub in [".slave", ""] {
                    for proto in ["_tcp", "_udp"] {
                        r.srv(&format!("_{label}.{proto}.{fw}{sub}.{d}"), &target, p);
                    }
                }
            }
        }
        r
    }

    fn a(&mut self, name: &str, ip: IpAddr) {
        let e = self.names.entry(name.to_owned()).or_default();
        if !e.ips.contains(&ip) {
            e.ips.push(ip);
        }
    }

    fn srv(&mut self, name: &str, target: &str, port: u16) {
        let e = self.names.entry(name.to_owned()).or_default();
        let t = (target.to_owned(), port);
        if !e.srv.contains(&t) {
            e.srv.push(t);
        }
    }

    /// The records of `name` (any case, with or without the trailing dot).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.names.get(&fqdn(name))
    }

    /// True when `name` is the domain or under it.
    pub fn in_domain(&self, name: &str) -> bool {
        let n = fqdn(name);
        n == self.domain || n.ends_with(&format!(".{}", self.domain))
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// `name` lowercased with one trailing dot.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            leader: "10.0.0.1:5050".parse().unwrap(),
            nameserver: None,
            agents: vec![
                AgentView {
                    id: "a-S0".into(),
                    hostname: "10.0.0.2".into(),
                    port: 5051,
                },
                AgentView {
                    id: "a-S1".into(),
                    hostname: "10.0.0.3".into(),
                    port: 5051,
                },
            ],
            tasks: vec![
                TaskView {
                    task_id: "group_web.instance-1._app.1".into(),
                    app_id: "/group/web".into(),
                    agent_id: "a-S0".into(),
                    ports: vec![31000, 31001],
                },
                TaskView {
                    task_id: "group_web.instance-2._app.1".into(),
                    app_id: "/group/web".into(),
                    agent_id: "a-S1".into(),
                    ports: vec![31005],
                },
            ],
        }
    }

    #[test]
    fn mesos_dns_names_for_tasks_agents_and_masters() {
        let r = Records::build(&snap(), "Mesos", LabelSpec::Rfc1123);
        let ips = |n: &str| {
            r.get(n)
                .map(|e| e.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(ips("web-group.marathon.mesos"), ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            ips("web-group.marathon.slave.mesos."),
            ["10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(ips("LEADER.mesos"), ["10.0.0.1"]);
        assert_eq!(ips("master.mesos"), ["10.0.0.1"]);
        assert_eq!(ips("master0.mesos"), ["10.0.0.1"]);
        assert_eq!(ips("marathon.mesos"), ["10.0.0.1"]);
        assert_eq!(ips("ns1.mesos"), ["10.0.0.1"]);
        assert_eq!(ips("slave.mesos"), ["10.0.0.2", "10.0.0.3"]);
        let c0 = names::canonical("web-group", "group_web.instance-1._app.1", "a-S0");
        assert!(c0.ends_with("-s0"), "{c0}");
        assert_eq!(ips(&format!("{c0}.marathon.mesos")), ["10.0.0.2"]);
        assert_eq!(ips(&format!("{c0}.marathon.slave.mesos")), ["10.0.0.2"]);
        let target = format!("{c0}.marathon.slave.mesos.");
        for name in [
            "_web-group._tcp.marathon.mesos",
            "_web-group._udp.marathon.mesos",
            "_web-group._tcp.marathon.slave.mesos",
            "_web-group._udp.marathon.slave.mesos",
        ] {
            let srv = &r.get(name).unwrap().srv;
            assert_eq!(srv.len(), 3, "{name}: {srv:?}");
            assert_eq!(srv[0], (target.clone(), 31000));
            assert_eq!(srv[1], (target.clone(), 31001));
            assert_eq!(srv[2].1, 31005);
        }
        assert_eq!(
            r.get("_leader._tcp.mesos").unwrap().srv,
            [("leader.mesos.".to_string(), 5050)]
        );
        assert_eq!(
            r.get("_slave._tcp.mesos").unwrap().srv,
            [("slave.mesos.".to_string(), 5051)]
        );
        assert_eq!(
            r.get("_framework._tcp.marathon.mesos").unwrap().srv,
            [("marathon.mesos.".to_string(), 5050)]
        );
        assert!(r.get("nothing.marathon.mesos").is_none());
        assert!(r.in_domain("x.Mesos.") && r.in_domain("mesos") && !r.in_domain("mesos.org"));
    }

    #[test]
    fn only_agents_with_an_address_get_task_addresses() {
        let mut s = snap();
        s.agents[1].hostname = "no-such-host.invalid".into();
        let r = Records::build(&s, "mesos", LabelSpec::Rfc1123);
        assert_eq!(r.get("web-group.marathon.mesos").unwrap().ips.len(), 1);
        assert_eq!(
            r.get("_web-group._tcp.marathon.mesos").unwrap().srv.len(),
            3
        );
    }
}
