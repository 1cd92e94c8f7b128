//! Master configuration: flags, `GANTRY_*` environment variables and an optional TOML file, in that
//! order of precedence.

use crate::alloc::{GpuAgentRule, PlaceOptions};
use crate::dns::DnsSettings;
use crate::tls::TlsFiles;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gantry_daemon::ConfigError;

/// The master's settings as given on the command line, by environment or in the file.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterArgs {
    /// Address for the API, UI and agent connections.
    #[arg(long, env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite store.
    #[arg(long, env = "GANTRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The cluster join token agents must present. Without one, a token is generated and written
    /// to `<state-dir>/join-token`.
    #[arg(long, env = "GANTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file of join tokens, one per line (blank lines and `#` comments skipped), any of which
    /// agents may present. Re-read every 2 s: add a new token, move the agents to it, remove the
    /// old one, with no restart. Instead of --token.
    #[arg(long, env = "GANTRY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve HTTPS and WSS on the port with this certificate chain (PEM); needs --tls-key-file.
    #[arg(long, env = "GANTRY_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert-file.
    #[arg(long, env = "GANTRY_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) for agents' client certificates: the agent link then requires one
    /// signed by them; the APIs still accept clients without a certificate.
    #[arg(long, env = "GANTRY_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// How often agents send heartbeats, seconds.
    #[arg(long, env = "GANTRY_HEARTBEAT_INTERVAL_SECS")]
    pub heartbeat_interval_secs: Option<f64>,
    /// Missed heartbeats after which an agent is unreachable (its tasks TASK_UNREACHABLE).
    #[arg(long, env = "GANTRY_MAX_MISSED_HEARTBEATS")]
    pub max_missed_heartbeats: Option<u32>,
    /// Seconds an agent stays unreachable before it is gone (its tasks TASK_GONE).
    #[arg(long, env = "GANTRY_AGENT_GONE_SECS")]
    pub agent_gone_secs: Option<f64>,
    /// Seconds agents known from the store have to re-register after a master restart.
    #[arg(long, env = "GANTRY_AGENT_REREGISTER_SECS")]
    pub agent_reregister_secs: Option<f64>,
    /// Seconds an external framework may hold an offer before it is rescinded (Mesos's
    /// `--offer_timeout`).
    #[arg(long, env = "GANTRY_OFFER_TIMEOUT_SECS")]
    pub offer_timeout_secs: Option<f64>,
    /// Whether tasks that ask for no GPU may run on agents with GPUs: `avoid` (default: only
    /// when no agent without GPUs was among the candidates), `never`, or `allow`.
    #[arg(long, env = "GANTRY_CPU_TASKS_ON_GPU_AGENTS")]
    pub cpu_tasks_on_gpu_agents: Option<String>,
    /// TOML file of API principals (`[[principal]]` with name, password and/or tokens,
    /// permissions, run_as, roles, rate_limit); see docs/security.md.
    #[arg(long, env = "GANTRY_PRINCIPALS_FILE")]
    pub principals_file: Option<PathBuf>,
    /// One admin principal for HTTP Basic, `USER:PASSWORD` (Marathon's `--http_credentials`).
    #[arg(long, env = "GANTRY_HTTP_CREDENTIALS", hide_env_values = true)]
    pub http_credentials: Option<String>,
    /// Largest request body accepted, bytes (default 2 MiB); larger ones get 413.
    #[arg(long, env = "GANTRY_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Requests served at once (default 256); more get 503 until one finishes.
    #[arg(long, env = "GANTRY_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Connections open at once, agents' included (default 4096); one more is answered 503 and
    /// closed.
    #[arg(long, env = "GANTRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests per second each principal may make (default 200), with bursts of twice that;
    /// anonymous requests count per client address. More get 429.
    #[arg(long, env = "GANTRY_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Serve Mesos-DNS's names over DNS (UDP and TCP) on this address, e.g. `0.0.0.0:53` or
    /// `127.0.0.1:8053`. Off by default. See docs/dns.md.
    #[arg(long, env = "GANTRY_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,
    /// The DNS domain of the names (default `mesos`: `web.marathon.mesos`).
    #[arg(long, env = "GANTRY_DNS_DOMAIN")]
    pub dns_domain: Option<String>,
    /// TTL of DNS answers, seconds (default 60, as Mesos-DNS).
    #[arg(long, env = "GANTRY_DNS_TTL")]
    pub dns_ttl: Option<u32>,
    /// Upstream resolvers for names outside the domain, `IP[:PORT]` comma-separated (default: the
    /// nameservers in /etc/resolv.conf; empty: none, such names are REFUSED).
    #[arg(long, env = "GANTRY_DNS_RESOLVERS")]
    pub dns_resolvers: Option<String>,
    /// Labels under RFC 952 (at most 24 characters, starting with a letter) instead of RFC 1123
    /// (Mesos-DNS's `EnforceRFC952`).
    #[arg(long, env = "GANTRY_DNS_ENFORCE_RFC952")]
    pub dns_enforce_rfc952: Option<bool>,
    /// Ended runs kept per batch job, with exit codes and times (default 100; an array job keeps
    /// at least its size plus 10). Older ones are deleted from the store.
    #[arg(long, env = "GANTRY_JOB_HISTORY")]
    pub job_history: Option<usize>,
    /// How many events a `/v2/events` reader may fall behind before it is disconnected with a
    /// final `event_stream_detached` saying why (Marathon's
    /// `--event_stream_max_outstanding_messages`; default 4096).
    #[arg(long, env = "GANTRY_EVENT_STREAM_MAX_OUTSTANDING")]
    pub event_stream_max_outstanding: Option<usize>,
    /// Run as one of several masters on ZooKeeper, `zk://[user:password@]h1:2181,h2:2181/gantry`
    /// (Mesos's `--zk`): the masters elect a leader under that path; the others stand by. Without
    /// it, one master on its embedded store. See docs/ha.md.
    #[arg(long, env = "GANTRY_ZK", hide_env_values = true)]
    pub zk: Option<String>,
    /// With --zk: how many masters must be in the ZooKeeper group before one of them takes the
    /// lead (Mesos's `--quorum`; default 1). Usually a majority of the masters: 2 of 3.
    #[arg(long, env = "GANTRY_QUORUM")]
    pub quorum: Option<usize>,
    /// With --zk: the ZooKeeper session timeout (Mesos's `--zk_session_timeout`; default `10secs`).
    /// A killed leader's znode goes, and another master leads, this long after it stopped.
    /// Seconds, or a number with `ms`, `secs` or `mins`.
    #[arg(long, env = "GANTRY_ZK_SESSION_TIMEOUT")]
    pub zk_session_timeout: Option<String>,
}

