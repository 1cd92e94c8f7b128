//! Conversions between the inventory's [`Gpu`] and the wire types of `gantry-proto`: the
//! [`GpuInfo`] an agent reports, the [`GpuAssignment`] a task is given, and NUMA domains with
//! their cores for the master's placement.

use crate::device_rules::visible_devices_env;
use crate::mig::MigSlice;
use crate::model::{Gpu, GpuHealth, MigMode};
use gantry_proto::{GpuAssignment, GpuInfo, MigInfo, NumaDomain};
use gantry_topology::{PciBusId, Topology};

fn mig_name(m: MigMode) -> &'static str {
    match m {
        MigMode::Unsupported => "unsupported",
        MigMode::Disabled => "disabled",
        MigMode::Enabled => "enabled",
    }
}

impl From<&Gpu> for GpuInfo {
    fn from(g: &Gpu) -> Self {
        let (healthy, unhealthy_reason) = match &g.health {
            GpuHealth::Healthy => (true, None),
            GpuHealth::Unhealthy { reason } => (false, Some(reason.clone())),
        };
        GpuInfo {
            index: g.index,
            minor: g.minor,
            uuid: g.uuid.clone(),
            name: g.name.clone(),
            memory_mib: g.memory_mib,
            pci_bus_id: g.pci_bus_id.to_string(),
            numa_node: g.numa_node,
            nvlink_peers: g.nvlink_peers.clone(),
            pcie_switch: g.pcie_switch.as_ref().map(ToString::to_string),
            mig_mode: mig_name(g.mig_mode).to_string(),
            healthy,
            unhealthy_reason,
            mig: g.mig.as_ref().map(|m| MigInfo {
                parent_index: m.parent_index,
                parent_uuid: m.parent_uuid.clone(),
                gpu_instance: m.gpu_instance,
                compute_instance: m.compute_instance,
                profile: m.profile.clone(),
                sm_count: m.sm_count,
                gpu_slices: m.gpu_slices,
                caps_minors: m.caps_minors.clone(),
            }),
        }
    }
}

/// Why a reported [`GpuInfo`] cannot be read back as a [`Gpu`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuInfoError {
    /// The PCI address does not parse.
    #[error("GPU {index}: '{pci}' is not a PCI address (dddd:bb:dd.f)")]
    PciBusId {
        /// The GPU's index.
        index: u32,
        /// What was reported.
        pci: String,
    },
}

impl TryFrom<&GpuInfo> for Gpu {
    type Error = GpuInfoError;

    /// The master's view of a reported GPU. The CPU affinity is not on the wire (the NUMA domain
    /// carries it) and is left empty; an unknown MIG mode reads as `unsupported`; an unparseable
    /// switch address as no switch.
    fn try_from(g: &GpuInfo) -> Result<Self, Self::Error> {
        let pci_bus_id = PciBusId::parse(&g.pci_bus_id).ok_or_else(|| GpuInfoError::PciBusId {
            index: g.index,
            pci: g.pci_bus_id.clone(),
        })?;
        let mig_mode = match g.mig_mode.as_str() {
            "enabled" => MigMode::Enabled,
            "disabled" => MigMode::Disabled,
            _ => MigMode::Unsupported,
        };
        let health = if g.healthy {
            GpuHealth::Healthy
        } else {
            GpuHealth::Unhealthy {
                reason: g
                    .unhealthy_reason
                    .clone()
                    .unwrap_or_else(|| "reported unhealthy".into()),
            }
        };
        Ok(Gpu {
            index: g.index,
            minor: g.minor,
            uuid: g.uuid.clone(),
            name: g.name.clone(),
            memory_mib: g.memory_mib,
            pci_bus_id,
            numa_node: g.numa_node,
            cpu_affinity: Vec::new(),
            nvlink_peers: g.nvlink_peers.clone(),
            pcie_switch: g.pcie_switch.as_deref().and_then(PciBusId::parse),
            mig_mode,
            health,
            mig: g.mig.as_ref().map(|m| MigSlice {
                parent_index: m.parent_index,
                parent_uuid: m.parent_uuid.clone(),
                gpu_instance: m.gpu_instance,
                compute_instance: m.compute_instance,
                profile: m.profile.clone(),
                sm_count: m.sm_count,
                gpu_slices: m.gpu_slices,
                caps_minors: m.caps_minors.clone(),
            }),
        })
    }
}

