//! The HAProxy configuration text for a list of [`Service`]s: global and default sections, the
//! shared HTTP and HTTPS virtual-host frontends, and one frontend and backend per service port.
//! The same inputs always give the same text, so a changed text means a changed config.

use super::labels::Mode;
use super::model::Service;
use std::fmt::Write;
use std::path::PathBuf;

/// What the rendered config needs besides the services.
#[derive(Clone, Debug)]
pub struct Frontends {
    /// Address the frontends bind (`*` for every address).
    pub bind_address: String,
    /// Port of the shared HTTP virtual-host frontend (marathon-lb: 80); `None`: no such frontend.
    pub http_port: Option<u16>,
    /// Port of the shared HTTPS one (marathon-lb: 443), served only with certificates.
    pub https_port: Option<u16>,
    /// PEM files or directories of them (HAProxy's `crt`) for the HTTPS frontend.
    pub ssl_certs: Vec<PathBuf>,
    /// The runtime API's socket (`stats socket`).
    pub admin_socket: PathBuf,
}

fn bind(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The whole configuration.
pub fn render(f: &Frontends, services: &[Service]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Written by gantry lb from the master's apps; edits are overwritten.\n\
         global\n\
         \x20 stats socket {} mode 600 level admin expose-fd listeners\n\
         \x20 hard-stop-after 60s\n\
         \x20 grace 500ms\n\
         \x20 ssl-default-bind-options no-sslv3 no-tlsv10 no-tlsv11\n\
         \n\
         defaults\n\
         \x20 retries 3\n\
         \x20 option redispatch 1\n\
         \x20 option dontlognull\n\
         \x20 timeout connect 3s\n\
         \x20 timeout client 30s\n\
         \x20 timeout server 30s\n\
         \x20 timeout tunnel 3600s\n\
         \x20 timeout http-keep-alive 1s\n\
         \x20 timeout http-request 15s\n\
         \x20 timeout queue 30s\n\
         \x20 timeout check 5s\n",
        f.admin_socket.display()
    );
    let vhosted: Vec<&Service> = services
        .iter()
        .filter(|s| s.mode == Mode::Http && !s.labels.vhosts.is_empty())
        .collect();
    let tls = f.https_port.filter(|_| !f.ssl_certs.is_empty());
    if let Some(port) = f.http_port {
        let _ = write!(
            out,
            "\nfrontend gantry_http_in\n  bind {}\n  mode http\n",
            bind(&f.bind_address, port)
        );
        for s in &vhosted {
            vhost_rules(&mut out, s, tls.is_some() && s.labels.redirect_to_https);
        }
    }
    if let Some(port) = tls {
        let crts: Vec<String> = f
            .ssl_certs
            .iter()
            .map(|c| format!("crt {}", c.display()))
            .collect();
        let _ = write!(
            out,
            "\nfrontend gantry_https_in\n  bind {} ssl {}\n  mode http\n",
            bind(&f.bind_address, port),
            crts.join(" ")
        );
        for s in &vhosted {
            vhost_rules(&mut out, s, false);
        }
    }
    for s in services {
        service(&mut out, f, s);
    }
    out
}

/// ACLs on the Host header (without its port) and path, and the `use_backend` of one service in a
/// virtual-host frontend; with `redirect`, plain HTTP is sent to HTTPS instead.
fn vhost_rules(out: &mut String, s: &Service, redirect: bool) {
    let _ = writeln!(
        out,
        "  acl host_{} req.hdr(host),field(1,:) -i {}",
        s.name,
        s.labels.vhosts.join(" ")
    );
    let mut cond = format!("host_{}", s.name);
    if let Some(path) = &s.labels.path {
        let _ = writeln!(out, "  acl path_{} path_beg {path}", s.name);
        cond += &format!(" path_{}", s.name);
    }
    if redirect {
        let _ = writeln!(out, "  redirect scheme https code 301 if {cond}");
    } else {
        let _ = writeln!(out, "  use_backend {} if {cond}", s.name);
    }
}

