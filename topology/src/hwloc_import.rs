//! Building a [`Topology`] snapshot from hwloc (through `hwlocality`): live, from an XML file, or
//! from an XML string. The hwloc handle is dropped once the snapshot is taken.

use crate::error::TopologyError;
use crate::model::{
    Core, GpuLocality, NumaNode, NvmlOsDevice, Package, PciBusId, Topology, TopologySource,
};
use hwlocality::object::attributes::{ObjectAttributes, UpstreamAttributes};
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::{TopologyBuilder, TypeFilter};
use std::collections::BTreeSet;
use std::path::Path;

/// The PCI vendor id of NVIDIA.
const NVIDIA_VENDOR: u16 = 0x10de;
/// PCI classes of display controllers: VGA (0x0300) and 3D (0x0302).
const GPU_CLASSES: [u16; 2] = [0x0300, 0x0302];

impl Topology {
    /// Discovers the machine this process runs on, or, when `HWLOC_XMLFILE` is set, imports that
    /// file instead (so an agent can be made to see a fixture machine).
    pub fn discover() -> Result<Self, TopologyError> {
        match std::env::var_os("HWLOC_XMLFILE") {
            Some(path) if !path.is_empty() => Self::from_xml_file(Path::new(&path)),
            _ => build(
                hwlocality::topology::Topology::builder(),
                TopologySource::Live,
            ),
        }
    }

