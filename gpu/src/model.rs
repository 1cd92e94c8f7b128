//! One NVIDIA GPU as the inventory describes it: identity, memory, locality, links, MIG, health.
//! A MIG device is a [`Gpu`] of its own whose [`Gpu::mig`] names its parent and slice.

use crate::mig::MigSlice;
use gantry_topology::PciBusId;
use serde::{Deserialize, Serialize};

/// MIG (multi-instance GPU) mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigMode {
    /// The GPU cannot do MIG (before A100).
    Unsupported,
    /// MIG capable, disabled: the GPU is handed out whole.
    Disabled,
    /// MIG enabled: the GPU is split into instances.
    Enabled,
}

/// Whether the GPU may be given to tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum GpuHealth {
    /// Usable.
    Healthy,
    /// Not to be placed on; `reason` says why (e.g. `critical XID 79 (GPU has fallen off the bus)`).
    Unhealthy {
        /// Why, for the state endpoints and the UI.
        reason: String,
    },
}

impl GpuHealth {
    /// True for [`GpuHealth::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, GpuHealth::Healthy)
    }
}

/// One GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// NVML index (as `nvidia-smi` numbers GPUs).
    pub index: u32,
    /// Device minor: the GPU is `/dev/nvidia<minor>`, char device 195:`minor`.
    pub minor: u32,
    /// `GPU-xxxxxxxx-...`.
    pub uuid: String,
    /// Product name, e.g. `Tesla V100-SXM3-32GB-H`.
    pub name: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// PCI address, canonical `dddd:bb:dd.f`.
    pub pci_bus_id: PciBusId,
    /// NUMA node (OS index) the GPU is attached to, if known.
    pub numa_node: Option<u32>,
    /// PUs (OS indexes) local to the GPU, sorted.
    pub cpu_affinity: Vec<u32>,
    /// Indexes of GPUs reachable over NVLink (directly or through NVSwitch), sorted.
    pub nvlink_peers: Vec<u32>,
    /// The PCIe switch the GPU hangs off (see `gantry_topology::GpuLocality::pcie_switch`).
    #[serde(default)]
    pub pcie_switch: Option<PciBusId>,
    /// MIG mode (of the parent, for a MIG device).
    pub mig_mode: MigMode,
    /// Health.
    pub health: GpuHealth,
    /// Set on a MIG device: its parent GPU, instances, profile and `/dev/nvidia-caps` minors.
    /// `minor` and `pci_bus_id` are then the parent's, `memory_mib` the slice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigSlice>,
}

impl Gpu {
    /// True for a MIG device.
    pub fn is_mig_device(&self) -> bool {
        self.mig.is_some()
    }

    /// True when the GPU is handed out whole (to tasks without a `gpuProfile`): not a MIG
    /// device, and not a GPU with MIG enabled (only its MIG devices are given then).
    pub fn is_whole(&self) -> bool {
        self.mig.is_none() && self.mig_mode != MigMode::Enabled
    }

    /// The MIG profile (`1g.10gb`) of a MIG device.
    pub fn mig_profile(&self) -> Option<&str> {
        self.mig.as_ref().map(|m| m.profile.as_str())
    }
}
