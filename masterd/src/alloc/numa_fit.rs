//! GPU and NUMA feasibility and choice on one agent during a placement run: free GPUs as a bit
//! mask, free PUs and memory per NUMA domain, a fast test of whether a shape can fit, and the
//! choice of GPU ids (`gantry_gpu::select_gpus`, memoised per run), cores and memory node.

use super::cpu_bits::{pick_pus, PuSet};
use super::domain_vec::DomainVec;
use super::shape::{Shape, EPSILON};
use super::topology::{NodeTopology, TopologyUse};
use gantry_gpu::{select_gpus, NumaPolicy};
use gantry_proto::NumaPlacement;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// What is left of one agent's topology during a run.
#[derive(Clone, Debug)]
pub(crate) struct TopoState {
    pub shape: Arc<NodeTopology>,
    /// Healthy GPUs not held by any task.
    pub free_gpus: u64,
    /// Pinned PUs.
    pub busy: PuSet,
    /// Per domain (same order as `shape.domains`): PUs not pinned.
    pub free_pus: DomainVec<u32>,
    /// Per domain: memory not bound, MiB.
    pub free_mem: DomainVec<f64>,
}

impl TopoState {
    pub(crate) fn new(used: &TopologyUse) -> Self {
        let t = &used.topology;
        let taken = used
            .taken_gpus
            .iter()
            .filter_map(|&i| t.gpu_bit(i))
            .fold(0u64, |m, b| m | b);
        let mut busy = PuSet::with_words(t.pu_words);
        for &p in &used.pinned_cpus {
            busy.insert(p);
        }
        let free_pus = DomainVec::collect(t.domains.iter().map(|d| {
            let pinned = d
                .cores
                .iter()
                .flatten()
                .filter(|&&p| busy.contains(p))
                .count();
            d.pus.saturating_sub(pinned as u32)
        }));
        let free_mem = DomainVec::collect(t.domains.iter().map(|d| {
            let bound: f64 = used
                .mem_bound
                .iter()
                .filter(|(n, _)| *n == d.id)
                .map(|(_, m)| m)
                .sum();
            d.mem - bound
        }));
        TopoState {
            free_gpus: t.healthy_mask & !t.with_conflicts(taken),
            shape: t.clone(),
            busy,
            free_pus,
            free_mem,
        }
    }

    /// True when domain `d` has the PUs and memory of `shape` free.
    fn domain_holds(&self, d: usize, shape: &Shape) -> bool {
        self.free_pus[d] >= shape.pus && shape.mem <= self.free_mem[d] + EPSILON
    }

    /// Free GPUs the shape may be given: whole GPUs, or MIG devices of its profile.
    #[inline]
    fn offered(&self, shape: &Shape) -> u64 {
        self.free_gpus
            & self
                .shape
                .offer_mask(shape.profile.as_ref().map(|p| p.as_str()))
    }

    /// Free GPUs the shape may be given on domains that hold the shape's PUs and memory.
    fn free_gpus_on_holding_domains(&self, shape: &Shape) -> u64 {
        (0..self.shape.domains.len())
            .filter(|&d| self.domain_holds(d, shape))
            .fold(0, |m, d| m | self.shape.domains[d].gpu_mask)
            & self.offered(shape)
    }

    /// True when the agent reports a GPU count but no GPU list (`--resources gpus:N` without an
    /// inventory): GPU tasks are placed by count only.
    pub(crate) fn count_only(&self) -> bool {
        self.shape.gpus.is_empty()
    }
}

/// Whether the topology part of `shape` fits (the scalars are checked elsewhere). An agent
/// without topology takes count-only GPU tasks and unbound tasks, never `require`.
#[inline]
pub(crate) fn topo_fits(topo: Option<&TopoState>, shape: &Shape) -> bool {
    let Some(t) = topo else {
        return shape.numa != NumaPolicy::Require && shape.profile.is_none();
    };
    let mut offered = t.free_gpus;
    if shape.gpus > 0 {
        if t.count_only() {
            return shape.numa != NumaPolicy::Require && shape.profile.is_none();
        }
        offered = t.offered(shape);
        if offered.count_ones() < shape.gpus {
            return false;
        }
    }
    match shape.numa {
        NumaPolicy::Require => (0..t.shape.domains.len()).any(|d| {
            t.domain_holds(d, shape)
                && (offered & t.shape.domains[d].gpu_mask).count_ones() >= shape.gpus
        }),
        NumaPolicy::Prefer | NumaPolicy::None => true,
    }
}

/// A multiply-rotate hasher for the memo's small integer keys (SipHash costs more than the
/// lookup saves here; the keys are not attacker-chosen).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// A selection as GPU bits (positions in `NodeTopology::gpus`) and the node they share.
type Selected = Option<(u64, Option<u32>)>;

