//! Mesos-DNS built into the master (`--dns-listen`): the names Mesos-DNS generates from
//! `/master/state` (spec §6.8), served over UDP and TCP from the master's own state, rebuilt when
//! it changes (checked every 100 ms) instead of polled every 60 s; and Mesos-DNS's HTTP API
//! (`/v1/hosts`, `/v1/services`, `/v1/version`, `/v1/config`) on the master's port.
//!
//! `names`: label rules and canonical names; `records`: the name table from the state; `server`:
//! the DNS server; `http`: the HTTP API.

pub mod http;
pub mod names;
pub mod records;
pub mod server;

use crate::cluster::Core;
use names::LabelSpec;
use records::{Records, Snapshot};
use server::{Handler, Published};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the state is compared with what the records were built from.
pub const REFRESH: Duration = Duration::from_millis(100);

/// How long a TCP client may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// The DNS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Where the DNS server listens (UDP and TCP); `None`: off.
    pub listen: Option<SocketAddr>,
    /// The domain (Mesos-DNS's `domain`, default `mesos`).
    pub domain: String,
    /// TTL of every answer, seconds (Mesos-DNS's `ttl`, default 60).
    pub ttl: u32,
    /// Upstream resolvers for other names; `None`: the nameservers of /etc/resolv.conf.
    pub resolvers: Option<Vec<SocketAddr>>,
    /// Label rules (RFC 1123, or RFC 952 as Mesos-DNS's `EnforceRFC952`).
    pub labels: LabelSpec,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            listen: None,
            domain: "mesos".into(),
            ttl: 60,
            resolvers: None,
            labels: LabelSpec::Rfc1123,
        }
    }
}

impl DnsSettings {
    /// The upstream resolvers: as given, or those of /etc/resolv.conf.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        match &self.resolvers {
            Some(r) => r.clone(),
            None => resolv_conf(Path::new("/etc/resolv.conf")),
        }
    }
}

/// The `nameserver` lines of a resolv.conf, port 53 (none when it cannot be read).
pub fn resolv_conf(path: &Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next())?
        })
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Parses `--dns-resolvers`: `host:port` (or a bare IP, port 53), comma-separated; empty: none.
pub fn parse_resolvers(s: &str) -> Result<Vec<SocketAddr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<SocketAddr>()
                .or_else(|_| p.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("'{p}' is not an IP address or IP:port"))
        })
        .collect()
}

/// A failure to start the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The records of the master's state now (for the HTTP API).
pub async fn current(core: &Arc<Core>) -> Records {
    let leader = crate::api::mesos::advertised(core);
    let snap = {
        let guard = core.state().await;
        let st = &guard.cluster;
        Snapshot::take(st, leader, nameserver(core))
    };
    let dns = core.cfg.dns.clone();
    tokio::task::spawn_blocking(move || Records::build(&snap, &dns.domain, dns.labels))
        .await
        .unwrap_or_default()
}

fn nameserver(core: &Core) -> Option<IpAddr> {
    core.cfg
        .dns
        .listen
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

/// Starts the DNS server when `--dns-listen` is given: binds UDP and TCP on the same port, serves,
/// and keeps the records in step with the state. Returns the address it listens on.
pub async fn start(core: Arc<Core>) -> Result<Option<SocketAddr>, DnsError> {
    let Some(want) = core.cfg.dns.listen else {
        return Ok(None);
    };
    let err = |addr| move |source| DnsError::Listen { addr, source };
    let udp = tokio::net::UdpSocket::bind(want).await.map_err(err(want))?;
    let addr = udp.local_addr().map_err(err(want))?;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(err(addr))?;
    let published = Arc::new(Published::default());
    let leader = crate::api::mesos::advertised(&core);
    let ns = nameserver(&core);
    let first = {
        let guard = core.state().await;
        let st = &guard.cluster;
        Snapshot::take(st, leader, ns)
    };
    let dns = core.cfg.dns.clone();
    published.set(Records::build(&first, &dns.domain, dns.labels));
    let resolvers = dns.upstreams();
    tracing::info!(%addr, domain = %dns.domain, ttl = dns.ttl, ?resolvers, "DNS listening");
    let handler = Handler {
        records: published.clone(),
        ttl: dns.ttl,
        resolvers,
    };
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::error!(error = %e, "DNS server stopped");
        }
    });
    tokio::spawn(refresh(core, published, first, leader, ns));
    Ok(Some(addr))
}

/// Rebuilds the records whenever what they are made of changed.
async fn refresh(
    core: Arc<Core>,
    published: Arc<Published>,
    mut last: Snapshot,
    leader: SocketAddr,
    ns: Option<IpAddr>,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snap = {
            let guard = core.state().await;
            let st = &guard.cluster;
            Snapshot::take(st, leader, ns)
        };
        if snap == last {
            continue;
        }
        let (domain, labels) = (core.cfg.dns.domain.clone(), core.cfg.dns.labels);
        let s = snap.clone();
        match tokio::task::spawn_blocking(move || Records::build(&s, &domain, labels)).await {
            Ok(r) => {
                tracing::debug!(names = r.len(), "DNS records rebuilt");
                published.set(r);
                last = snap;
            }
            Err(e) => tracing::error!(error = %e, "building DNS records failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_from_flags_and_resolv_conf() {
        assert_eq!(
            parse_resolvers("1.2.3.4:53, 5.6.7.8,[::1]:5353").unwrap(),
            vec![
                "1.2.3.4:53".parse::<SocketAddr>().unwrap(),
                "5.6.7.8:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ]
        );
        assert!(parse_resolvers("").unwrap().is_empty());
        assert!(parse_resolvers("nope").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("resolv.conf");
        std::fs::write(
            &f,
            "# x\nsearch lan\nnameserver 9.9.9.9\nnameserver ::1\nnameserver bad\n",
        )
        .unwrap();
        assert_eq!(
            resolv_conf(&f),
            vec![
                "9.9.9.9:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(resolv_conf(&dir.path().join("missing")).is_empty());
    }
}
