//! The normalized Marathon app definition as Gantry stores it: every field with its Marathon default,
//! deprecated forms already translated. Deserializing accepts older stored JSON (missing fields take
//! their defaults); serializing (in `json_output.rs`) gives the JSON Marathon returns (spec §3.1).

use super::checks::{HealthCheck, ReadinessCheck};
use super::constraints::Constraint;
use super::container::{Container, PortMapping};
use super::strategies::{KillSelection, UnreachableStrategy, UpgradeStrategy, VersionInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A port definition (host networking).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// The service port (0 asks Marathon to assign one).
    #[serde(default)]
    pub port: u32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl PortDefinition {
    /// The definition Marathon uses when an app gives neither `ports` nor `portDefinitions`:
    /// `{"port":0,"protocol":"tcp","name":"default"}`.
    pub fn default_port() -> Self {
        PortDefinition {
            port: 0,
            protocol: default_protocol(),
            name: Some("default".into()),
            labels: BTreeMap::new(),
        }
    }
}

pub(super) fn default_protocol() -> String {
    "tcp".into()
}

/// A network mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// The agent's network namespace (the default).
    #[default]
    #[serde(rename = "host")]
    Host,
    /// The Mesos/Docker bridge with port mappings.
    #[serde(rename = "container/bridge")]
    ContainerBridge,
    /// A named container (CNI / Docker user) network.
    #[serde(rename = "container")]
    Container,
}

impl NetworkMode {
    /// Parses Marathon's literal (`host`, `container/bridge`, `container`).
    pub fn from_literal(s: &str) -> Option<Self> {
        match s {
            "host" => Some(NetworkMode::Host),
            "container/bridge" => Some(NetworkMode::ContainerBridge),
            "container" => Some(NetworkMode::Container),
            _ => None,
        }
    }
}

/// One entry of `networks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default)]
    pub mode: NetworkMode,
    /// Required for `container` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `fetch`: a URI the agent downloads into the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchUri {
    pub uri: String,
    #[serde(default = "yes")]
    pub extract: bool,
    #[serde(default)]
    pub executable: bool,
    #[serde(default)]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

fn yes() -> bool {
    true
}

/// An app as Marathon stores and returns it. Serializing gives Marathon's app JSON (§3.1): the
/// always-present fields always, the optional ones only when set or non-empty.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: String,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default = "one")]
    pub instances: u32,
    #[serde(default = "one_f")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: u32,
    /// Gantry extension `numaPolicy` (`none`, `prefer`, `require`); `None` when not given, which
    /// means `prefer` for apps with GPUs and `none` otherwise. Emitted only when given.
    #[serde(default)]
    pub numa_policy: Option<gantry_gpu::NumaPolicy>,
    /// Gantry extension `gpuProfile`: every GPU of a task is a MIG device of this profile
    /// (`1g.10gb`); `None`: whole GPUs. Emitted only when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_profile: Option<String>,
    /// Gantry extension `gang` (docs/gang.md): the app's `instances` are one gang, placed all
    /// together or not at all, ended and relaunched whole. Emitted only when `true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gang: bool,
    /// Gantry extension `gangTimeoutSeconds`: how long a gang waits for room before its app backs
    /// off (`None`: the default 600; `0`: forever). Emitted only when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Host networking only; empty on other networks.
    #[serde(default)]
    pub port_definitions: Vec<PortDefinition>,
    #[serde(default)]
    pub task_kill_grace_period_seconds: Option<f64>,
    /// The version timestamp; empty until the app is stored.
    #[serde(default)]
    pub version: String,
    /// `""` means the default (command) executor.
    #[serde(default)]
    pub executor: String,
    #[serde(default = "one_u64")]
    pub backoff_seconds: u64,
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "default_max_launch_delay")]
    pub max_launch_delay_seconds: u64,
    #[serde(default)]
    pub require_ports: bool,
    /// Never empty after parsing: `[{"mode":"host"}]` by default.
    #[serde(default = "default_networks")]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default)]
    pub readiness_checks: Vec<ReadinessCheck>,
    /// `[field, OPERATOR]` or `[field, OPERATOR, value]`; see [`AppDefinition::constraint_list`].
    #[serde(default)]
    pub constraints: Vec<Vec<String>>,
    #[serde(default)]
    pub fetch: Vec<FetchUri>,
    /// Absolute app or group ids.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub accepted_resource_roles: Vec<String>,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    #[serde(default)]
    pub unreachable_strategy: UnreachableStrategy,
    #[serde(default)]
    pub kill_selection: KillSelection,
    #[serde(default = "default_role")]
    pub role: String,
    /// Deprecated and without effect; echoed for resident apps.
    #[serde(default)]
    pub residency: Option<Value>,
    #[serde(default)]
    pub version_info: VersionInfo,
}

