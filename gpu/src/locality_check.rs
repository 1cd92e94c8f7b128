//! Cross-checking the GPU inventory (NVML) against hwloc's view of the same GPUs. Disagreements
//! are reported for the operator to look at; nothing here picks a winner.

use crate::model::Gpu;
use gantry_topology::{PciBusId, Topology};
use serde::Serialize;
use std::fmt;

/// One disagreement between the inventory and hwloc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LocalityMismatch {
    /// Both know the GPU but place it on different NUMA nodes.
    NumaNode {
        /// The GPU's PCI address.
        pci_bus_id: PciBusId,
        /// The inventory's NVML index.
        index: u32,
        /// NUMA node per the inventory (NVML / sysfs).
        inventory: Option<u32>,
        /// NUMA node per hwloc.
        hwloc: Option<u32>,
    },
    /// hwloc's NVML backend recorded another UUID at this PCI address.
    Uuid {
        /// The GPU's PCI address.
        pci_bus_id: PciBusId,
        /// UUID per the inventory.
        inventory: String,
        /// UUID per hwloc.
        hwloc: String,
    },
    /// The inventory has a GPU that hwloc does not see on the PCI bus.
    MissingInHwloc {
        /// The GPU's PCI address.
        pci_bus_id: PciBusId,
        /// The inventory's NVML index.
        index: u32,
    },
    /// hwloc sees an NVIDIA GPU that the inventory does not list.
    MissingInInventory {
        /// The GPU's PCI address.
        pci_bus_id: PciBusId,
    },
}

fn node(n: Option<u32>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

impl fmt::Display for LocalityMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NumaNode {
                pci_bus_id,
                index,
                inventory,
                hwloc,
            } => write!(
                f,
                "GPU {index} ({pci_bus_id}): NVML says NUMA node {}, hwloc says {}",
                node(*inventory),
                node(*hwloc)
            ),
            Self::Uuid {
                pci_bus_id,
                inventory,
                hwloc,
            } => write!(
                f,
                "GPU at {pci_bus_id}: NVML UUID {inventory}, hwloc UUID {hwloc}"
            ),
            Self::MissingInHwloc { pci_bus_id, index } => {
                write!(f, "GPU {index} ({pci_bus_id}) is not in the hwloc topology")
            }
            Self::MissingInInventory { pci_bus_id } => {
                write!(
                    f,
                    "hwloc sees an NVIDIA GPU at {pci_bus_id} that NVML does not list"
                )
            }
        }
    }
}

/// Compares each GPU's NUMA node (and UUID, where hwloc has one) with hwloc's locality of the GPU
/// at the same PCI address. Returns every mismatch; an empty list means they agree.
pub fn check_numa_locality(gpus: &[Gpu], topology: &Topology) -> Vec<LocalityMismatch> {
    let mut out = Vec::new();
    for g in gpus {
        let Some(loc) = topology.gpu_by_pci(&g.pci_bus_id) else {
            out.push(LocalityMismatch::MissingInHwloc {
                pci_bus_id: g.pci_bus_id.clone(),
                index: g.index,
            });
            continue;
        };
        if loc.numa_node != g.numa_node {
            out.push(LocalityMismatch::NumaNode {
                pci_bus_id: g.pci_bus_id.clone(),
                index: g.index,
                inventory: g.numa_node,
                hwloc: loc.numa_node,
            });
        }
        if let Some(hw_uuid) = loc.nvml.as_ref().and_then(|n| n.uuid.as_ref()) {
            if hw_uuid != &g.uuid {
                out.push(LocalityMismatch::Uuid {
                    pci_bus_id: g.pci_bus_id.clone(),
                    inventory: g.uuid.clone(),
                    hwloc: hw_uuid.clone(),
                });
            }
        }
    }
    for loc in &topology.gpus {
        if !gpus.iter().any(|g| g.pci_bus_id == loc.pci_bus_id) {
            out.push(LocalityMismatch::MissingInInventory {
                pci_bus_id: loc.pci_bus_id.clone(),
            });
        }
    }
    out
}