impl MasterArgs {
    /// Fills what `self` lacks from `file`.
    pub fn or(self, file: MasterArgs) -> MasterArgs {
        MasterArgs {
            listen: self.listen.or(file.listen),
            state_dir: self.state_dir.or(file.state_dir),
            token: self.token.or(file.token),
            token_file: self.token_file.or(file.token_file),
            tls_cert_file: self.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: self.tls_key_file.or(file.tls_key_file),
            tls_client_ca_file: self.tls_client_ca_file.or(file.tls_client_ca_file),
            heartbeat_interval_secs: self
                .heartbeat_interval_secs
                .or(file.heartbeat_interval_secs),
            max_missed_heartbeats: self.max_missed_heartbeats.or(file.max_missed_heartbeats),
            agent_gone_secs: self.agent_gone_secs.or(file.agent_gone_secs),
            agent_reregister_secs: self.agent_reregister_secs.or(file.agent_reregister_secs),
            offer_timeout_secs: self.offer_timeout_secs.or(file.offer_timeout_secs),
            cpu_tasks_on_gpu_agents: self
                .cpu_tasks_on_gpu_agents
                .or(file.cpu_tasks_on_gpu_agents),
            principals_file: self.principals_file.or(file.principals_file),
            http_credentials: self.http_credentials.or(file.http_credentials),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes),
            max_concurrent_requests: self
                .max_concurrent_requests
                .or(file.max_concurrent_requests),
            max_connections: self.max_connections.or(file.max_connections),
            rate_limit: self.rate_limit.or(file.rate_limit),
            dns_listen: self.dns_listen.or(file.dns_listen),
            dns_domain: self.dns_domain.or(file.dns_domain),
            dns_ttl: self.dns_ttl.or(file.dns_ttl),
            dns_resolvers: self.dns_resolvers.or(file.dns_resolvers),
            dns_enforce_rfc952: self.dns_enforce_rfc952.or(file.dns_enforce_rfc952),
            job_history: self.job_history.or(file.job_history),
            event_stream_max_outstanding: self
                .event_stream_max_outstanding
                .or(file.event_stream_max_outstanding),
            zk: self.zk.or(file.zk),
            quorum: self.quorum.or(file.quorum),
            zk_session_timeout: self.zk_session_timeout.or(file.zk_session_timeout),
        }
    }

    /// Reads a TOML config file with the same keys as the flags (`state_dir = "/var/lib/gantry"`).
    pub fn from_file(path: &Path) -> Result<MasterArgs, ConfigError> {
        gantry_daemon::read_toml(path)
    }

    /// The final configuration with defaults.
    pub fn resolve(self) -> Result<MasterConfig, ConfigError> {
        let secs = |key: &'static str, v: Option<f64>, default: f64| {
            let v = v.unwrap_or(default);
            if v.is_finite() && v > 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(ConfigError::Invalid {
                    key,
                    why: format!("{v} is not a positive number of seconds"),
                })
            }
        };
        let max_missed = self.max_missed_heartbeats.unwrap_or(5);
        if max_missed == 0 {
            return Err(ConfigError::Invalid {
                key: "max_missed_heartbeats",
                why: "must be at least 1".into(),
            });
        }
        let rule = match self.cpu_tasks_on_gpu_agents.as_deref() {
            None => GpuAgentRule::default(),
            Some(v) => GpuAgentRule::parse(v).ok_or_else(|| ConfigError::Invalid {
                key: "cpu_tasks_on_gpu_agents",
                why: format!("'{v}' is not one of avoid, never, allow"),
            })?,
        };
        let rate = self.rate_limit.unwrap_or(200.0);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ConfigError::Invalid {
                key: "rate_limit",
                why: format!("{rate} is not a positive number of requests per second"),
            });
        }
        let positive = |key: &'static str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(ConfigError::Invalid {
                key,
                why: "must be at least 1".into(),
            }),
            v => Ok(v.unwrap_or(default)),
        };
        let limits = Limits {
            max_body_bytes: positive("max_body_bytes", self.max_body_bytes, 2 << 20)?,
            max_concurrent_requests: positive(
                "max_concurrent_requests",
                self.max_concurrent_requests,
                256,
            )?,
            max_connections: positive("max_connections", self.max_connections, 4096)?,
            rate_per_sec: rate,
            max_uri_bytes: 8192,
        };
        let token = self.token.filter(|t| !t.is_empty());
        if token.is_some() && self.token_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "token_file",
                why: "give the join token with --token or --token-file, not both".into(),
            });
        }
        let dns = resolve_dns(
            self.dns_listen,
            self.dns_domain,
            self.dns_ttl,
            self.dns_resolvers,
            self.dns_enforce_rfc952,
        )?;
        let tls = resolve_tls(
            self.tls_cert_file,
            self.tls_key_file,
            self.tls_client_ca_file,
        )?;
        let job_history = positive("job_history", self.job_history, 100)?;
        let event_stream_max_outstanding = positive(
            "event_stream_max_outstanding",
            self.event_stream_max_outstanding,
            4096,
        )?;
        let ha = resolve_ha(self.zk, self.quorum, self.zk_session_timeout)?;
        Ok(MasterConfig {
            ha,
            job_history,
            event_stream_max_outstanding,
            auth: AuthSettings {
                enabled: true,
                principals_file: self.principals_file,
                http_credentials: self.http_credentials,
            },
            limits,
            dns,
            place_options: PlaceOptions {
                cpu_tasks_on_gpu_agents: rule,
            },
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5050))),
            state_dir: self
                .state_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/gantry/master")),
            token,
            token_file: self.token_file,
            tls,
            heartbeat_interval: secs("heartbeat_interval_secs", self.heartbeat_interval_secs, 3.0)?,
            max_missed_heartbeats: max_missed,
            agent_gone_after: secs("agent_gone_secs", self.agent_gone_secs, 600.0)?,
            agent_reregister_timeout: secs(
                "agent_reregister_secs",
                self.agent_reregister_secs,
                120.0,
            )?,
            offer_timeout: secs("offer_timeout_secs", self.offer_timeout_secs, 60.0)?,
        })
    }
}