impl From<&Gpu> for GpuAssignment {
    fn from(g: &Gpu) -> Self {
        GpuAssignment {
            index: g.index,
            minor: g.minor,
            uuid: g.uuid.as_str().into(),
            pci_bus_id: g.pci_bus_id.to_string().into(),
            caps_minors: g
                .mig
                .as_ref()
                .map(|m| m.caps_minors.clone())
                .unwrap_or_default(),
        }
    }
}

/// Like [`crate::numa_domains`], with each domain's cores (the PUs of each core on the node, in
/// core order) filled in, so that the master can hand out whole cores.
pub fn numa_domains_with_cores(topology: &Topology, gpus: &[Gpu]) -> Vec<NumaDomain> {
    let mut domains = crate::domains::numa_domains(topology, gpus);
    for d in &mut domains {
        d.cores = topology
            .cores_on_node(d.id)
            .map(|c| c.pus.clone())
            .filter(|pus| !pus.is_empty())
            .collect();
    }
    domains
}

/// The GPU environment of a task from the GPUs it was given (see [`visible_devices_env`]): the
/// assignments carry UUID and PCI address, which is all the environment needs. An assignment
/// whose PCI address does not parse sorts first, by UUID.
pub fn assignment_env(assigned: &[GpuAssignment], confined: bool) -> Vec<(String, String)> {
    let gpus: Vec<Gpu> = assigned
        .iter()
        .map(|a| Gpu {
            index: a.index,
            minor: a.minor,
            uuid: a.uuid.to_string(),
            name: String::new(),
            memory_mib: 0,
            pci_bus_id: PciBusId::parse(&a.pci_bus_id)
                .unwrap_or_else(|| PciBusId::from_parts(0, 0, 0, 0)),
            numa_node: None,
            cpu_affinity: Vec::new(),
            nvlink_peers: Vec::new(),
            pcie_switch: None,
            mig_mode: MigMode::Unsupported,
            health: GpuHealth::Healthy,
            mig: None,
        })
        .collect();
    let refs: Vec<&Gpu> = gpus.iter().collect();
    visible_devices_env(&refs, confined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, pci: &str, health: GpuHealth) -> Gpu {
        Gpu {
            index,
            minor: index + 10,
            uuid: format!("GPU-{index}"),
            name: "Tesla V100".into(),
            memory_mib: 32768,
            pci_bus_id: PciBusId::parse(pci).expect("test pci"),
            numa_node: Some(1),
            cpu_affinity: vec![4, 5],
            nvlink_peers: vec![1, 2],
            pcie_switch: PciBusId::parse("0000:32:00.0"),
            mig_mode: MigMode::Disabled,
            health,
            mig: None,
        }
    }

    #[test]
    fn gpu_info_round_trips_except_cpu_affinity() {
        let g = gpu(
            0,
            "0000:34:00.0",
            GpuHealth::Unhealthy {
                reason: "critical XID 79".into(),
            },
        );
        let info = GpuInfo::from(&g);
        assert_eq!(info.pci_bus_id, "0000:34:00.0");
        assert_eq!(info.pcie_switch.as_deref(), Some("0000:32:00.0"));
        assert_eq!(info.mig_mode, "disabled");
        assert!(!info.healthy);
        assert_eq!(info.unhealthy_reason.as_deref(), Some("critical XID 79"));
        let back = Gpu::try_from(&info).expect("round trip");
        assert_eq!(
            back,
            Gpu {
                cpu_affinity: vec![],
                ..g
            }
        );
        let bad = GpuInfo {
            pci_bus_id: "nope".into(),
            ..info
        };
        assert!(matches!(
            Gpu::try_from(&bad),
            Err(GpuInfoError::PciBusId { index: 0, .. })
        ));
    }

    #[test]
    fn assignment_env_orders_by_pci_address() {
        let a = GpuAssignment::from(&gpu(1, "0000:b7:00.0", GpuHealth::Healthy));
        let b = GpuAssignment::from(&gpu(2, "0000:34:00.0", GpuHealth::Healthy));
        let env = assignment_env(&[a, b], false);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("NVIDIA_VISIBLE_DEVICES").as_deref(),
            Some("GPU-2,GPU-1")
        );
        assert_eq!(get("CUDA_VISIBLE_DEVICES").as_deref(), Some("GPU-2,GPU-1"));
        let confined = assignment_env(&[], true);
        assert!(confined.contains(&("NVIDIA_VISIBLE_DEVICES".into(), "void".into())));
    }
}
