//! The topology snapshot: packages, NUMA nodes, cores, allowed/complete cpusets and GPU locality.

use crate::cpu_pick::{pick_cpus_from_cores, CpuPickError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// Where a [`Topology`] came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopologySource {
    /// hwloc discovered the machine it runs on.
    Live,
    /// Imported from an hwloc XML export (a fixture, or `HWLOC_XMLFILE`).
    XmlFile(PathBuf),
    /// Imported from an XML string held in memory.
    XmlString,
}

/// A physical package (socket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The OS index of the package, when hwloc knows it.
    pub os_index: Option<u32>,
    /// Allowed PUs (OS indexes) in this package, sorted.
    pub cpus: Vec<u32>,
    /// NUMA nodes (OS indexes) local to this package, sorted.
    pub numa_nodes: Vec<u32>,
}

/// A NUMA node with its memory and its allowed PUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumaNode {
    /// The OS index of the node (as in `/sys/devices/system/node/nodeN`, `cpuset.mems`).
    pub os_index: u32,
    /// Memory local to the node, bytes.
    pub memory_bytes: u64,
    /// Allowed PUs (OS indexes) local to the node, sorted; empty for memory-only nodes.
    pub cpus: Vec<u32>,
}

impl NumaNode {
    /// Local memory in MiB, as the resource model counts memory.
    pub fn memory_mib(&self) -> f64 {
        self.memory_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// A core and its allowed hardware threads (PUs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Core {
    /// The package (OS index) the core belongs to, when known.
    pub package: Option<u32>,
    /// The NUMA node (OS index) the core is local to; `None` when it has no allowed local node.
    pub numa_node: Option<u32>,
    /// Allowed PUs (OS indexes) of this core, sorted; never empty.
    pub pus: Vec<u32>,
}

/// A PCI bus id in the canonical form `dddd:bb:dd.f`, lower case (hwloc's form).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PciBusId(String);

impl PciBusId {
    /// Parses the forms hwloc, NVML and nvidia-smi print (`0000:34:00.0`, `00000000:34:00.0`,
    /// `34:00.0`) into the canonical 4-digit-domain form. `None` when the text is not a PCI address.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (domain, rest) = match text.matches(':').count() {
            2 => text.split_once(':')?,
            1 => ("0", text),
            _ => return None,
        };
        let (bus, devfn) = rest.split_once(':')?;
        let (dev, func) = devfn.split_once('.')?;
        let domain = u32::from_str_radix(domain, 16).ok()?;
        let bus = u8::from_str_radix(bus, 16).ok()?;
        let dev = u8::from_str_radix(dev, 16).ok()?;
        let func = u8::from_str_radix(func, 16).ok()?;
        if domain > 0xffff || dev > 0x1f || func > 7 {
            return None;
        }
        Some(Self::from_parts(domain, bus, dev, func))
    }

    /// Builds the id from its numeric parts.
    pub fn from_parts(domain: u32, bus: u8, device: u8, function: u8) -> Self {
        Self(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PciBusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What hwloc's NVML backend recorded about a GPU (OS device `nvmlN`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmlOsDevice {
    /// The NVML index (`N` of `nvmlN`).
    pub index: u32,
    /// `NVIDIAUUID`, e.g. `GPU-d3977428-...`.
    pub uuid: Option<String>,
    /// `GPUModel`, e.g. `Tesla V100-SXM3-32GB-H`.
    pub model: Option<String>,
    /// `NVIDIASerial`.
    pub serial: Option<String>,
}

/// Where an NVIDIA PCI GPU sits: its NUMA node, local CPUs and nearest PCIe switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuLocality {
    /// The GPU's PCI address.
    pub pci_bus_id: PciBusId,
    /// PCI vendor:device, e.g. `10de:1db8`.
    pub pci_id: String,
    /// The NUMA node (OS index) the GPU is attached to; `None` when hwloc cannot tell (or the
    /// GPU's locality spans several nodes).
    pub numa_node: Option<u32>,
    /// Allowed PUs local to the GPU, sorted.
    pub cpus: Vec<u32>,
    /// The PCI address of the upstream port of the PCIe switch the GPU hangs off (its
    /// grandparent bridge), `None` when it sits directly under a host bridge. GPUs with the same
    /// value share a switch.
    pub pcie_switch: Option<PciBusId>,
    /// The NVML OS device hwloc attached to the GPU, if hwloc ran its NVML backend.
    pub nvml: Option<NvmlOsDevice>,
}

