//! What an agent tells the master about itself: host, port, total resources, attributes, NUMA domains
//! and GPUs (with their health).

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
    /// The agent's GPUs, healthy or not (`resources.gpus` counts the healthy ones); empty when
    /// it has none or no inventory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuInfo>,
    /// Disagreements found while discovering the topology (e.g. NVML and hwloc place a GPU on
    /// different NUMA nodes). Reported as found, never resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_warnings: Vec<String>,
    /// Gantry version of the agent binary.
    pub version: String,
    /// The back ends that run tasks here, as Mesos's `--containerizers` names them: `native` or
    /// `process` (plain processes), and `docker` where a Docker containerizer runs. An agent that
    /// sends none (an older one) runs neither Docker containers nor images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containerizers: Vec<String>,
    /// Image formats the native containerizer can run (Mesos's `--image_providers`: `docker`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_providers: Vec<String>,
    /// The container (CNI) networks tasks here may join, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
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
    /// The node's cores, each the OS indexes of its PUs (hyperthreads), so that the master can
    /// give a task whole cores; empty when not discovered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<Vec<u32>>,
}

/// One GPU as the agent reports it (the wire form of the inventory's GPU).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuInfo {
    /// NVML index (as `nvidia-smi` numbers GPUs).
    pub index: u32,
    /// Device minor: `/dev/nvidia<minor>`.
    pub minor: u32,
    /// `GPU-xxxxxxxx-...`.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// PCI address, canonical `dddd:bb:dd.f`.
    pub pci_bus_id: String,
    /// NUMA node the GPU is attached to, if known.
    pub numa_node: Option<u32>,
    /// Indexes of GPUs reachable over NVLink, sorted.
    pub nvlink_peers: Vec<u32>,
    /// The PCIe switch the GPU hangs off (its upstream port's PCI address), if known.
    pub pcie_switch: Option<String>,
    /// `unsupported`, `disabled` or `enabled`.
    pub mig_mode: String,
    /// False once a critical XID or ECC error was seen: the master places nothing on it.
    pub healthy: bool,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_reason: Option<String>,
    /// Set on a MIG device (a GPU of its own, UUID `MIG-...`): its parent and slice. `minor`
    /// and `pci_bus_id` are the parent's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigInfo>,
}

/// The slice of a MIG device (a GPU instance and a compute instance inside it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigInfo {
    /// NVML index of the parent GPU.
    pub parent_index: u32,
    /// UUID of the parent GPU (`GPU-...`).
    pub parent_uuid: String,
    /// GPU instance id on the parent.
    pub gpu_instance: u32,
    /// Compute instance id inside the GPU instance.
    pub compute_instance: u32,
    /// Profile name, e.g. `1g.10gb`, `3g.40gb`.
    pub profile: String,
    /// Streaming multiprocessors of the slice.
    pub sm_count: u32,
    /// GPU-instance slices (the `Ng` of the profile).
    pub gpu_slices: u32,
    /// Minors of the slice's `/dev/nvidia-caps/nvidia-cap<N>` nodes (GPU instance access, then
    /// compute instance access).
    pub caps_minors: Vec<u32>,
}

impl AgentInfo {
    /// How many of the agent's reported GPUs are healthy and offered: a GPU with MIG enabled is
    /// offered as its MIG devices (each counts one), not itself.
    pub fn healthy_gpus(&self) -> u32 {
        self.gpus
            .iter()
            .filter(|g| g.healthy && (g.mig.is_some() || g.mig_mode != "enabled"))
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_agent_info_without_gpus_still_parses_and_gpus_are_omitted_when_empty() {
        let old = r#"{"hostname":"h","port":5051,"numa_domains":[{"id":0,"cpus":[0,1],"mem":1024.0,"gpus":[]}]}"#;
        let info: AgentInfo = serde_json::from_str(old).expect("v1 agent info parses");
        assert!(info.gpus.is_empty());
        assert!(info.numa_domains[0].cores.is_empty());
        let back = serde_json::to_value(&info).expect("serializes");
        assert!(back.get("gpus").is_none(), "{back}");
        assert!(back["numa_domains"][0].get("cores").is_none(), "{back}");
    }

    #[test]
    fn healthy_gpus_counts_only_healthy_ones() {
        let gpu = |index, healthy| GpuInfo {
            index,
            healthy,
            ..GpuInfo::default()
        };
        let info = AgentInfo {
            gpus: vec![gpu(0, true), gpu(1, false), gpu(2, true)],
            ..AgentInfo::default()
        };
        assert_eq!(info.healthy_gpus(), 2);
        // A MIG-enabled GPU with two MIG devices offers two, not three.
        let parent = GpuInfo {
            mig_mode: "enabled".into(),
            ..gpu(3, true)
        };
        let slice = |i| GpuInfo {
            mig: Some(MigInfo::default()),
            ..gpu(i, true)
        };
        let info = AgentInfo {
            gpus: vec![parent, slice(4000), slice(4001)],
            ..AgentInfo::default()
        };
        assert_eq!(info.healthy_gpus(), 2);
    }
}
