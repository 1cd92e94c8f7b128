//! What the allocator knows of an agent's hardware for GPU and NUMA placement: its GPUs (with
//! health, NVLink peers, switches), its NUMA domains (cores, PUs, memory, GPUs), built once per
//! agent report; and what running tasks already hold of it (GPUs, pinned PUs, bound memory).

use gantry_gpu::Gpu;
use gantry_proto::{AgentInfo, GpuAssignment};
use std::sync::Arc;

/// At most this many GPUs per agent take part in GPU placement (free GPUs are a 64-bit mask);
/// GPUs beyond it are ignored.
pub const MAX_GPUS_PER_AGENT: usize = 64;

/// One NUMA domain as the allocator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainShape {
    /// The NUMA node's OS index.
    pub id: u32,
    /// The node's cores, each its PUs; cores are handed out whole first.
    pub cores: Vec<Vec<u32>>,
    /// Number of PUs on the node.
    pub pus: u32,
    /// Memory local to the node, MiB.
    pub mem: f64,
    /// Bit `i` set: `NodeTopology::gpus[i]` sits on this node.
    pub gpu_mask: u64,
}

/// An agent's hardware: shared (`Arc`) between the cluster state and every snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeTopology {
    /// The GPUs (at most [`MAX_GPUS_PER_AGENT`]), with their health as last reported.
    pub gpus: Vec<Gpu>,
    /// The NUMA domains, in node order.
    pub domains: Vec<DomainShape>,
    /// Bit `i` set: `gpus[i]` is healthy.
    pub healthy_mask: u64,
    /// `gpus[i]` as a task's assignment (built once, cloned into placements).
    pub assignments: Vec<GpuAssignment>,
    /// 64-bit words needed for a bit set of every PU index in `domains`.
    pub pu_words: usize,
}

impl NodeTopology {
    /// The topology an agent reported; `None` when it reported neither NUMA domains nor GPUs.
    /// A GPU whose report does not parse (bad PCI address) is left out, with a log line.
    pub fn from_info(info: &AgentInfo) -> Option<Arc<NodeTopology>> {
        if info.numa_domains.is_empty() && info.gpus.is_empty() {
            return None;
        }
        let gpus: Vec<Gpu> = info
            .gpus
            .iter()
            .filter_map(|g| match Gpu::try_from(g) {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(host = %info.hostname, error = %e, "ignoring a GPU the agent reported");
                    None
                }
            })
            .take(MAX_GPUS_PER_AGENT)
            .collect();
        Some(Arc::new(Self::new(gpus, &info.numa_domains)))
    }

    /// Builds the topology from GPUs and domains (tests and simulations use this directly).
    pub fn new(gpus: Vec<Gpu>, domains: &[gantry_proto::NumaDomain]) -> NodeTopology {
        let gpus: Vec<Gpu> = gpus.into_iter().take(MAX_GPUS_PER_AGENT).collect();
        let healthy_mask = mask_of(&gpus, |g| g.health.is_healthy());
        let domains: Vec<DomainShape> = domains
            .iter()
            .map(|d| {
                let cores = if d.cores.is_empty() {
                    // No core grouping reported: every PU is its own core.
                    d.cpus.iter().map(|&c| vec![c]).collect()
                } else {
                    d.cores.clone()
                };
                DomainShape {
                    id: d.id,
                    pus: cores.iter().map(|c| c.len() as u32).sum(),
                    cores,
                    mem: d.mem,
                    gpu_mask: mask_of(&gpus, |g| g.numa_node == Some(d.id)),
                }
            })
            .collect();
        let pu_words = domains
            .iter()
            .flat_map(|d: &DomainShape| d.cores.iter().flatten())
            .max()
            .map_or(0, |&m| m as usize / 64 + 1);
        NodeTopology {
            assignments: gpus.iter().map(GpuAssignment::from).collect(),
            gpus,
            domains,
            healthy_mask,
            pu_words,
        }
    }

    /// The bit of the GPU with NVML index `index`.
    pub fn gpu_bit(&self, index: u32) -> Option<u64> {
        self.gpus
            .iter()
            .position(|g| g.index == index)
            .map(|p| 1u64 << p)
    }

    /// The position of the domain of NUMA node `id`.
    pub fn domain_pos(&self, id: u32) -> Option<usize> {
        self.domains.iter().position(|d| d.id == id)
    }
}

fn mask_of(gpus: &[Gpu], pred: impl Fn(&Gpu) -> bool) -> u64 {
    gpus.iter()
        .enumerate()
        .filter(|(_, g)| pred(g))
        .fold(0, |m, (i, _)| m | (1u64 << i))
}

/// An agent's topology and what its non-terminal tasks hold of it.
#[derive(Clone, Debug, Default)]
pub struct TopologyUse {
    pub topology: Arc<NodeTopology>,
    /// NVML indexes of GPUs held by tasks.
    pub taken_gpus: Vec<u32>,
    /// PUs pinned by tasks (each pinned task holds its PUs exclusively).
    pub pinned_cpus: Vec<u32>,
    /// Memory bound to each NUMA node by tasks, MiB: `(node, mem)`.
    pub mem_bound: Vec<(u32, f64)>,
}

impl TopologyUse {
    /// Nothing used yet.
    pub fn idle(topology: Arc<NodeTopology>) -> Self {
        TopologyUse {
            topology,
            ..TopologyUse::default()
        }
    }
}
