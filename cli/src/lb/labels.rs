//! The marathon-lb labels of one app port (`HAPROXY_GROUP`, `HAPROXY_{n}_VHOST`, `_MODE`, ...):
//! read and checked, so that no label value can break or inject into the HAProxy config.

use serde_json::Value;
use std::fmt;

/// HAProxy's proxy mode for one service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        })
    }
}

/// HAProxy balance algorithms a label may ask for (those that take no arguments, plus
/// `hdr(<name>)`-free `uri` and `source`).
const BALANCE: &[&str] = &[
    "roundrobin",
    "static-rr",
    "leastconn",
    "first",
    "source",
    "uri",
    "random",
];

/// The labels of port `n` of an app, with the app-wide `HAPROXY_GROUP` as fallback for the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortLabels {
    /// The groups this port is exposed in (`HAPROXY_{n}_GROUP`, else `HAPROXY_GROUP`, split on
    /// commas); empty: no group.
    pub groups: Vec<String>,
    pub enabled: bool,
    pub vhosts: Vec<String>,
    pub mode: Option<Mode>,
    pub balance: String,
    pub sticky: bool,
    pub redirect_to_https: bool,
    pub hsts: bool,
    pub bind_addr: Option<String>,
    pub bind_options: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
}

/// A label with a value that cannot go into the config, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("label {key}={value:?}: {why}")]
pub struct LabelError {
    pub key: String,
    pub value: String,
    pub why: &'static str,
}

/// marathon-lb labels read here; every other `HAPROXY_*` label is reported as unsupported.
const SUPPORTED: &[&str] = &[
    "GROUP",
    "ENABLED",
    "VHOST",
    "MODE",
    "BALANCE",
    "STICKY",
    "REDIRECT_TO_HTTPS",
    "USE_HSTS",
    "BIND_ADDR",
    "BIND_OPTIONS",
    "PORT",
    "PATH",
];

/// The `HAPROXY_*` labels of an app that Gantry's load balancer does not support (templates,
/// zdd, auth, ...), for a warning.
pub fn unsupported(labels: &Value) -> Vec<String> {
    let mut out: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("HAPROXY_"))
        .filter(|k| {
            let rest = &k["HAPROXY_".len()..];
            let name = match rest.split_once('_') {
                Some((n, name)) if n.parse::<usize>().is_ok() => name,
                _ => rest,
            };
            !SUPPORTED.contains(&name)
        })
        .cloned()
        .collect();
    out.sort();
    out
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// A DNS name or a `*.`-wildcard one: letters, digits, `-`, `.`, and `*` only.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*'))
}

/// Free text for a config line (bind options): printable ASCII, no `#` (a comment would hide the
/// rest of the line) and no line breaks.
fn valid_line(s: &str) -> bool {
    s.chars().all(|c| (' '..='~').contains(&c) && c != '#')
}