/// GPU selections computed in this run, by (topology, free mask, count, policy): agents of one
/// machine type with the same free GPUs get the same answer without searching again.
#[derive(Debug, Default)]
pub(crate) struct SelectionMemo {
    known: HashMap<(usize, u64, u32, u8), Selected, BuildHasherDefault<KeyHasher>>,
}

impl SelectionMemo {
    fn select(&mut self, t: &NodeTopology, free: u64, count: u32, policy: NumaPolicy) -> Selected {
        let key = (t as *const NodeTopology as usize, free, count, policy as u8);
        *self.known.entry(key).or_insert_with(|| {
            let taken: BTreeSet<u32> = t
                .gpus
                .iter()
                .enumerate()
                .filter(|(i, _)| free & (1u64 << i) == 0)
                .map(|(_, g)| g.index)
                .collect();
            let sel = select_gpus(&t.gpus, &taken, count as usize, policy)?;
            let bits = sel
                .gpus
                .iter()
                .filter_map(|&i| t.gpu_bit(i))
                .fold(0u64, |m, b| m | b);
            Some((bits, sel.numa_node))
        })
    }
}

/// Chooses GPUs, cores and memory node for `shape` on an agent where [`topo_fits`] holds, and
/// books them in `t`. `None` when nothing is bound: CPU-only tasks without a NUMA policy,
/// count-only GPU agents, and `prefer` tasks that could not be kept on one node.
///
/// GPUs: for `require` and `prefer`, the closest set on one NUMA node that also holds the task's
/// PUs and memory; `prefer` then falls back to the closest set anywhere. PUs: `ceil(cpus)` PUs on
/// the GPUs' node, whole cores first (`gantry_topology::pick_cpus_from_cores`), held exclusively;
/// memory bound to that node. CPU-only tasks with a policy go to the domain that holds them with
/// the fewest free GPUs (keeping GPU nodes' cores for GPU tasks), then the fewest free PUs.
pub(crate) fn choose(
    t: &mut TopoState,
    shape: &Shape,
    memo: &mut SelectionMemo,
) -> Option<NumaPlacement> {
    if (shape.gpus == 0 && shape.numa == NumaPolicy::None) || (shape.gpus > 0 && t.count_only()) {
        return None;
    }
    let (gpu_bits, node): (u64, Option<u32>) = if shape.gpus > 0 {
        let mut sel = None;
        if shape.numa != NumaPolicy::None {
            let local = t.free_gpus_on_holding_domains(shape);
            sel = memo.select(&t.shape, local, shape.gpus, NumaPolicy::Require);
        }
        if sel.is_none() && shape.numa != NumaPolicy::Require {
            sel = memo.select(&t.shape, t.offered(shape), shape.gpus, shape.numa);
        }
        let (bits, sel_node) = sel?;
        let node = if shape.numa == NumaPolicy::None {
            None
        } else {
            sel_node
        };
        (bits, node)
    } else {
        let best = (0..t.shape.domains.len())
            .filter(|&d| t.domain_holds(d, shape))
            .min_by_key(|&d| {
                (
                    (t.free_gpus & t.shape.domains[d].gpu_mask).count_ones(),
                    t.free_pus[d],
                    d,
                )
            });
        (0, best.map(|d| t.shape.domains[d].id))
    };

    let mut placement = NumaPlacement {
        numa_node: node,
        ..NumaPlacement::default()
    };
    t.free_gpus &= !t.shape.with_conflicts(gpu_bits);
    placement.gpus = Vec::with_capacity(gpu_bits.count_ones() as usize);
    placement.gpus.extend(
        (0..t.shape.assignments.len())
            .filter(|p| gpu_bits & (1u64 << p) != 0)
            .map(|p| t.shape.assignments[p].clone()),
    );
    if let Some(d) = node.and_then(|n| t.shape.domain_pos(n)) {
        if t.domain_holds(d, shape) {
            if let Some(cpus) = pick_pus(&t.shape.domains[d].cores, shape.pus as usize, &t.busy) {
                for &c in &cpus {
                    t.busy.insert(c);
                }
                t.free_pus[d] -= cpus.len() as u32;
                t.free_mem[d] -= shape.mem;
                placement.cpus = cpus;
                placement.mems = vec![t.shape.domains[d].id];
            }
        }
    }
    if placement.gpus.is_empty() && placement.cpus.is_empty() {
        return None;
    }
    Some(placement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_gpu::{Gpu, GpuHealth, MigMode};
    use gantry_proto::NumaDomain;
    use gantry_topology::PciBusId;

    /// Two nodes of 2 cores x 2 PUs and 4096 MiB; GPUs 0-1 on node 0, 2-3 on node 1.
    fn small() -> Arc<NodeTopology> {
        let gpus = (0..4u32)
            .map(|i| Gpu {
                index: i,
                minor: i,
                uuid: format!("GPU-{i}"),
                name: "t".into(),
                memory_mib: 1,
                pci_bus_id: PciBusId::from_parts(0, 0x10 + i as u8, 0, 0),
                numa_node: Some(i / 2),
                cpu_affinity: vec![],
                nvlink_peers: vec![],
                pcie_switch: None,
                mig_mode: MigMode::Unsupported,
                health: GpuHealth::Healthy,
                mig: None,
            })
            .collect();
        let domains = [0u32, 1].map(|n| NumaDomain {
            id: n,
            cpus: (n * 4..n * 4 + 4).collect(),
            mem: 4096.0,
            gpus: vec![n * 2, n * 2 + 1],
            cores: vec![vec![n * 4, n * 4 + 1], vec![n * 4 + 2, n * 4 + 3]],
        });
        Arc::new(NodeTopology::new(gpus, &domains))
    }

    fn shape(cpus: f64, mem: f64, gpus: u32, numa: NumaPolicy) -> Shape {
        Shape {
            cpus,
            mem,
            disk: 0.0,
            gpus,
            ports: 0,
            numa,
            pus: cpus.ceil() as u32,
            profile: None,
        }
    }

    #[test]
    fn require_binds_gpus_cores_and_memory_of_one_node() {
        let mut t = TopoState::new(&TopologyUse::idle(small()));
        let mut memo = SelectionMemo::default();
        let s = shape(2.0, 1024.0, 2, NumaPolicy::Require);
        assert!(topo_fits(Some(&t), &s));
        let p = choose(&mut t, &s, &mut memo).expect("placed");
        let node = p.numa_node.expect("bound");
        assert_eq!(p.gpus.len(), 2);
        assert_eq!(p.mems, vec![node]);
        assert_eq!(p.cpus.len(), 2);
        assert!(p.cpus.iter().all(|c| c / 4 == node), "{p:?}");
        assert_eq!(p.cpus[0] + 1, p.cpus[1], "one whole core");
        // The same again lands on the other node; a third cannot fit.
        let q = choose(&mut t, &s, &mut memo).expect("placed");
        assert_ne!(q.numa_node, Some(node));
        assert!(!topo_fits(Some(&t), &s));
    }

    #[test]
    fn require_skips_a_node_without_the_cpus() {
        let used = TopologyUse {
            pinned_cpus: vec![0, 1, 2],
            ..TopologyUse::idle(small())
        };
        let mut t = TopoState::new(&used);
        let s = shape(2.0, 0.0, 1, NumaPolicy::Require);
        let p = choose(&mut t, &s, &mut SelectionMemo::default()).expect("placed");
        assert_eq!(p.numa_node, Some(1));
        assert!(p.gpus.iter().all(|g| g.index >= 2));
        let too_many = shape(5.0, 0.0, 1, NumaPolicy::Require);
        assert!(!topo_fits(Some(&t), &too_many));
        let prefer = shape(5.0, 0.0, 1, NumaPolicy::Prefer);
        assert!(topo_fits(Some(&t), &prefer));
    }

    #[test]
    fn unhealthy_and_taken_gpus_are_not_free() {
        let mut topo = (*small()).clone();
        topo.gpus[0].health = GpuHealth::Unhealthy { reason: "x".into() };
        let topo = NodeTopology::new(topo.gpus, &[]);
        let used = TopologyUse {
            taken_gpus: vec![1, 2],
            ..TopologyUse::idle(Arc::new(topo))
        };
        let t = TopoState::new(&used);
        assert_eq!(t.free_gpus, 0b1000);
        assert!(!topo_fits(Some(&t), &shape(0.0, 0.0, 2, NumaPolicy::None)));
        assert!(topo_fits(Some(&t), &shape(0.0, 0.0, 1, NumaPolicy::None)));
    }

    #[test]
    fn cpu_only_tasks_with_a_policy_pin_on_the_node_with_fewer_free_gpus() {
        let used = TopologyUse {
            taken_gpus: vec![2],
            ..TopologyUse::idle(small())
        };
        let mut t = TopoState::new(&used);
        let p = choose(
            &mut t,
            &shape(1.0, 512.0, 0, NumaPolicy::Prefer),
            &mut SelectionMemo::default(),
        )
        .expect("pinned");
        assert_eq!(p.numa_node, Some(1));
        assert!(p.gpus.is_empty());
        assert_eq!(p.cpus.len(), 1);
        assert!(choose(
            &mut t,
            &shape(1.0, 512.0, 0, NumaPolicy::None),
            &mut SelectionMemo::default()
        )
        .is_none());
    }
}