/// The high-availability settings; `--quorum` and `--zk-session-timeout` apply only with `--zk`.
fn resolve_ha(
    zk: Option<String>,
    quorum: Option<usize>,
    session_timeout: Option<String>,
) -> Result<Option<HaSettings>, ConfigError> {
    let Some(zk) = zk.filter(|z| !z.trim().is_empty()) else {
        // One master: the HA settings do not apply (a shared config file may carry them).
        return Ok(None);
    };
    let zk = gantry_daemon::masters::ZkUrl::parse(zk.trim()).map_err(|e| ConfigError::Invalid {
        key: "zk",
        why: e.to_string(),
    })?;
    let quorum = quorum.unwrap_or(1);
    if quorum == 0 {
        return Err(ConfigError::Invalid {
            key: "quorum",
            why: "must be at least 1".into(),
        });
    }
    let session_timeout = match session_timeout {
        None => Duration::from_secs(10),
        Some(s) => parse_duration(&s).ok_or_else(|| ConfigError::Invalid {
            key: "zk_session_timeout",
            why: format!("'{s}' is not a duration (10secs, 2500ms, 1mins or seconds)"),
        })?,
    };
    if session_timeout < Duration::from_millis(100) || session_timeout > Duration::from_secs(3600) {
        return Err(ConfigError::Invalid {
            key: "zk_session_timeout",
            why: format!("{session_timeout:?} is outside 100ms..1hour"),
        });
    }
    Ok(Some(HaSettings {
        zk,
        quorum,
        session_timeout,
    }))
}