impl PortLabels {
    /// Reads port `n`'s labels from an app's `labels` object.
    pub fn read(labels: &Value, n: usize) -> Result<Self, LabelError> {
        let get = |name: &str| -> Option<(String, String)> {
            let key = format!("HAPROXY_{n}_{name}");
            labels[&key].as_str().map(|v| (key, v.to_string()))
        };
        let bad = |(key, value): (String, String), why| LabelError { key, value, why };
        let groups = get("GROUP")
            .or_else(|| {
                labels["HAPROXY_GROUP"]
                    .as_str()
                    .map(|v| ("HAPROXY_GROUP".into(), v.to_string()))
            })
            .map(|(_, v)| {
                v.split(',')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let enabled = get("ENABLED").is_none_or(|(_, v)| truthy(&v));
        let mut vhosts = Vec::new();
        if let Some((key, v)) = get("VHOST") {
            for h in v.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                if !valid_host(h) {
                    return Err(bad((key, v.clone()), "not a host name"));
                }
                vhosts.push(h.to_ascii_lowercase());
            }
        }
        let mode = match get("MODE") {
            None => None,
            Some((_, v)) if v.eq_ignore_ascii_case("http") => Some(Mode::Http),
            Some((_, v)) if v.eq_ignore_ascii_case("tcp") => Some(Mode::Tcp),
            Some(kv) => return Err(bad(kv, "the mode is http or tcp")),
        };
        let balance = match get("BALANCE") {
            None => "roundrobin".to_string(),
            Some((_, v)) if BALANCE.contains(&v.trim()) => v.trim().to_string(),
            Some(kv) => return Err(bad(
                kv,
                "balance is one of roundrobin, static-rr, leastconn, first, source, uri, random",
            )),
        };
        let bind_addr = match get("BIND_ADDR") {
            None => None,
            Some((_, v)) if v.parse::<std::net::IpAddr>().is_ok() || v == "*" => Some(v),
            Some(kv) => return Err(bad(kv, "not an IP address")),
        };
        let bind_options = match get("BIND_OPTIONS") {
            None => None,
            Some((_, v)) if valid_line(&v) => Some(v),
            Some(kv) => return Err(bad(kv, "line breaks and '#' cannot go into a bind line")),
        };
        let port = match get("PORT") {
            None => None,
            Some((_, v)) if v.trim().parse::<u16>().is_ok_and(|p| p > 0) => v.trim().parse().ok(),
            Some(kv) => return Err(bad(kv, "not a port number")),
        };
        let path = match get("PATH") {
            None => None,
            Some((_, v)) if v.starts_with('/') && valid_line(&v) && !v.contains(' ') => Some(v),
            Some(kv) => return Err(bad(kv, "a path starts with '/' and has no spaces")),
        };
        Ok(PortLabels {
            groups,
            enabled,
            vhosts,
            mode,
            balance,
            sticky: get("STICKY").is_some_and(|(_, v)| truthy(&v)),
            redirect_to_https: get("REDIRECT_TO_HTTPS").is_some_and(|(_, v)| truthy(&v)),
            hsts: get("USE_HSTS").is_some_and(|(_, v)| truthy(&v)),
            bind_addr,
            bind_options,
            port,
            path,
        })
    }

    /// True when a load balancer of `group` serves this port (`*` serves every port, grouped or
    /// not).
    pub fn in_group(&self, group: &str) -> bool {
        group == "*" || self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_port_labels_override_the_app_group() {
        let l = json!({"HAPROXY_GROUP": "external", "HAPROXY_1_GROUP": "internal, edge",
                       "HAPROXY_0_VHOST": "Web.Example.com,api.example.com",
                       "HAPROXY_0_MODE": "HTTP", "HAPROXY_0_STICKY": "true"});
        let p0 = PortLabels::read(&l, 0).expect("valid");
        assert_eq!(p0.groups, ["external"]);
        assert_eq!(p0.vhosts, ["web.example.com", "api.example.com"]);
        assert_eq!(p0.mode, Some(Mode::Http));
        assert!(p0.sticky && p0.enabled);
        assert_eq!(p0.balance, "roundrobin");
        let p1 = PortLabels::read(&l, 1).expect("valid");
        assert_eq!(p1.groups, ["internal", "edge"]);
        assert!(p1.in_group("edge") && !p1.in_group("external") && p1.in_group("*"));
        assert!(p1.vhosts.is_empty() && p1.mode.is_none());
    }

    #[test]
    fn values_that_would_break_the_config_are_refused() {
        for (k, v) in [
            ("HAPROXY_0_VHOST", "a.com\n  bind :1"),
            ("HAPROXY_0_MODE", "udp"),
            ("HAPROXY_0_BALANCE", "roundrobin\nx"),
            ("HAPROXY_0_BIND_OPTIONS", "ssl # hidden"),
            ("HAPROXY_0_BIND_ADDR", "example.com"),
            ("HAPROXY_0_PORT", "70000"),
            ("HAPROXY_0_PATH", "api"),
        ] {
            let e = PortLabels::read(&json!({ k: v }), 0).expect_err(k);
            assert_eq!(e.key, k);
        }
    }

    #[test]
    fn unsupported_labels_are_named() {
        let l = json!({"HAPROXY_GROUP": "x", "HAPROXY_0_VHOST": "a", "HAPROXY_0_AUTH": "r:u:p",
                       "HAPROXY_DEPLOYMENT_GROUP": "g", "HAPROXY_0_BACKEND_HEAD": "t", "OTHER": "1"});
        assert_eq!(
            unsupported(&l),
            [
                "HAPROXY_0_AUTH",
                "HAPROXY_0_BACKEND_HEAD",
                "HAPROXY_DEPLOYMENT_GROUP"
            ]
        );
    }
}
