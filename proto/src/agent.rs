//! What an agent tells the master about itself: host, port, total resources, attributes, NUMA domains.

use crate::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An agent's description, sent at (re-)registration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    /// Host name (or address) other machines reach the agent and its tasks at.
    pub hostname: String,
    /// The port of the agent's own HTTP endpoint (`/state`).
    pub port: u16,
    /// Everything the agent offers for tasks.
    pub resources: Resources,
    /// Free-form attributes for placement constraints (`rack: r1`).
    pub attributes: BTreeMap<String, String>,
    /// NUMA domains (CPUs, memory and GPUs that belong together); empty when not discovered.
    pub numa_domains: Vec<NumaDomain>,
    /// Gantry version of the agent binary.
    pub version: String,
}

/// One NUMA node as the agent sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NumaDomain {
    /// The OS index of the NUMA node.
    pub id: u32,
    /// OS indexes of the processing units (logical CPUs) on this node.
    pub cpus: Vec<u32>,
    /// Memory local to this node, MiB.
    pub mem: f64,
    /// Indexes of the GPUs attached to this node.
    pub gpus: Vec<u32>,
}