/// A duration as Mesos's flags write them (`10secs`, `500ms`, `2mins`, `1hrs`), or plain seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "min" | "mins" => 60.0,
        "hr" | "hrs" => 3600.0,
        _ => return None,
    };
    let secs = n * per_unit;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The DNS settings, checked: a domain of valid labels, resolvers as `IP[:PORT]`.
fn resolve_dns(
    listen: Option<SocketAddr>,
    domain: Option<String>,
    ttl: Option<u32>,
    resolvers: Option<String>,
    rfc952: Option<bool>,
) -> Result<DnsSettings, ConfigError> {
    let domain = domain
        .map(|d| d.trim_matches('.').to_lowercase())
        .unwrap_or_else(|| "mesos".into());
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(ConfigError::Invalid {
            key: "dns_domain",
            why: format!("'{domain}' is not a domain of letters, digits and '-' labels"),
        });
    }
    let resolvers = resolvers
        .map(|r| crate::dns::parse_resolvers(&r))
        .transpose()
        .map_err(|why| ConfigError::Invalid {
            key: "dns_resolvers",
            why,
        })?;
    Ok(DnsSettings {
        listen,
        domain,
        ttl: ttl.unwrap_or(60),
        resolvers,
        labels: if rfc952.unwrap_or(false) {
            crate::dns::names::LabelSpec::Rfc952
        } else {
            crate::dns::names::LabelSpec::Rfc1123
        },
    })
}

/// The TLS files, which come as a certificate and key pair or not at all.
fn resolve_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert_file), Some(key_file)) => Ok(Some(TlsFiles {
            cert_file,
            key_file,
            client_ca_file: client_ca,
        })),
        (None, None) if client_ca.is_some() => Err(ConfigError::Invalid {
            key: "tls_client_ca_file",
            why: "client certificates need TLS: give --tls-cert-file and --tls-key-file too".into(),
        }),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Invalid {
            key: "tls_key_file",
            why: "--tls-cert-file needs --tls-key-file".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            key: "tls_cert_file",
            why: "--tls-key-file needs --tls-cert-file".into(),
        }),
    }
}

/// Several masters on ZooKeeper (`--zk`, `--quorum`, `--zk-session-timeout`).
#[derive(Clone, Debug)]
pub struct HaSettings {
    pub zk: gantry_daemon::masters::ZkUrl,
    /// Masters in the group before one takes the lead.
    pub quorum: usize,
    pub session_timeout: Duration,
}

