//! Where the masters are, in the forms Mesos's agents, schedulers and CLIs take: one URL
//! (`http://m1:5050`), a comma-separated list of them (`http://m1:5050,http://m2:5050`), or
//! ZooKeeper (`zk://[user:password@]h1:2181,h2:2181/gantry`). Also the `MasterInfo` JSON that each
//! master writes into its `json.info_<seq>` znode (Mesos's layout, which pymesos's and Mesos-DNS's
//! detectors read) and how the leader is chosen from the children of the path: the lowest sequence
//! number. Pure: the ZooKeeper client itself lives with the daemons that talk to it.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The prefix of every master's znode under the `--zk` path.
pub const ZNODE_PREFIX: &str = "json.info_";

/// A `--master` or `--zk` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MastersError {
    #[error("'{0}' is not a master URL: use http(s)://host:port, a comma-separated list of them, or zk://host:port[,host:port]/path")]
    Unrecognised(String),
    #[error("'{url}': {why}")]
    BadZk { url: String, why: String },
}

/// A ZooKeeper URL, `zk://[user:password@]host:port[,host:port...]/path`.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port,host:port`: ZooKeeper's connect string.
    pub servers: String,
    /// The znode path under which the masters' `json.info_` nodes live, e.g. `/gantry`; never
    /// ends in `/` (the root is `/`).
    pub path: String,
    /// `user:password` for ZooKeeper's digest scheme, if the URL carried one.
    pub digest: Option<String>,
}

impl std::fmt::Debug for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkUrl")
            .field("servers", &self.servers)
            .field("path", &self.path)
            .field("digest", &self.digest.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl std::fmt::Display for ZkUrl {
    /// The URL without its credentials (what may be logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zk://{}{}", self.servers, self.path)
    }
}

impl ZkUrl {
    /// Parses `zk://...`.
    pub fn parse(url: &str) -> Result<ZkUrl, MastersError> {
        let bad = |why: &str| MastersError::BadZk {
            url: redact(url),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| bad("a ZooKeeper URL starts with zk://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (digest, hosts) = match authority.rsplit_once('@') {
            Some((cred, hosts)) => {
                if !cred.contains(':') {
                    return Err(bad("credentials in a zk:// URL are user:password"));
                }
                (Some(cred.to_owned()), hosts)
            }
            None => (None, authority),
        };
        if hosts.is_empty() {
            return Err(bad("no ZooKeeper server named"));
        }
        for h in hosts.split(',') {
            let (host, port) = h
                .rsplit_once(':')
                .ok_or_else(|| bad(&format!("'{h}' needs a port (host:2181)")))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(&format!("'{h}' is not host:port")));
            }
        }
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        if path.contains("//") {
            return Err(bad("the znode path has an empty segment"));
        }
        Ok(ZkUrl {
            servers: hosts.to_owned(),
            path: path.to_owned(),
            digest,
        })
    }

    /// The full path of a child of [`ZkUrl::path`].
    pub fn child(&self, name: &str) -> String {
        if self.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.path)
        }
    }
}

/// Where the masters are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Masters {
    /// One or more master base URLs (`http://host:port`, no trailing `/`), tried in turn; a
    /// standby answers with the leader's address.
    Urls(Vec<String>),
    /// Read the leader from ZooKeeper.
    Zk(ZkUrl),
}

impl Masters {
    /// Parses a `--master` value.
    pub fn parse(s: &str) -> Result<Masters, MastersError> {
        let s = s.trim();
        if s.starts_with("zk://") {
            return ZkUrl::parse(s).map(Masters::Zk);
        }
        let urls: Vec<String> = s
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .collect();
        let schemes = ["http://", "https://", "ws://", "wss://"];
        if urls.iter().any(|u| {
            !schemes
                .iter()
                .any(|p| u.strip_prefix(p).is_some_and(|h| !h.is_empty()))
        }) {
            return Err(MastersError::Unrecognised(redact(s)));
        }
        Ok(Masters::Urls(urls))
    }
}

/// `zk://user:pass@...` with the password replaced, for errors and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<credentials>{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Mesos's `MasterInfo` as JSON: what each master writes into its `json.info_<seq>` znode and
/// answers in `/master/state`'s `leader_info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: String,
    /// The IPv4 address as a number in network byte order, as Mesos writes it.
    pub ip: u32,
    pub port: u16,
    /// `master@<ip>:<port>`.
    pub pid: String,
    pub hostname: String,
    pub version: String,
    pub address: MasterAddress,
    /// Gantry's own: the scheme clients use (`http` or `https`); Mesos readers ignore it.
    #[serde(default = "http_scheme")]
    pub scheme: String,
}

fn http_scheme() -> String {
    "http".to_owned()
}

