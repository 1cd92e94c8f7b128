//! CPU and memory topology through hwloc: packages, NUMA nodes, cores, cpusets, and GPU locality.
//!
//! [`Topology`] is a plain snapshot (no hwloc handle inside): build it with [`Topology::discover`]
//! (live machine, or `HWLOC_XMLFILE`), [`Topology::from_xml_file`] or [`Topology::from_xml_str`],
//! then query it with pure functions such as [`Topology::pick_cpus`].

mod cpu_list;
mod cpu_pick;
mod error;
mod hwloc_import;
mod model;

pub use cpu_list::{format_cpu_list, parse_cpu_list};
pub use cpu_pick::{pick_cpus_from_cores, CpuPickError};
pub use error::TopologyError;
pub use model::{
    Core, GpuLocality, NumaNode, NvmlOsDevice, Package, PciBusId, Topology, TopologySource,
};