    /// Imports an hwloc XML export (for instance `lstopo --of xml` output or a fixture).
    pub fn from_xml_file(path: &Path) -> Result<Self, TopologyError> {
        if !path.is_file() {
            return Err(TopologyError::Xml {
                path: path.to_path_buf(),
                detail: "no such file".into(),
            });
        }
        let builder = hwlocality::topology::Topology::builder()
            .from_xml_file(path)
            .map_err(|e| TopologyError::Xml {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        build(builder, TopologySource::XmlFile(path.to_path_buf()))
    }

    /// Imports an hwloc XML export held in memory.
    pub fn from_xml_str(xml: &str) -> Result<Self, TopologyError> {
        let builder = hwlocality::topology::Topology::builder()
            .from_xml(xml)
            .map_err(|e| TopologyError::Xml {
                path: "<string>".into(),
                detail: e.to_string(),
            })?;
        build(builder, TopologySource::XmlString)
    }
}

fn hwloc_err(step: &'static str, e: impl std::fmt::Display) -> TopologyError {
    TopologyError::Hwloc {
        step,
        detail: e.to_string(),
    }
}

fn build(builder: TopologyBuilder, source: TopologySource) -> Result<Topology, TopologyError> {
    // Keep every I/O object: whether an OS device is "important" depends on its type, and XML
    // exports from newer hwloc releases carry OS device types that hwloc 2.9 does not know.
    let topo = builder
        .with_io_type_filter(TypeFilter::KeepAll)
        .map_err(|e| hwloc_err("keep I/O objects", e))?
        .build()
        .map_err(|e| hwloc_err("load the topology", e))?;
    snapshot(&topo, source)
}

fn to_u32(i: impl Into<usize>) -> Option<u32> {
    u32::try_from(i.into()).ok()
}

fn set_of<I: Iterator<Item = hwlocality::bitmap::BitmapIndex>>(it: I) -> BTreeSet<u32> {
    it.filter_map(to_u32).collect()
}

fn obj_cpus(obj: &TopologyObject, allowed: &BTreeSet<u32>) -> Vec<u32> {
    obj.cpuset()
        .map(|s| set_of(s.iter_set()))
        .unwrap_or_default()
        .intersection(allowed)
        .copied()
        .collect()
}

fn obj_nodes(obj: &TopologyObject, allowed: &BTreeSet<u32>) -> Vec<u32> {
    obj.nodeset()
        .map(|s| set_of(s.iter_set()))
        .unwrap_or_default()
        .intersection(allowed)
        .copied()
        .collect()
}

fn snapshot(
    topo: &hwlocality::topology::Topology,
    source: TopologySource,
) -> Result<Topology, TopologyError> {
    let allowed_cpus = set_of(topo.allowed_cpuset().iter_set());
    let allowed_nodes = set_of(topo.allowed_nodeset().iter_set());

    let mut numa_nodes = Vec::new();
    for node in topo.objects_with_type(ObjectType::NUMANode) {
        let os_index = node
            .os_index()
            .and_then(to_u32)
            .ok_or_else(|| TopologyError::Unexpected("a NUMA node without OS index".into()))?;
        if !allowed_nodes.contains(&os_index) {
            continue;
        }
        let memory_bytes = match node.attributes() {
            Some(ObjectAttributes::NUMANode(a)) => a.local_memory().map_or(0, |m| m.get()),
            _ => 0,
        };
        numa_nodes.push(NumaNode {
            os_index,
            memory_bytes,
            cpus: obj_cpus(node, &allowed_cpus),
        });
    }
    numa_nodes.sort_by_key(|n| n.os_index);

    let packages = topo
        .objects_with_type(ObjectType::Package)
        .map(|p| Package {
            os_index: p.os_index().and_then(to_u32),
            cpus: obj_cpus(p, &allowed_cpus),
            numa_nodes: obj_nodes(p, &allowed_nodes),
        })
        .collect();

    let cores = topo
        .objects_with_type(ObjectType::Core)
        .filter_map(|c| {
            let pus = obj_cpus(c, &allowed_cpus);
            if pus.is_empty() {
                return None;
            }
            let nodes = obj_nodes(c, &allowed_nodes);
            Some(Core {
                package: c
                    .first_ancestor_with_type(ObjectType::Package)
                    .and_then(|p| p.os_index())
                    .and_then(to_u32),
                numa_node: (nodes.len() == 1).then(|| nodes[0]),
                pus,
            })
        })
        .collect();

    let gpus = topo
        .objects_with_type(ObjectType::PCIDevice)
        .filter_map(|pci| gpu_locality(pci, &allowed_cpus, &allowed_nodes))
        .collect();

    Ok(Topology {
        source,
        packages,
        numa_nodes,
        cores,
        allowed_cpus: allowed_cpus.iter().copied().collect(),
        complete_cpus: set_of(topo.complete_cpuset().iter_set())
            .into_iter()
            .collect(),
        allowed_numa_nodes: allowed_nodes.iter().copied().collect(),
        complete_numa_nodes: set_of(topo.complete_nodeset().iter_set())
            .into_iter()
            .collect(),
        gpus,
    })
}

/// The PCI address of a PCI device or of a PCI-to-PCI bridge's upstream side.
fn pci_address(obj: &TopologyObject) -> Option<PciBusId> {
    let attrs = match obj.attributes()? {
        ObjectAttributes::PCIDevice(a) => a,
        ObjectAttributes::Bridge(b) => match b.upstream_attributes()? {
            UpstreamAttributes::PCI(a) => a,
        },
        _ => return None,
    };
    Some(PciBusId::from_parts(
        u32::from(attrs.domain()),
        attrs.bus_id(),
        attrs.bus_device(),
        attrs.function(),
    ))
}

fn gpu_locality(
    pci: &TopologyObject,
    allowed_cpus: &BTreeSet<u32>,
    allowed_nodes: &BTreeSet<u32>,
) -> Option<GpuLocality> {
    let Some(ObjectAttributes::PCIDevice(attrs)) = pci.attributes() else {
        return None;
    };
    if attrs.vendor_id() != NVIDIA_VENDOR || !GPU_CLASSES.contains(&attrs.class_id()) {
        return None;
    }
    let (cpus, nodes) = match pci.first_non_io_ancestor() {
        Some(anc) => (obj_cpus(anc, allowed_cpus), obj_nodes(anc, allowed_nodes)),
        None => (Vec::new(), Vec::new()),
    };
    // The switch upstream port is the bridge above the downstream port the GPU hangs off.
    let pcie_switch = pci.parent().and_then(|p| p.parent()).and_then(pci_address);
    let nvml = pci.io_children().find_map(nvml_os_device);
    Some(GpuLocality {
        pci_bus_id: pci_address(pci)?,
        pci_id: format!("{:04x}:{:04x}", attrs.vendor_id(), attrs.device_id()),
        numa_node: (nodes.len() == 1).then(|| nodes[0]),
        cpus,
        pcie_switch,
        nvml,
    })
}

/// Reads an `nvmlN` OS device. Its type is not checked: hwloc releases disagree on OS device
/// type numbers, the name prefix is stable.
fn nvml_os_device(osdev: &TopologyObject) -> Option<NvmlOsDevice> {
    if osdev.object_type() != ObjectType::OSDevice {
        return None;
    }
    let name = osdev.name()?.to_str().ok()?;
    let index = name.strip_prefix("nvml")?.parse().ok()?;
    let info = |key: &str| {
        osdev
            .info(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Some(NvmlOsDevice {
        index,
        uuid: info("NVIDIAUUID"),
        model: info("GPUModel"),
        serial: info("NVIDIASerial"),
    })
}
