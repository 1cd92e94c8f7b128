//! Health checks (spec §2.6) and readiness checks (spec §2.7), stored with every default filled
//! in, because marathon-lb indexes the health-check timing fields directly.

use serde::{Deserialize, Serialize};

/// Who runs a health check and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckProtocol {
    /// Marathon-level HTTP check (the default).
    #[default]
    Http,
    Https,
    Tcp,
    /// A shell command run next to the task (Mesos-level).
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

impl HealthCheckProtocol {
    /// Every literal, as Marathon spells it.
    pub const LITERALS: [&'static str; 7] = [
        "HTTP",
        "HTTPS",
        "TCP",
        "COMMAND",
        "MESOS_HTTP",
        "MESOS_HTTPS",
        "MESOS_TCP",
    ];

    /// Parses Marathon's literal (`HTTP`, `MESOS_TCP`, ...).
    pub fn from_literal(s: &str) -> Option<Self> {
        use HealthCheckProtocol::*;
        Some(match s {
            "HTTP" => Http,
            "HTTPS" => Https,
            "TCP" => Tcp,
            "COMMAND" => Command,
            "MESOS_HTTP" => MesosHttp,
            "MESOS_HTTPS" => MesosHttps,
            "MESOS_TCP" => MesosTcp,
            _ => return None,
        })
    }

    /// Whether Mesos (the agent) runs it rather than Marathon (the master).
    pub fn is_mesos_level(self) -> bool {
        !matches!(
            self,
            HealthCheckProtocol::Http | HealthCheckProtocol::Https | HealthCheckProtocol::Tcp
        )
    }

    /// Whether it probes an HTTP path.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            HealthCheckProtocol::Http
                | HealthCheckProtocol::Https
                | HealthCheckProtocol::MesosHttp
                | HealthCheckProtocol::MesosHttps
        )
    }

    /// Whether it needs a port (everything but COMMAND).
    pub fn needs_port(self) -> bool {
        self != HealthCheckProtocol::Command
    }
}

/// The command of a COMMAND health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCheck {
    pub value: String,
}

/// One entry of `healthChecks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub protocol: HealthCheckProtocol,
    /// The HTTP path (`/` by default for HTTP-style checks; absent for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports; 0 is filled in when neither `port` nor `portIndex` is given and
    /// the app has ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    /// A fixed port; wins over `portIndex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    #[serde(default = "default_grace_period")]
    pub grace_period_seconds: u64,
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_failures")]
    pub max_consecutive_failures: u32,
    #[serde(default = "default_delay")]
    pub delay_seconds: u64,
    /// HTTP-style checks only (absent for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
    /// `IPv4` (default) or `IPv6`; emitted for Mesos HTTP/TCP checks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
}

pub(super) fn default_grace_period() -> u64 {
    300
}
pub(super) fn default_interval() -> u64 {
    60
}
pub(super) fn default_timeout() -> u64 {
    20
}
pub(super) fn default_max_failures() -> u32 {
    3
}
pub(super) fn default_delay() -> u64 {
    15
}

impl HealthCheck {
    /// A check of `protocol` with every default; the per-protocol optional fields are filled by
    /// [`HealthCheck::fill_protocol_defaults`].
    pub fn with_protocol(protocol: HealthCheckProtocol) -> Self {
        let mut hc = HealthCheck {
            protocol,
            path: None,
            port_index: None,
            port: None,
            command: None,
            grace_period_seconds: default_grace_period(),
            interval_seconds: default_interval(),
            timeout_seconds: default_timeout(),
            max_consecutive_failures: default_max_failures(),
            delay_seconds: default_delay(),
            ignore_http1xx: None,
            ip_protocol: None,
        };
        hc.fill_protocol_defaults();
        hc
    }

    /// Fills the defaults that depend on the protocol (`path`, `ignoreHttp1xx`, `ipProtocol`) and
    /// drops fields the protocol does not use.
    pub fn fill_protocol_defaults(&mut self) {
        use HealthCheckProtocol::*;
        if self.protocol.is_http() {
            self.path.get_or_insert_with(|| "/".into());
            self.ignore_http1xx.get_or_insert(false);
        } else {
            self.path = None;
            self.ignore_http1xx = None;
        }
        if matches!(self.protocol, MesosHttp | MesosHttps | MesosTcp) {
            self.ip_protocol.get_or_insert_with(|| "IPv4".into());
        } else {
            self.ip_protocol = None;
        }
        if self.protocol != Command {
            self.command = None;
        }
    }
}

/// The `readinessChecks` entry (at most one per app).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    #[serde(default = "default_readiness_name")]
    pub name: String,
    /// `HTTP` or `HTTPS`.
    #[serde(default = "default_readiness_protocol")]
    pub protocol: String,
    #[serde(default = "default_readiness_path")]
    pub path: String,
    /// The name of the port definition or mapping to probe.
    #[serde(default = "default_readiness_port_name")]
    pub port_name: String,
    #[serde(default = "default_readiness_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_readiness_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_ready_codes")]
    pub http_status_codes_for_ready: Vec<u32>,
    #[serde(default)]
    pub preserve_last_response: bool,
}

pub(super) fn default_readiness_name() -> String {
    "readinessCheck".into()
}
pub(super) fn default_readiness_protocol() -> String {
    "HTTP".into()
}
pub(super) fn default_readiness_path() -> String {
    "/".into()
}
pub(super) fn default_readiness_port_name() -> String {
    "http-api".into()
}
pub(super) fn default_readiness_interval() -> u64 {
    30
}
pub(super) fn default_readiness_timeout() -> u64 {
    10
}
pub(super) fn default_ready_codes() -> Vec<u32> {
    vec![200]
}
