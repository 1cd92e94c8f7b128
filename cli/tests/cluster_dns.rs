//! Whole-cluster tests of the built-in Mesos-DNS (`gantry-masterd --dns-listen`): real master and
//! agents on loopback, real DNS queries from hickory's client to the master's DNS port (UDP and
//! TCP), the records following tasks within a second, upstream forwarding to a DNS server started
//! by the test, and Mesos-DNS's HTTP API in its shapes.

mod dns;
mod support;

use gantry_masterd::dns::names;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:512;disk:100;ports:[31000-31010]";

/// A loopback port free for both UDP and TCP right now.
fn free_dns_port() -> u16 {
    loop {
        let port = support::free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A master with DNS on a free port and the given upstream resolvers.
fn dns_cluster(resolvers: &str) -> (Cluster, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_dns_port()));
    let a = addr.to_string();
    let c = Cluster::with_master_flags(&["--dns-listen", &a, "--dns-resolvers", resolvers]);
    (c, addr)
}

/// The SRV targets (canonical names) and host ports the tasks of `app` should have.
fn expected_srv(tasks: &[Value], label: &str) -> Vec<(String, u16)> {
    let mut want: Vec<(String, u16)> = tasks
        .iter()
        .flat_map(|t| {
            let id = t["id"].as_str().unwrap_or_default();
            let agent = t["slaveId"].as_str().unwrap_or_default();
            let target = format!(
                "{}.marathon.slave.mesos.",
                names::canonical(label, id, agent)
            );
            t["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(move |p| (target.clone(), p as u16))
        })
        .collect();
    want.sort();
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_and_srv_follow_a_three_instance_app_within_a_second() {
    let (mut c, dns_addr) = dns_cluster("");
    for i in 0..3 {
        c.start_agent(i, AGENT);
    }
    c.wait_agents(3).await;
    let app = json!({"id": "/group/web", "cmd": "sleep 3600", "instances": 3, "cpus": 0.1,
                     "mem": 16, "env": c.marker_env(), "backoffSeconds": 1,
                     "portDefinitions": [{"port": 0, "name": "http"}]});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let tasks = c.wait_running("group/web", 3).await;
    let mut udp = dns::udp_client(dns_addr);
    let mut tcp = dns::tcp_client(dns_addr).await;
    let want = expected_srv(&tasks, "web-group");
    assert_eq!(want.len(), 3, "{tasks:?}");

    // Records may lag the HTTP API by one refresh: wait for them, then check every name.
    let r = eventually(Duration::from_secs(2), "the SRV records", || {
        let (mut udp, want) = (udp.clone(), want.clone());
        async move {
            let r = dns::query(&mut udp, "_web-group._tcp.marathon.mesos.", RecordType::SRV).await;
            (dns::srv(&r) == want).then_some(r)
        }
    })
    .await;
    assert!(r.metadata.authoritative);
    assert_eq!(r.answers[0].ttl, 60, "Mesos-DNS's default TTL");
    let hosts: BTreeSet<String> = tasks
        .iter()
        .filter_map(|t| t["host"].as_str().map(String::from))
        .collect();
    for name in [
        "web-group.marathon.mesos.",
        "web-group.marathon.slave.mesos.",
    ] {
        let r = dns::query(&mut udp, name, RecordType::A).await;
        assert_eq!(dns::code(&r), ResponseCode::NoError, "{name}");
        let got: BTreeSet<String> = dns::a_ips(&r).into_iter().collect();
        assert_eq!(got, hosts, "{name}");
    }
    for name in [
        "_web-group._udp.marathon.mesos.",
        "_web-group._tcp.marathon.slave.mesos.",
        "_web-group._udp.marathon.slave.mesos.",
    ] {
        let r = dns::query(&mut tcp, name, RecordType::SRV).await;
        assert_eq!(dns::srv(&r), want, "{name} over TCP");
    }
    for (target, _) in &want {
        let r = dns::query(&mut udp, target, RecordType::A).await;
        assert_eq!(dns::a_ips(&r), ["127.0.0.1"], "{target}");
    }

    // The HTTP API, in Mesos-DNS's shapes.
    let h = c.get("/v1/hosts/web-group.marathon.mesos").await;
    assert_eq!(
        h,
        json!([{"host": "web-group.marathon.mesos.", "ip": "127.0.0.1"}])
    );
    let s = c.get("/v1/services/_web-group._tcp.marathon.mesos.").await;
    let mut got: Vec<(String, u16)> = s
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| {
            assert_eq!(e["service"], "_web-group._tcp.marathon.mesos.");
            assert_eq!(e["ip"], "127.0.0.1");
            let port = e["port"].as_str().expect("the port is a string");
            (
                e["host"].as_str().unwrap_or_default().to_string(),
                port.parse().expect("a port number"),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);

    // Kill one task (the app replaces it); poll the API and DNS every 50 ms.
    let victim = tasks[0]["id"].as_str().expect("task id").to_string();
    let victim_target = want
        .iter()
        .find(|(t, _)| {
            t.starts_with(&names::canonical(
                "web-group",
                &victim,
                tasks[0]["slaveId"].as_str().unwrap_or_default(),
            ))
        })
        .expect("the victim's SRV target")
        .0
        .clone();
    let del = c
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/apps/group/web/tasks/{victim}"),
        )
        .send()
        .await
        .expect("DELETE reaches the master");
    assert!(del.status().is_success(), "{}", del.status());
    let start = Instant::now();
    let (mut gone_api, mut gone_dns, mut new_api, mut new_dns) = (None, None, None, None);
    let mut replacement: Option<(String, String)> = None;
    while start.elapsed() < Duration::from_secs(30) {
        let now = start.elapsed();
        let t = c.tasks("group/web").await;
        let running: Vec<&Value> = t.iter().filter(|t| t["state"] == "TASK_RUNNING").collect();
        if gone_api.is_none() && !running.iter().any(|t| t["id"] == victim.as_str()) {
            gone_api = Some(now);
        }
        if replacement.is_none() {
            replacement = running
                .iter()
                .find(|t| !tasks.iter().any(|o| o["id"] == t["id"]))
                .map(|t| {
                    new_api = Some(now);
                    let id = t["id"].as_str().unwrap_or_default().to_string();
                    let agent = t["slaveId"].as_str().unwrap_or_default();
                    let target = format!(
                        "{}.marathon.slave.mesos.",
                        names::canonical("web-group", &id, agent)
                    );
                    (id, target)
                });
        }
        let r = dns::query(&mut udp, "_web-group._tcp.marathon.mesos.", RecordType::SRV).await;
        let targets: Vec<String> = dns::srv(&r).into_iter().map(|(t, _)| t).collect();
        if gone_dns.is_none() && !targets.contains(&victim_target) {
            gone_dns = Some(start.elapsed());
        }
        if let Some((_, target)) = &replacement {
            if new_dns.is_none() && targets.contains(target) {
                new_dns = Some(start.elapsed());
            }
        }
        if gone_api.is_some() && gone_dns.is_some() && new_dns.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (gone_api, gone_dns) = (gone_api.expect("the task ended"), gone_dns.expect("gone"));
    let (new_api, new_dns) = (new_api.expect("a replacement"), new_dns.expect("in DNS"));
    eprintln!(
        "killed task left DNS {:?} after the API, replacement entered {:?} after",
        gone_dns.saturating_sub(gone_api),
        new_dns.saturating_sub(new_api)
    );
    assert!(
        gone_dns <= gone_api + Duration::from_secs(1),
        "the killed task's record went {gone_dns:?} (API: {gone_api:?})"
    );
    assert!(
        new_dns <= new_api + Duration::from_secs(1),
        "the replacement's record came {new_dns:?} (API: {new_api:?})"
    );
    let r = dns::query(&mut udp, "_web-group._tcp.marathon.mesos.", RecordType::SRV).await;
    assert_eq!(dns::srv(&r).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_nxdomain_others_forwarded_and_the_http_api() {
    let upstream = dns::start_upstream().await;
    let (mut c, dns_addr) = dns_cluster(&upstream.to_string());
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let mut udp = dns::udp_client(dns_addr);

    for name in [
        "nope.marathon.mesos.",
        "a.b.c.mesos.",
        "web.marathon.slave.mesos.",
    ] {
        let r = dns::query(&mut udp, name, RecordType::A).await;
        assert_eq!(dns::code(&r), ResponseCode::NXDomain, "{name}");
        assert!(r.metadata.authoritative, "{name}");
        assert!(
            r.authorities
                .iter()
                .any(|a| a.record_type() == RecordType::SOA),
            "the domain's SOA comes with NXDOMAIN"
        );
    }
    for name in [
        "leader.mesos.",
        "master.mesos.",
        "master0.mesos.",
        "marathon.mesos.",
    ] {
        let r = dns::query(&mut udp, name, RecordType::A).await;
        assert_eq!(dns::a_ips(&r), ["127.0.0.1"], "{name}");
    }
    let r = dns::query(&mut udp, "_leader._tcp.mesos.", RecordType::SRV).await;
    assert_eq!(dns::srv(&r), [("leader.mesos.".to_string(), c.port)]);
    let slave = eventually(Duration::from_secs(2), "slave.mesos", || {
        let mut udp = udp.clone();
        async move {
            let r = dns::query(&mut udp, "slave.mesos.", RecordType::A).await;
            (!r.answers.is_empty()).then_some(r)
        }
    })
    .await;
    assert_eq!(dns::a_ips(&slave), ["127.0.0.1"]);
    // A name that exists with no record of the type asked: NOERROR, no answers.
    let r = dns::query(&mut udp, "leader.mesos.", RecordType::AAAA).await;
    assert_eq!(dns::code(&r), ResponseCode::NoError);
    assert!(r.answers.is_empty());

    // Forwarded: the upstream's one name, and its NXDOMAIN for others.
    let r = dns::query(&mut udp, dns::UPSTREAM_NAME, RecordType::A).await;
    assert_eq!(dns::code(&r), ResponseCode::NoError);
    assert_eq!(dns::a_ips(&r), [dns::UPSTREAM_IP.to_string()]);
    assert!(!r.metadata.authoritative);
    let r = dns::query(&mut udp, "other.example.", RecordType::A).await;
    assert_eq!(dns::code(&r), ResponseCode::NXDomain);
    let mut tcp = dns::tcp_client(dns_addr).await;
    let r = dns::query(&mut tcp, dns::UPSTREAM_NAME, RecordType::A).await;
    assert_eq!(dns::a_ips(&r), [dns::UPSTREAM_IP.to_string()], "over TCP");

    // Mesos-DNS's HTTP API.
    let v = c.get("/v1/version").await;
    assert_eq!(v["Service"], "Mesos-DNS");
    assert!(v["Version"].is_string() && v["URL"].is_string(), "{v}");
    let cfg = c.get("/v1/config").await;
    assert_eq!(cfg["Domain"], "mesos");
    assert_eq!(cfg["TTL"], 60);
    assert_eq!(cfg["Port"], dns_addr.port());
    assert_eq!(cfg["Resolvers"], json!(["127.0.0.1"]));
    assert_eq!(cfg["DNSOn"], true);
    assert_eq!(
        c.get("/v1/hosts/leader.mesos").await,
        json!([{"host": "leader.mesos.", "ip": "127.0.0.1"}])
    );
    assert_eq!(
        c.get("/v1/hosts/nope.mesos").await,
        json!([{"host": "", "ip": ""}])
    );
    assert_eq!(
        c.get("/v1/services/_leader._tcp.mesos").await,
        json!([{"service": "_leader._tcp.mesos.", "host": "leader.mesos.", "ip": "127.0.0.1",
                "port": c.port.to_string()}])
    );
    assert_eq!(
        c.get("/v1/services/_nope._tcp.marathon.mesos").await,
        json!([{"service": "", "host": "", "ip": "", "port": ""}])
    );
    // Like every GET, the API needs credentials.
    let anon = reqwest::get(format!("{}/v1/hosts/leader.mesos", c.url()))
        .await
        .expect("the master answers");
    assert_eq!(anon.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resolvers_other_names_are_refused() {
    let (c, dns_addr) = dns_cluster("");
    c.wait_agents(0).await;
    let mut udp = dns::udp_client(dns_addr);
    let r = dns::query(&mut udp, "example.com.", RecordType::A).await;
    assert_eq!(dns::code(&r), ResponseCode::Refused);
    let r = dns::query(&mut udp, "leader.mesos.", RecordType::A).await;
    assert_eq!(dns::a_ips(&r), ["127.0.0.1"]);
    assert!(!r.metadata.recursion_available);
}