/// The frontend on the service port and the backend with the service's servers.
fn service(out: &mut String, f: &Frontends, s: &Service) {
    let addr = s.labels.bind_addr.as_deref().unwrap_or(&f.bind_address);
    let options = s
        .labels
        .bind_options
        .as_deref()
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let _ = write!(
        out,
        "\n# {} port {}\nfrontend {}\n  bind {}{options}\n  mode {}\n",
        s.app_id,
        s.index,
        s.name,
        bind(addr, s.service_port),
        s.mode
    );
    if s.mode == Mode::Tcp {
        out.push_str("  option tcplog\n");
    }
    let _ = write!(
        out,
        "  use_backend {}\n\nbackend {}\n  balance {}\n  mode {}\n",
        s.name, s.name, s.labels.balance, s.mode
    );
    // A failed connection is retried on another server (`option redispatch 1`), and with
    // checks the failing server is out at once: enough retries to get past every server (a
    // rolling upgrade kills all the old ones before the next reload) to one that answers.
    let attempts = s.servers.len() + 1;
    if attempts > 3 {
        let _ = writeln!(out, "  retries {attempts}");
    }
    let http = s.mode == Mode::Http;
    if http {
        out.push_str(
            "  option forwardfor\n  option http-server-close\n  \
             http-request set-header X-Forwarded-Port %[dst_port]\n  \
             http-request add-header X-Forwarded-Proto https if { ssl_fc }\n  \
             retry-on conn-failure empty-response junk-response response-timeout\n  \
             http-request disable-l7-retry if !METH_GET\n",
        );
        if s.labels.hsts {
            out.push_str("  http-response set-header Strict-Transport-Security max-age=15768000\n");
        }
    }
    let sticky = http && s.labels.sticky;
    if sticky {
        out.push_str("  cookie mesosphere_server_id insert indirect nocache\n");
    }
    if let Some(c) = &s.check {
        if let Some(path) = &c.http_path {
            let _ = writeln!(out, "  option httpchk GET {path}");
        }
        let _ = writeln!(out, "  timeout check {}s", c.timeout_s);
    }
    for srv in &s.servers {
        let name = srv.name();
        let _ = write!(
            out,
            "  server {name} {}",
            bind(&srv.addr.to_string(), srv.port)
        );
        if sticky {
            let _ = write!(out, " cookie {name}");
        }
        // A backup is not checked: HAProxy would call one that started after its first check
        // down for an interval, just when it is needed; it is only used with no active left.
        if let Some(c) = s.check.as_ref().filter(|_| !srv.backup) {
            let _ = write!(out, " check inter {}s rise 1 fall {}", c.interval_s, c.fall);
            if let Some(p) = srv.check_port {
                let _ = write!(out, " port {p}");
            }
            if c.https {
                out.push_str(" check-ssl verify none");
            }
            out.push_str(" observe layer4 error-limit 1 on-error mark-down");
        }
        if srv.backup {
            out.push_str(" backup");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{services, Selection};
    use super::*;
    use serde_json::json;

    fn frontends() -> Frontends {
        Frontends {
            bind_address: "127.0.0.1".into(),
            http_port: Some(8080),
            https_port: Some(8443),
            ssl_certs: vec![PathBuf::from("/etc/gantry/lb-certs")],
            admin_socket: PathBuf::from("/run/gantry-lb/haproxy.sock"),
        }
    }

    fn rendered(apps: serde_json::Value) -> String {
        let sel = Selection {
            group: "external",
            require_healthy: true,
        };
        let (s, w) = services(&apps, &sel, &mut |_| None);
        assert!(w.is_empty(), "{w:?}");
        render(&frontends(), &s)
    }

    fn running(id: &str, port: u16) -> serde_json::Value {
        json!({"id": id, "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [port],
               "healthCheckResults": [{"alive": true}]})
    }

    #[test]
    fn an_http_app_with_a_vhost_and_a_check() {
        let text = rendered(json!({"apps": [{
            "id": "/shop/web",
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com",
                       "HAPROXY_0_STICKY": "true", "HAPROXY_0_REDIRECT_TO_HTTPS": "true",
                       "HAPROXY_0_BALANCE": "leastconn"},
            "portDefinitions": [{"port": 10000}],
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0,
                              "intervalSeconds": 5, "timeoutSeconds": 2, "maxConsecutiveFailures": 2}],
            "tasks": [running("t2", 31002), running("t1", 31001),
                      {"id": "t3", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [31003]}]}]}));
        for want in [
            "stats socket /run/gantry-lb/haproxy.sock mode 600 level admin expose-fd listeners\n",
            "  grace 500ms\n",
            "  retries 3\n  option redispatch 1\n",
            "frontend gantry_http_in\n  bind 127.0.0.1:8080\n  mode http\n  \
             acl host_shop_web_10000 req.hdr(host),field(1,:) -i shop.example.com\n  \
             redirect scheme https code 301 if host_shop_web_10000\n",
            "frontend gantry_https_in\n  bind 127.0.0.1:8443 ssl crt /etc/gantry/lb-certs\n  \
             mode http\n  acl host_shop_web_10000 req.hdr(host),field(1,:) -i shop.example.com\n  \
             use_backend shop_web_10000 if host_shop_web_10000\n",
            "# /shop/web port 0\nfrontend shop_web_10000\n  bind 127.0.0.1:10000\n  mode http\n  \
             use_backend shop_web_10000\n\nbackend shop_web_10000\n  balance leastconn\n  mode http\n  retries 4\n  \
             option forwardfor\n",
            "  cookie mesosphere_server_id insert indirect nocache\n  \
             option httpchk GET /health\n  timeout check 2s\n  \
             server 127.0.0.1_31001 127.0.0.1:31001 cookie 127.0.0.1_31001 check inter 5s rise 1 fall 3 observe layer4 error-limit 1 on-error mark-down\n  \
             server 127.0.0.1_31002 127.0.0.1:31002 cookie 127.0.0.1_31002 check inter 5s rise 1 fall 3 observe layer4 error-limit 1 on-error mark-down\n  \
             server 127.0.0.1_31003 127.0.0.1:31003 cookie 127.0.0.1_31003 backup\n",
            "  retry-on conn-failure empty-response junk-response response-timeout\n  \
             http-request disable-l7-retry if !METH_GET\n",
        ] {
            assert!(text.contains(want), "missing:\n{want}\nin:\n{text}");
        }
    }

    #[test]
    fn a_tcp_app_with_a_path_vhost_bind_options_and_a_check_on_another_port() {
        let text = rendered(json!({"apps": [
            {"id": "/db", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "0.0.0.0",
                                     "HAPROXY_0_BIND_OPTIONS": "accept-proxy"},
             "portDefinitions": [{"port": 10005}, {"port": 10006}],
             "healthChecks": [{"protocol": "TCP", "portIndex": 0, "intervalSeconds": 1,
                               "timeoutSeconds": 1, "maxConsecutiveFailures": 0}],
             "tasks": [{"id": "d", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [31005, 31006],
                        "healthCheckResults": [{"alive": true}]}]},
            {"id": "/api", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "x.org",
                                      "HAPROXY_0_PATH": "/v1", "HAPROXY_0_MODE": "http",
                                      "HAPROXY_0_USE_HSTS": "true"},
             "portDefinitions": [{"port": 10007}], "tasks": [running("a", 31007)]}]}));
        for want in [
            "frontend db_10005\n  bind 0.0.0.0:10005 accept-proxy\n  mode tcp\n  option tcplog\n",
            "backend db_10005\n  balance roundrobin\n  mode tcp\n  timeout check 1s\n  \
             server 127.0.0.1_31005 127.0.0.1:31005 check inter 1s rise 1 fall 1 observe layer4 error-limit 1 on-error mark-down\n",
            "backend db_10006\n  balance roundrobin\n  mode tcp\n  \
             server 127.0.0.1_31006 127.0.0.1:31006\n",
            "  acl host_api_10007 req.hdr(host),field(1,:) -i x.org\n  \
             acl path_api_10007 path_beg /v1\n  use_backend api_10007 if host_api_10007 path_api_10007\n",
            "  http-response set-header Strict-Transport-Security max-age=15768000\n",
        ] {
            assert!(text.contains(want), "missing:\n{want}\nin:\n{text}");
        }
    }

    #[test]
    fn no_certificates_no_https_frontend_and_the_same_input_the_same_text() {
        let apps = json!({"apps": [{"id": "/w", "labels": {"HAPROXY_GROUP": "external"},
                                    "portDefinitions": [{"port": 10000}], "tasks": [running("a", 1)]}]});
        let mut f = frontends();
        f.ssl_certs.clear();
        let sel = Selection {
            group: "external",
            require_healthy: true,
        };
        let (s, _) = services(&apps, &sel, &mut |_| None);
        let text = render(&f, &s);
        assert!(!text.contains("gantry_https_in"), "{text}");
        assert!(text.contains("frontend gantry_http_in"), "{text}");
        assert_eq!(text, render(&f, &s));
    }
}
