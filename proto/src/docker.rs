//! The Docker part of a task's container (`container.type: DOCKER` in Marathon and Chronos): the
//! image, its options, the network and port mappings, and the volumes, as the agent's Docker
//! containerizer needs them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A task run by the Docker containerizer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerSpec {
    /// The image as `docker run` takes it (`nginx:1.11`, `registry:5000/team/app@sha256:...`).
    pub image: String,
    /// Pull the image even when a copy is present.
    pub force_pull_image: bool,
    /// `--privileged` (refused unless the agent allows it).
    pub privileged: bool,
    /// `docker run --key=value` options, in order (the agent allows only some).
    pub parameters: Vec<DockerParameter>,
    pub network: DockerNetwork,
    /// Port mappings on BRIDGE and USER networks; the ones with a host port take the task's
    /// `ports` in order.
    pub port_mappings: Vec<DockerPortMapping>,
    pub volumes: Vec<DockerVolume>,
}

/// A `--key=value` option of `docker run`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

/// The network a Docker task joins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DockerNetwork {
    /// The host's network namespace.
    #[default]
    Host,
    /// Docker's default bridge, with port mappings.
    Bridge,
    /// A Docker "user" network, by name.
    User { name: String },
    /// No network at all (`none`).
    None,
}

/// One port mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerPortMapping {
    /// The port inside the container; 0 means "the same as the host port".
    pub container_port: u32,
    /// True when the mapping takes a host port (the next one of the task's `ports`).
    pub host_port: bool,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    pub name: Option<String>,
}

/// One volume of a Docker task: a host path bind-mounted, or a named Docker volume (with its
/// driver, for volume plugins).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerVolume {
    pub container_path: String,
    /// A host path (absolute) or, when relative, a path in the task's sandbox.
    pub host_path: Option<String>,
    /// `RW` or `RO`.
    pub mode: String,
    /// A named Docker volume instead of a host path.
    pub named: Option<NamedVolume>,
}

/// A named Docker volume, created by its driver when it does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedVolume {
    pub name: String,
    /// The volume driver (`local` when none is given).
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

impl DockerVolume {
    /// True for a read-only volume.
    pub fn read_only(&self) -> bool {
        self.mode.eq_ignore_ascii_case("RO")
    }
}
