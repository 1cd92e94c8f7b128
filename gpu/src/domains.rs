//! The NUMA domains an agent reports: each allowed NUMA node with its CPUs, memory and GPUs.

use crate::model::Gpu;
use gantry_proto::NumaDomain;
use gantry_topology::Topology;

/// One [`NumaDomain`] per allowed NUMA node of `topology` (sorted by node), with the indexes of
/// the `gpus` whose inventory NUMA node is that node. GPUs without a NUMA node are in no domain.
/// An agent without GPUs passes an empty slice.
pub fn numa_domains(topology: &Topology, gpus: &[Gpu]) -> Vec<NumaDomain> {
    topology
        .numa_nodes
        .iter()
        .map(|n| {
            let mut gpu_ids: Vec<u32> = gpus
                .iter()
                .filter(|g| g.numa_node == Some(n.os_index))
                .map(|g| g.index)
                .collect();
            gpu_ids.sort_unstable();
            NumaDomain {
                id: n.os_index,
                cpus: n.cpus.clone(),
                mem: n.memory_mib(),
                gpus: gpu_ids,
                cores: Vec::new(),
            }
        })
        .collect()
}
