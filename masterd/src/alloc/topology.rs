//! What the allocator knows of an agent's hardware for GPU and NUMA placement: its GPUs (with
//! health, NVLink peers, switches), its NUMA domains (cores, PUs, memory, GPUs), built once per
//! agent report; and what running tasks already hold of it (GPUs, pinned PUs, bound memory).
//! MIG devices are GPUs of their own here: whole-GPU tasks see only `whole_mask`, `gpuProfile`
//! tasks only the MIG devices of their profile, and holding a MIG device holds its parent (and
//! holding a parent its MIG devices) through `conflicts`.

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
    /// Bit `i` set: `gpus[i]` is handed out whole (not a MIG device, and MIG not enabled).
    pub whole_mask: u64,
    /// The MIG devices of each profile: `(profile, bits)`, in order of first appearance.
    pub profiles: Vec<(Box<str>, u64)>,
    /// Per GPU position: the bits that cannot be held while it is (a MIG device's parent; a
    /// parent's MIG devices); empty when the agent has no MIG device.
    pub conflicts: Vec<u64>,
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
        let (conflicts, profiles) = mig_masks(&gpus);
        // A MIG device is usable only while its parent is healthy too.
        let parent_ok = |g: &Gpu| {
            g.mig.as_ref().is_none_or(|m| {
                gpus.iter()
                    .filter(|p| p.mig.is_none() && p.index == m.parent_index)
                    .all(|p| p.health.is_healthy())
            })
        };
        let healthy_mask = mask_of(&gpus, |g| g.health.is_healthy() && parent_ok(g));
        let whole_mask = mask_of(&gpus, Gpu::is_whole);
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
            whole_mask,
            profiles,
            conflicts,
        }
    }

    /// The GPUs a task may be given: whole GPUs for `None`, else the MIG devices of `profile`
    /// (none when the agent has no MIG device of that profile).
    #[inline]
    pub fn offer_mask(&self, profile: Option<&str>) -> u64 {
        match profile {
            None => self.whole_mask,
            Some(p) => self
                .profiles
                .iter()
                .find(|(name, _)| &**name == p)
                .map_or(0, |&(_, m)| m),
        }
    }

    /// `bits` and every bit that holding them holds too (see `conflicts`).
    #[inline]
    pub fn with_conflicts(&self, bits: u64) -> u64 {
        if self.conflicts.is_empty() {
            return bits;
        }
        (0..self.conflicts.len())
            .filter(|p| bits & (1u64 << p) != 0)
            .fold(bits, |m, p| m | self.conflicts[p])
    }

    /// NVML indexes that cannot be held while the GPU with index `index` is: for a MIG device its
    /// parent, for a GPU with MIG devices those devices.
    pub fn conflicting_indexes(&self, index: u32) -> Vec<u32> {
        let Some(bit) = self.gpu_bit(index) else {
            return Vec::new();
        };
        let others = self.with_conflicts(bit) & !bit;
        (0..self.gpus.len())
            .filter(|p| others & (1u64 << p) != 0)
            .map(|p| self.gpus[p].index)
            .collect()
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

/// Per position the conflicting bits (MIG device <-> parent), and the bits of each profile.
type MigMasks = (Vec<u64>, Vec<(Box<str>, u64)>);

fn mig_masks(gpus: &[Gpu]) -> MigMasks {
    if gpus.iter().all(|g| g.mig.is_none()) {
        return (Vec::new(), Vec::new());
    }
    let mut conflicts = vec![0u64; gpus.len()];
    let mut profiles: Vec<(Box<str>, u64)> = Vec::new();
    for (i, g) in gpus.iter().enumerate() {
        let Some(m) = &g.mig else { continue };
        if let Some(p) = gpus
            .iter()
            .position(|p| p.mig.is_none() && p.index == m.parent_index)
        {
            conflicts[i] |= 1u64 << p;
            conflicts[p] |= 1u64 << i;
        }
        match profiles.iter_mut().find(|(n, _)| **n == *m.profile) {
            Some((_, bits)) => *bits |= 1u64 << i,
            None => profiles.push((m.profile.as_str().into(), 1u64 << i)),
        }
    }
    (conflicts, profiles)
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