/// The resolved master configuration.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// `Some`: one of several masters on ZooKeeper; `None`: the only master.
    pub ha: Option<HaSettings>,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// `None` (and no `token_file`): generate one at start-up.
    pub token: Option<String>,
    /// The join tokens' file (re-read while running), instead of `token`.
    pub token_file: Option<PathBuf>,
    /// HTTPS/WSS on the port; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    pub heartbeat_interval: Duration,
    pub max_missed_heartbeats: u32,
    pub agent_gone_after: Duration,
    pub agent_reregister_timeout: Duration,
    /// How long an external framework may hold an offer before it is rescinded.
    pub offer_timeout: Duration,
    /// Placement settings (CPU-only tasks on GPU agents).
    pub place_options: PlaceOptions,
    pub auth: AuthSettings,
    pub limits: Limits,
    /// The built-in Mesos-DNS (`--dns-*`).
    pub dns: DnsSettings,
    /// Ended runs kept per batch job.
    pub job_history: usize,
    /// How far a `/v2/events` reader may fall behind before it is disconnected.
    pub event_stream_max_outstanding: usize,
}

/// Who may use the HTTP APIs. `Debug` hides the credentials.
#[derive(Clone)]
pub struct AuthSettings {
    /// Off only in `gantry dev`.
    pub enabled: bool,
    pub principals_file: Option<PathBuf>,
    /// `USER:PASSWORD` of one admin principal.
    pub http_credentials: Option<String>,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("enabled", &self.enabled)
            .field("principals_file", &self.principals_file)
            .field(
                "http_credentials",
                &self.http_credentials.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// Bounds on what one request, and one principal, may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_concurrent_requests: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Requests per second per principal (bursts of twice that).
    pub rate_per_sec: f64,
    /// Longest request target (path and query) accepted; longer gets 414.
    pub max_uri_bytes: usize,
}

impl MasterConfig {
    /// How long without a heartbeat before an agent is unreachable.
    pub fn unreachable_after(&self) -> Duration {
        self.heartbeat_interval * self.max_missed_heartbeats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = MasterArgs::default().resolve().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:5050");
        assert_eq!(c.unreachable_after(), Duration::from_secs(15));
        let bad = MasterArgs {
            heartbeat_interval_secs: Some(-1.0),
            ..Default::default()
        };
        let e = bad.resolve().unwrap_err().to_string();
        assert!(e.starts_with("heartbeat_interval_secs"), "{e}");
        let file: MasterArgs = toml::from_str("listen = \"0.0.0.0:6060\"\ntoken = \"x\"").unwrap();
        let merged = MasterArgs {
            token: Some("flag".into()),
            ..Default::default()
        }
        .or(file);
        assert_eq!(merged.token.as_deref(), Some("flag"));
        assert_eq!(merged.listen.unwrap().port(), 6060);
        assert_eq!(c.place_options.cpu_tasks_on_gpu_agents, GpuAgentRule::Avoid);
        let never: MasterArgs = toml::from_str("cpu_tasks_on_gpu_agents = \"never\"").unwrap();
        assert_eq!(
            never
                .resolve()
                .unwrap()
                .place_options
                .cpu_tasks_on_gpu_agents,
            GpuAgentRule::Never
        );
        let bad = MasterArgs {
            cpu_tasks_on_gpu_agents: Some("sometimes".into()),
            ..Default::default()
        };
        let e = bad.resolve().unwrap_err().to_string();
        assert!(e.starts_with("cpu_tasks_on_gpu_agents"), "{e}");
    }

