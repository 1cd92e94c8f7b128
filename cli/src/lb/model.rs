//! What the load balancer serves, from the master's `GET /v2/apps?embed=apps.tasks`: one
//! [`Service`] per exposed app port (its service port, labels, health check) with the running,
//! healthy tasks behind it as [`Server`]s. Pure: host names are resolved by a function passed in.

use super::labels::{self, Mode, PortLabels};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// One exposed app port.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub app_id: String,
    /// The port's index in the app's port definitions (the `n` of `HAPROXY_{n}_*`).
    pub index: usize,
    pub service_port: u16,
    /// The frontend's and backend's name: the app id's path with `_` for `/`, then the port.
    pub name: String,
    pub mode: Mode,
    pub labels: PortLabels,
    pub check: Option<Check>,
    /// Sorted by address and port, so that the same tasks render the same config.
    pub servers: Vec<Server>,
}

/// An HAProxy health check translated from the app's Marathon health check of this port.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// `Some(path)` for HTTP(S) checks (`option httpchk`), `None` for TCP (a connect).
    pub http_path: Option<String>,
    pub https: bool,
    pub interval_s: u64,
    pub timeout_s: u64,
    /// Failures before HAProxy takes the server out (Marathon's `maxConsecutiveFailures` + 1).
    pub fall: u64,
    /// The port index the check probes when it is not this service's own port.
    pub port_index: usize,
}

/// One task behind a service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Server {
    pub addr: IpAddr,
    pub port: u16,
    /// The host port the health check probes, when it is another port of the task.
    pub check_port: Option<u16>,
    /// A task whose health checks have not reported yet: an HAProxy `backup` server, used only
    /// while no healthy task is left (the moments between a rolling upgrade killing the last
    /// old task and the next reload).
    pub backup: bool,
    pub task_id: String,
}

impl Server {
    /// `10_0_0_1_31005`: HAProxy server names are unique per backend and stable across reloads.
    pub fn name(&self) -> String {
        sanitize(&format!("{}_{}", self.addr, self.port))
    }
}

/// Which apps a load balancer serves and how it reads their tasks.
pub struct Selection<'a> {
    /// `HAPROXY_GROUP` to serve; `*` for every app.
    pub group: &'a str,
    /// Route only tasks whose health checks pass when the app has health checks.
    pub require_healthy: bool,
}

/// Characters HAProxy accepts in proxy and server names; everything else becomes `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The services of `apps` (the JSON of `/v2/apps?embed=apps.tasks`) for `sel`, sorted by service
/// port, and warnings about what was left out (bad labels, a service port used twice, hosts that
/// do not resolve, unsupported labels).
pub fn services(
    apps: &Value,
    sel: &Selection<'_>,
    resolve: &mut dyn FnMut(&str) -> Option<IpAddr>,
) -> (Vec<Service>, Vec<String>) {
    let mut out: Vec<Service> = Vec::new();
    let mut warnings = Vec::new();
    let mut list: Vec<&Value> = apps["apps"].as_array().into_iter().flatten().collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut taken = BTreeSet::new();
    for app in list {
        let Some(id) = app["id"].as_str() else {
            continue;
        };
        let ports = service_ports(app);
        let unsupported = labels::unsupported(&app["labels"]);
        let mut exposed = false;
        for (n, declared) in ports.iter().enumerate() {
            let l = match PortLabels::read(&app["labels"], n) {
                Ok(l) => l,
                Err(e) => {
                    warnings.push(format!("{id} port {n} left out: {e}"));
                    continue;
                }
            };
            if !l.in_group(sel.group) || !l.enabled {
                continue;
            }
            let Some(service_port) = l.port.or(*declared) else {
                warnings.push(format!("{id} port {n} left out: it has no service port"));
                continue;
            };
            if !taken.insert(service_port) {
                warnings.push(format!(
                    "{id} port {n} left out: service port {service_port} is already another app's"
                ));
                continue;
            }
            exposed = true;
            let check = check_of(app, n);
            let servers = servers_of(app, n, check.as_ref(), sel, resolve, &mut warnings);
            let mode = l.mode.unwrap_or(match check {
                Some(Check {
                    http_path: Some(_), ..
                }) => Mode::Http,
                _ if !l.vhosts.is_empty() => Mode::Http,
                _ => Mode::Tcp,
            });
            out.push(Service {
                app_id: id.to_string(),
                index: n,
                service_port,
                name: sanitize(&format!("{}_{service_port}", id.trim_start_matches('/'))),
                mode,
                labels: l,
                check,
                servers,
            });
        }
        if exposed && !unsupported.is_empty() {
            warnings.push(format!(
                "{id}: labels not supported by gantry lb, ignored: {}",
                unsupported.join(", ")
            ));
        }
    }
    out.sort_by_key(|s| s.service_port);
    (out, warnings)
}