/// Parses the `numaPolicy` literal (`none`, `prefer`, `require`).
pub(super) fn numa_policy_from_literal(s: &str) -> Option<gantry_gpu::NumaPolicy> {
    match s {
        "none" => Some(gantry_gpu::NumaPolicy::None),
        "prefer" => Some(gantry_gpu::NumaPolicy::Prefer),
        "require" => Some(gantry_gpu::NumaPolicy::Require),
        _ => None,
    }
}

impl AppDefinition {
    /// The NUMA policy placement applies: the app's `numaPolicy`, else `prefer` when it asks for
    /// GPUs and `none` when it does not.
    pub fn effective_numa_policy(&self) -> gantry_gpu::NumaPolicy {
        self.numa_policy.unwrap_or(if self.gpus > 0 {
            gantry_gpu::NumaPolicy::Prefer
        } else {
            gantry_gpu::NumaPolicy::None
        })
    }
}

fn one() -> u32 {
    1
}
fn one_u64() -> u64 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_mem() -> f64 {
    128.0
}
fn default_backoff_factor() -> f64 {
    1.15
}
fn default_max_launch_delay() -> u64 {
    300
}
pub(super) fn default_networks() -> Vec<Network> {
    vec![Network::default()]
}
pub(super) fn default_role() -> String {
    "*".into()
}

impl AppDefinition {
    /// An app with `id` and every Marathon default (no command: add `cmd`, `args` or `container`
    /// before storing it).
    pub fn with_defaults(id: &str) -> Self {
        AppDefinition {
            id: id.to_string(),
            cmd: None,
            args: None,
            user: None,
            instances: one(),
            cpus: one_f(),
            mem: default_mem(),
            disk: 0.0,
            gpus: 0,
            numa_policy: None,
            gpu_profile: None,
            gang: false,
            gang_timeout_seconds: None,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            port_definitions: vec![PortDefinition::default_port()],
            task_kill_grace_period_seconds: None,
            version: String::new(),
            executor: String::new(),
            backoff_seconds: one_u64(),
            backoff_factor: default_backoff_factor(),
            max_launch_delay_seconds: default_max_launch_delay(),
            require_ports: false,
            networks: default_networks(),
            container: None,
            health_checks: Vec::new(),
            readiness_checks: Vec::new(),
            constraints: Vec::new(),
            fetch: Vec::new(),
            dependencies: Vec::new(),
            accepted_resource_roles: Vec::new(),
            upgrade_strategy: UpgradeStrategy::default(),
            unreachable_strategy: UnreachableStrategy::default(),
            kill_selection: KillSelection::default(),
            role: default_role(),
            residency: None,
            version_info: VersionInfo::default(),
        }
    }

    /// Whether the app uses host networking (no network, or a `host` one).
    pub fn is_host_networking(&self) -> bool {
        self.networks.iter().all(|n| n.mode == NetworkMode::Host)
    }

    /// Whether the app uses the bridge network.
    pub fn is_bridge_networking(&self) -> bool {
        self.networks
            .iter()
            .any(|n| n.mode == NetworkMode::ContainerBridge)
    }

    /// The port mappings (non-host networks), empty on host networking.
    pub fn port_mappings(&self) -> &[PortMapping] {
        match &self.container {
            Some(c) if !self.is_host_networking() => c.port_mappings.as_deref().unwrap_or(&[]),
            _ => &[],
        }
    }

    /// How many host ports one task of this app needs: its port definitions on host networking,
    /// its port mappings that have a `hostPort` on other networks.
    pub fn host_port_count(&self) -> usize {
        if self.is_host_networking() {
            self.port_definitions.len()
        } else {
            self.port_mappings()
                .iter()
                .filter(|m| m.host_port.is_some())
                .count()
        }
    }

    /// The service ports, by port index (0 = not assigned yet).
    pub fn service_ports(&self) -> Vec<u32> {
        if self.is_host_networking() {
            self.port_definitions.iter().map(|p| p.port).collect()
        } else {
            self.port_mappings()
                .iter()
                .map(|m| m.service_port)
                .collect()
        }
    }

    /// Whether the app has a persistent volume, which pins its instances to their agents.
    pub fn is_resident(&self) -> bool {
        self.container
            .as_ref()
            .is_some_and(Container::has_persistent_volume)
    }

    /// The constraints, typed. Stored constraints were validated on input, so none is dropped.
    pub fn constraint_list(&self) -> Vec<Constraint> {
        self.constraints
            .iter()
            .filter_map(|c| Constraint::from_parts(c).ok())
            .collect()
    }

    /// Records a configuration change (or restart) at `timestamp`: bumps `version` and both
    /// `versionInfo` fields.
    pub fn stamp_config_change(&mut self, timestamp: &str) {
        self.version = timestamp.to_string();
        self.version_info.last_config_change_at = timestamp.to_string();
        self.version_info.last_scaling_at = timestamp.to_string();
    }

    /// Records a scale-only change at `timestamp`: bumps `version` and `lastScalingAt`.
    pub fn stamp_scaling(&mut self, timestamp: &str) {
        self.version = timestamp.to_string();
        self.version_info.last_scaling_at = timestamp.to_string();
    }
}