    #[test]
    fn tokens_and_tls_files_come_in_valid_combinations() {
        let both = MasterArgs {
            token: Some("t".into()),
            token_file: Some("/etc/gantry/tokens".into()),
            ..Default::default()
        };
        let e = both.resolve().unwrap_err().to_string();
        assert!(e.starts_with("token_file") && e.contains("not both"), "{e}");
        let file: MasterArgs = toml::from_str(
            "token_file = \"/t\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\n\
             tls_client_ca_file = \"/ca.pem\"",
        )
        .unwrap();
        let c = file.resolve().unwrap();
        assert_eq!(c.token_file, Some(PathBuf::from("/t")));
        let tls = c.tls.unwrap();
        assert_eq!(tls.key_file, PathBuf::from("/k.pem"));
        assert_eq!(tls.client_ca_file, Some(PathBuf::from("/ca.pem")));
        let half = MasterArgs {
            tls_cert_file: Some("/c.pem".into()),
            ..Default::default()
        };
        let e = half.resolve().unwrap_err().to_string();
        assert!(e.starts_with("tls_key_file"), "{e}");
        let ca_only = MasterArgs {
            tls_client_ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        let e = ca_only.resolve().unwrap_err().to_string();
        assert!(e.starts_with("tls_client_ca_file"), "{e}");
        assert!(MasterArgs::default().resolve().unwrap().tls.is_none());
    }

    #[test]
    fn ha_flags_parse_default_as_mesos_and_need_zk() {
        assert!(MasterArgs::default().resolve().unwrap().ha.is_none());
        let file: MasterArgs = toml::from_str(
            "zk = \"zk://a:2181,b:2181/gantry\"\nquorum = 2\nzk_session_timeout = \"2500ms\"",
        )
        .unwrap();
        let ha = file.resolve().unwrap().ha.unwrap();
        assert_eq!(ha.zk.servers, "a:2181,b:2181");
        assert_eq!(ha.zk.path, "/gantry");
        assert_eq!(
            (ha.quorum, ha.session_timeout),
            (2, Duration::from_millis(2500))
        );
        let plain = MasterArgs {
            zk: Some("zk://a:2181/m".into()),
            ..Default::default()
        };
        let ha = plain.resolve().unwrap().ha.unwrap();
        assert_eq!(
            (ha.quorum, ha.session_timeout),
            (1, Duration::from_secs(10))
        );
        for (t, secs) in [("10secs", 10.0), ("3", 3.0), ("1mins", 60.0), ("0.5s", 0.5)] {
            assert_eq!(
                parse_duration(t),
                Some(Duration::from_secs_f64(secs)),
                "{t}"
            );
        }
        let alone: MasterArgs = toml::from_str("quorum = 2").unwrap();
        assert!(alone.resolve().unwrap().ha.is_none(), "ignored without zk");
        for (bad, key) in [
            ("zk = \"http://a:1\"", "zk"),
            ("zk = \"zk://a:2181/g\"\nquorum = 0", "quorum"),
            (
                "zk = \"zk://a:2181/g\"\nzk_session_timeout = \"soon\"",
                "zk_session_timeout",
            ),
            (
                "zk = \"zk://a:2181/g\"\nzk_session_timeout = \"1ms\"",
                "zk_session_timeout",
            ),
        ] {
            let a: MasterArgs = toml::from_str(bad).unwrap();
            let e = a.resolve().unwrap_err().to_string();
            assert!(e.starts_with(key), "{bad}: {e}");
        }
    }

    #[test]
    fn dns_flags_default_as_mesos_dns_and_are_checked() {
        let d = MasterArgs::default().resolve().unwrap().dns;
        assert_eq!((d.listen, d.domain.as_str(), d.ttl), (None, "mesos", 60));
        assert_eq!(d.resolvers, None);
        let file: MasterArgs = toml::from_str(
            "dns_listen = \"127.0.0.1:8053\"\ndns_domain = \"Gantry.Lan.\"\ndns_ttl = 5\n\
             dns_resolvers = \"10.0.0.1, 10.0.0.2:5353\"",
        )
        .unwrap();
        let d = file.resolve().unwrap().dns;
        assert_eq!(d.listen.unwrap().port(), 8053);
        assert_eq!((d.domain.as_str(), d.ttl), ("gantry.lan", 5));
        assert_eq!(d.resolvers.unwrap().len(), 2);
        for (bad, key) in [
            ("dns_domain = \"a..b\"", "dns_domain"),
            ("dns_domain = \"a_b\"", "dns_domain"),
            ("dns_resolvers = \"x\"", "dns_resolvers"),
        ] {
            let a: MasterArgs = toml::from_str(bad).unwrap();
            let e = a.resolve().unwrap_err().to_string();
            assert!(e.starts_with(key), "{bad}: {e}");
        }
    }
}