/// The app's service ports by index (`None` where a definition has none): `portDefinitions`
/// (host networking), else the container's `portMappings` (bridge and container networks), else
/// the legacy `ports`.
fn service_ports(app: &Value) -> Vec<Option<u16>> {
    let port = |v: &Value, key: &str| v[key].as_u64().and_then(|p| u16::try_from(p).ok());
    let non_zero = |p: Option<u16>| p.filter(|&p| p > 0);
    if let Some(defs) = app["portDefinitions"].as_array().filter(|d| !d.is_empty()) {
        return defs.iter().map(|d| non_zero(port(d, "port"))).collect();
    }
    for mappings in [
        &app["container"]["portMappings"],
        &app["container"]["docker"]["portMappings"],
    ] {
        if let Some(m) = mappings.as_array().filter(|m| !m.is_empty()) {
            return m.iter().map(|d| non_zero(port(d, "servicePort"))).collect();
        }
    }
    app["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| non_zero(p.as_u64().and_then(|p| u16::try_from(p).ok())))
        .collect()
}

/// True when the app's tasks have their own IPs (a `container` network): HAProxy then dials the
/// task's first IP address and the container port instead of the host and host port.
fn on_container_network(app: &Value) -> bool {
    app["networks"][0]["mode"] == "container" || app["container"]["docker"]["network"] == "USER"
}

/// The HAProxy check for port `n`: the first HTTP, HTTPS or TCP health check (Marathon- or
/// Mesos-level) that probes this port (`portIndex`); COMMAND checks have no HAProxy form.
fn check_of(app: &Value, n: usize) -> Option<Check> {
    app["healthChecks"]
        .as_array()?
        .iter()
        .filter_map(|h| {
            let protocol = h["protocol"].as_str().unwrap_or("HTTP");
            let (http, https) = match protocol {
                "HTTP" | "MESOS_HTTP" => (true, false),
                "HTTPS" | "MESOS_HTTPS" => (true, true),
                "TCP" | "MESOS_TCP" => (false, false),
                _ => return None,
            };
            let port_index = h["portIndex"].as_u64().map_or(0, |i| i as usize);
            let secs = |k: &str, default: u64| h[k].as_u64().unwrap_or(default).max(1);
            Some(Check {
                http_path: http.then(|| {
                    h["path"]
                        .as_str()
                        .filter(|p| p.starts_with('/') && !p.contains([' ', '\n', '\r', '#']))
                        .unwrap_or("/")
                        .to_string()
                }),
                https,
                interval_s: secs("intervalSeconds", 60),
                timeout_s: secs("timeoutSeconds", 20),
                fall: h["maxConsecutiveFailures"].as_u64().unwrap_or(3) + 1,
                port_index,
            })
        })
        .find(|c| c.port_index == n)
}

/// The running (and, where the app has health checks, healthy) tasks of `app` behind port `n`.
fn servers_of(
    app: &Value,
    n: usize,
    check: Option<&Check>,
    sel: &Selection<'_>,
    resolve: &mut dyn FnMut(&str) -> Option<IpAddr>,
    warnings: &mut Vec<String>,
) -> Vec<Server> {
    let has_checks = app["healthChecks"]
        .as_array()
        .is_some_and(|h| !h.is_empty());
    let container_net = on_container_network(app);
    let container_port = |i: usize| {
        app["container"]["portMappings"][i]["containerPort"]
            .as_u64()
            .or_else(|| app["container"]["docker"]["portMappings"][i]["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
    };
    let mut out = Vec::new();
    for t in app["tasks"].as_array().into_iter().flatten() {
        if t["state"] != "TASK_RUNNING" {
            continue;
        }
        let health = if has_checks {
            health(t)
        } else {
            Health::Healthy
        };
        if sel.require_healthy && health == Health::Failing {
            continue;
        }
        let backup = sel.require_healthy && health == Health::Pending;
        let id = t["id"].as_str().unwrap_or_default().to_string();
        let host_port = |i: usize| t["ports"][i].as_u64().and_then(|p| u16::try_from(p).ok());
        let (addr, port, check_port) = if container_net {
            let ip = t["ipAddresses"][0]["ipAddress"]
                .as_str()
                .and_then(|ip| ip.parse().ok());
            let check_port = check
                .filter(|c| c.port_index != n)
                .and_then(|c| container_port(c.port_index));
            (ip, container_port(n), check_port)
        } else {
            let host = t["host"].as_str().unwrap_or_default();
            let ip = host.parse().ok().or_else(|| resolve(host));
            if ip.is_none() {
                warnings.push(format!(
                    "task {id} left out: host {host:?} does not resolve"
                ));
            }
            let check_port = check
                .filter(|c| c.port_index != n)
                .and_then(|c| host_port(c.port_index));
            (ip, host_port(n), check_port)
        };
        if let (Some(addr), Some(port)) = (addr, port) {
            out.push(Server {
                addr,
                port,
                check_port,
                backup,
                task_id: id,
            });
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.addr == b.addr && a.port == b.port);
    out
}

/// Where a task of an app with health checks stands.
#[derive(Debug, PartialEq, Eq)]
enum Health {
    /// Every check that reported passes.
    Healthy,
    /// No check has reported yet (the task is starting).
    Pending,
    /// A check fails (marathon-lb's `--health-check` takes a task out when none passes; Gantry
    /// when any fails).
    Failing,
}

fn health(t: &Value) -> Health {
    let results = t["healthCheckResults"].as_array();
    match results {
        Some(r) if r.iter().any(|h| h["alive"] == false) => Health::Failing,
        Some(r) if !r.is_empty() => Health::Healthy,
        _ => Health::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(id: &str, state: &str, port: u16, alive: Option<bool>) -> Value {
        let mut t =
            json!({"id": id, "host": "10.0.0.1", "state": state, "ports": [port, port + 1]});
        if let Some(a) = alive {
            t["healthCheckResults"] = json!([{"alive": a}]);
        }
        t
    }

    fn no_dns(_: &str) -> Option<IpAddr> {
        None
    }

    fn external() -> Selection<'static> {
        Selection {
            group: "external",
            require_healthy: true,
        }
    }

    #[test]
    fn only_running_healthy_tasks_of_the_group_are_served() {
        let apps = json!({"apps": [
            {"id": "/shop/web", "labels": {"HAPROXY_GROUP": "external"},
             "portDefinitions": [{"port": 10001}, {"port": 10002}],
             "healthChecks": [{"protocol": "HTTP", "path": "/ok", "portIndex": 0,
                               "intervalSeconds": 2, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
             "tasks": [task("a", "TASK_RUNNING", 31001, Some(true)),
                       task("b", "TASK_RUNNING", 31003, Some(false)),
                       task("c", "TASK_RUNNING", 31005, None),
                       task("d", "TASK_STAGING", 31007, Some(true)),
                       task("e", "TASK_KILLING", 31009, Some(true))]},
            {"id": "/internal", "labels": {"HAPROXY_GROUP": "internal"},
             "portDefinitions": [{"port": 10003}], "tasks": [task("f", "TASK_RUNNING", 31011, None)]},
            {"id": "/nogroup", "labels": {}, "portDefinitions": [{"port": 10004}], "tasks": []}
        ]});
        let (s, w) = services(&apps, &external(), &mut no_dns);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.len(), 2, "both ports of /shop/web: {s:?}");
        assert_eq!(s[0].name, "shop_web_10001");
        assert_eq!(s[0].mode, Mode::Http, "an HTTP check makes it http");
        let servers: Vec<(&str, bool)> = s[0]
            .servers
            .iter()
            .map(|s| (s.task_id.as_str(), s.backup))
            .collect();
        assert_eq!(
            servers,
            [("a", false), ("c", true)],
            "c has not reported: a backup"
        );
        assert_eq!(s[0].servers[0].name(), "10.0.0.1_31001");
        let c = s[0].check.as_ref().expect("a check");
        assert_eq!((c.interval_s, c.timeout_s, c.fall), (2, 1, 4));
        assert_eq!(c.http_path.as_deref(), Some("/ok"));
        // Port 1 has no check of its own; the app's check still gates its tasks.
        assert_eq!(s[1].service_port, 10002);
        assert_eq!(s[1].mode, Mode::Tcp);
        assert!(s[1].check.is_none());
        assert_eq!(s[1].servers[0].port, 31002);
        assert_eq!(s[1].servers.len(), 2);

        let all = Selection {
            group: "*",
            require_healthy: false,
        };
        let (s, _) = services(&apps, &all, &mut no_dns);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].servers.len(), 3, "running tasks, healthy or not");
    }

    #[test]
    fn a_service_port_used_twice_goes_to_the_first_app_and_bad_labels_are_reported() {
        let apps = json!({"apps": [
            {"id": "/b", "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": 10000}], "tasks": []},
            {"id": "/a", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_AUTH": "x"},
             "portDefinitions": [{"port": 10000}], "tasks": []},
            {"id": "/c", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "udp"},
             "portDefinitions": [{"port": 10001}], "tasks": []}
        ]});
        let (s, w) = services(&apps, &external(), &mut no_dns);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].app_id, "/a");
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("HAPROXY_0_AUTH"), "{w:?}");
        assert!(
            w[1].contains("/b port 0") && w[1].contains("10000"),
            "{w:?}"
        );
        assert!(w[2].contains("HAPROXY_0_MODE"), "{w:?}");
    }

    #[test]
    fn bridge_and_container_networks_and_host_names() {
        let apps = json!({"apps": [
            {"id": "/bridge", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "9000"},
             "networks": [{"mode": "container/bridge"}],
             "container": {"portMappings": [{"containerPort": 80, "servicePort": 10101}]},
             "tasks": [{"id": "t1", "host": "agent1", "state": "TASK_RUNNING", "ports": [31000]},
                       {"id": "t2", "host": "nowhere", "state": "TASK_RUNNING", "ports": [31001]}]},
            {"id": "/cni", "labels": {"HAPROXY_GROUP": "external"},
             "networks": [{"mode": "container", "name": "net"}],
             "container": {"portMappings": [{"containerPort": 8080, "servicePort": 10102}]},
             "tasks": [{"id": "t3", "host": "agent1", "state": "TASK_RUNNING", "ports": [],
                        "ipAddresses": [{"ipAddress": "172.16.0.5", "protocol": "IPv4"}]}]}
        ]});
        let mut resolve = |h: &str| (h == "agent1").then(|| "10.1.1.1".parse().expect("ip"));
        let (s, w) = services(&apps, &external(), &mut resolve);
        assert_eq!(s[0].service_port, 9000, "HAPROXY_0_PORT wins");
        assert_eq!(s[0].servers.len(), 1);
        assert_eq!(s[0].servers[0].addr.to_string(), "10.1.1.1");
        assert_eq!(s[0].servers[0].port, 31000);
        assert!(w.iter().any(|w| w.contains("nowhere")), "{w:?}");
        assert_eq!(s[1].servers[0].addr.to_string(), "172.16.0.5");
        assert_eq!(s[1].servers[0].port, 8080);
    }
}