/// A machine's CPU, memory and GPU-locality topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// Where this came from.
    pub source: TopologySource,
    /// Packages in logical order.
    pub packages: Vec<Package>,
    /// Allowed NUMA nodes, sorted by OS index.
    pub numa_nodes: Vec<NumaNode>,
    /// Cores with at least one allowed PU, in logical order.
    pub cores: Vec<Core>,
    /// PUs this process may use (hwloc's allowed cpuset), sorted.
    pub allowed_cpus: Vec<u32>,
    /// All PUs of the machine, allowed or not, sorted.
    pub complete_cpus: Vec<u32>,
    /// NUMA nodes this process may use, sorted.
    pub allowed_numa_nodes: Vec<u32>,
    /// All NUMA nodes of the machine, allowed or not, sorted.
    pub complete_numa_nodes: Vec<u32>,
    /// NVIDIA GPUs found on the PCI bus, in PCI order.
    pub gpus: Vec<GpuLocality>,
}

impl Topology {
    /// The allowed NUMA node with this OS index.
    pub fn numa_node(&self, os_index: u32) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.os_index == os_index)
    }

    /// Allowed PUs that belong to no allowed NUMA node (their node is disallowed).
    pub fn cpus_without_numa_node(&self) -> Vec<u32> {
        let on_nodes: BTreeSet<u32> = self
            .numa_nodes
            .iter()
            .flat_map(|n| n.cpus.clone())
            .collect();
        self.allowed_cpus
            .iter()
            .copied()
            .filter(|c| !on_nodes.contains(c))
            .collect()
    }

    /// Cores local to the given NUMA node.
    pub fn cores_on_node(&self, numa_node: u32) -> impl Iterator<Item = &Core> {
        self.cores
            .iter()
            .filter(move |c| c.numa_node == Some(numa_node))
    }

    /// The GPU at this PCI address.
    pub fn gpu_by_pci(&self, pci_bus_id: &PciBusId) -> Option<&GpuLocality> {
        self.gpus.iter().find(|g| &g.pci_bus_id == pci_bus_id)
    }

    /// Picks `count` PUs on one NUMA node, none of them in `busy`: whole free cores first,
    /// then single PUs (from partly used cores before breaking up a free core).
    pub fn pick_cpus(
        &self,
        numa_node: u32,
        count: usize,
        busy: &BTreeSet<u32>,
    ) -> Result<Vec<u32>, CpuPickError> {
        if self.numa_node(numa_node).is_none() {
            return Err(CpuPickError::UnknownNumaNode(numa_node));
        }
        let cores: Vec<&[u32]> = self
            .cores_on_node(numa_node)
            .map(|c| c.pus.as_slice())
            .collect();
        pick_cpus_from_cores(&cores, count, busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_bus_ids_from_nvml_and_hwloc_agree() {
        let nvml = PciBusId::parse("00000000:3B:00.0");
        let hwloc = PciBusId::parse("0000:3b:00.0");
        assert_eq!(nvml, hwloc);
        assert_eq!(
            nvml.map(|p| p.to_string()),
            Some("0000:3b:00.0".to_string())
        );
        assert_eq!(
            PciBusId::parse("34:00.0").map(|p| p.to_string()),
            Some("0000:34:00.0".into())
        );
        assert_eq!(PciBusId::parse("garbage"), None);
        assert_eq!(PciBusId::parse("0000:34:20.0"), None);
    }
}