/// `MasterInfo.address`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasterAddress {
    pub hostname: String,
    pub ip: String,
    pub port: u16,
}

impl MasterInfo {
    /// A master reachable at `hostname` (a name or an address) and `ip:port`.
    pub fn new(
        id: &str,
        hostname: &str,
        ip: Ipv4Addr,
        port: u16,
        version: &str,
        tls: bool,
    ) -> Self {
        MasterInfo {
            id: id.to_owned(),
            ip: u32::from_ne_bytes(ip.octets()),
            port,
            pid: format!("master@{ip}:{port}"),
            hostname: hostname.to_owned(),
            version: version.to_owned(),
            address: MasterAddress {
                hostname: hostname.to_owned(),
                ip: ip.to_string(),
                port,
            },
            scheme: if tls { "https" } else { "http" }.to_owned(),
        }
    }

    /// `http://<hostname>:<port>`: where clients reach this master.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}:{}",
            self.scheme, self.address.hostname, self.address.port
        )
    }

    /// `<hostname>:<port>`, as Marathon's `/v2/leader` and Chronos's `/leader` answer it.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.address.hostname, self.address.port)
    }
}

/// The sequence number of a master's znode name (`json.info_0000000012` → 12), `None` for other
/// children (`log_replicas`, the store's nodes).
pub fn sequence_of(name: &str) -> Option<u64> {
    name.strip_prefix(ZNODE_PREFIX)?.parse().ok()
}

/// The leader's znode among the children of the masters' path: the lowest sequence number.
pub fn leader_child<'a>(children: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    children
        .into_iter()
        .filter_map(|c| sequence_of(c).map(|s| (s, c)))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zk_urls_parse_with_hosts_path_and_credentials() {
        let z = ZkUrl::parse("zk://a:2181,b:2182/gantry/ha/").expect("parses");
        assert_eq!(z.servers, "a:2181,b:2182");
        assert_eq!(z.path, "/gantry/ha");
        assert_eq!(z.digest, None);
        assert_eq!(z.child("json.info_1"), "/gantry/ha/json.info_1");
        let z = ZkUrl::parse("zk://u:p@a:2181").expect("parses");
        assert_eq!((z.path.as_str(), z.digest.as_deref()), ("/", Some("u:p")));
        assert_eq!(z.child("x"), "/x");
        assert_eq!(z.to_string(), "zk://a:2181/");
        assert!(!format!("{z:?}").contains("u:p"));
    }

    #[test]
    fn bad_zk_urls_say_why_and_never_echo_a_password() {
        for bad in [
            "zk://",
            "zk://a/x",
            "zk://a:0/x",
            "zk://:2181/x",
            "zk://a:2181//x",
            "zk://nopass@a:1/x",
        ] {
            assert!(ZkUrl::parse(bad).is_err(), "{bad}");
        }
        let e = ZkUrl::parse("zk://u:secret@a/x")
            .expect_err("no port")
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn masters_are_one_url_a_list_or_zookeeper() {
        assert_eq!(
            Masters::parse("http://m1:5050/").expect("one"),
            Masters::Urls(vec!["http://m1:5050".into()])
        );
        assert_eq!(
            Masters::parse("http://m1:5050, https://m2:5050").expect("list"),
            Masters::Urls(vec!["http://m1:5050".into(), "https://m2:5050".into()])
        );
        assert!(matches!(
            Masters::parse("zk://z:2181/gantry"),
            Ok(Masters::Zk(_))
        ));
        for bad in ["m1:5050", "http://", "http://a:1,,http://b:2", "ftp://x"] {
            assert!(Masters::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_leader_is_the_lowest_sequence_and_other_children_are_ignored() {
        let children = [
            "log_replicas",
            "json.info_0000000012",
            "json.info_0000000003",
            "state",
        ];
        assert_eq!(leader_child(children), Some("json.info_0000000003"));
        assert_eq!(leader_child(["log_replicas"]), None);
    }

    #[test]
    fn master_info_is_mesos_json_that_pymesos_reads() {
        let m = MasterInfo::new(
            "m1",
            "node1",
            Ipv4Addr::new(127, 0, 0, 1),
            5050,
            "1.11.0",
            false,
        );
        let v = serde_json::to_value(&m).expect("json");
        assert_eq!(v["address"]["ip"], "127.0.0.1");
        assert_eq!(v["address"]["port"], 5050);
        assert_eq!(v["pid"], "master@127.0.0.1:5050");
        assert_eq!(v["ip"], u32::from_ne_bytes([127, 0, 0, 1]));
        assert_eq!(m.base_url(), "http://node1:5050");
        let back: MasterInfo = serde_json::from_value(v).expect("reads back");
        assert_eq!(back, m);
    }
}
