//! An app's `container` (spec §2.4): DOCKER or MESOS, the docker image and options, port mappings
//! for non-host networks, and volumes (echoed as given, with `mode` filled in).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Which containerizer runs the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerKind {
    /// The Docker containerizer (Marathon's default when a container object is given).
    #[default]
    Docker,
    /// The universal (Mesos) containerizer; may still run a Docker image.
    Mesos,
}

/// The `container` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type", default)]
    pub kind: ContainerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerContainer>,
    /// Host, persistent and external volumes, as given (with `mode` defaulted to `RW`).
    #[serde(default)]
    pub volumes: Vec<Value>,
    /// Port mappings: `Some` (possibly empty) on non-host networks, `None` on host networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
}

impl Container {
    /// Whether a volume is a local persistent volume, which makes the app resident.
    pub fn has_persistent_volume(&self) -> bool {
        self.volumes.iter().any(|v| v.get("persistent").is_some())
    }

    /// The docker image, if any.
    pub fn image(&self) -> Option<&str> {
        self.docker.as_ref().map(|d| d.image.as_str())
    }
}

/// The `container.docker` object (its deprecated `network` and `portMappings` are translated into
/// `networks` and `container.portMappings` on input and never stored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerContainer {
    pub image: String,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub parameters: Vec<DockerParameter>,
    /// Deprecated docker credential `{principal, secret}`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Value>,
}

/// A `--key=value` option passed to the docker CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

/// A port mapping on a non-host network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the container; 0 means "the same as the assigned host port".
    #[serde(default)]
    pub container_port: u32,
    /// The host port: 0 = dynamic; `None` = no host port (container mode without `hostPort`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// The service port; 0 asks Marathon to assign one.
    #[serde(default)]
    pub service_port: u32,
    #[serde(default = "super::model::default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl PortMapping {
    /// The mapping Marathon adds when a non-host app gives none: named `default`, with a dynamic
    /// host port on the bridge network and no host port on a container network.
    pub fn default_for(bridge: bool) -> Self {
        PortMapping {
            container_port: 0,
            host_port: bridge.then_some(0),
            service_port: 0,
            protocol: "tcp".into(),
            name: Some("default".into()),
            labels: BTreeMap::new(),
        }
    }
}
