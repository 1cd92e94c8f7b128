//! Choosing N GPUs on one node, pure: NVLink-connected sets first, then GPUs behind the same
//! PCIe switch, then the same NUMA node (like Slurm's `--gpu-bind=closest`), under a NUMA policy.

use crate::model::Gpu;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How strictly the GPUs must share a NUMA node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumaPolicy {
    /// NUMA plays no part.
    None,
    /// One NUMA node when possible, else any GPUs (the default when GPUs are asked for).
    #[default]
    Prefer,
    /// All GPUs on one NUMA node, or no selection.
    Require,
}

/// The chosen GPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSelection {
    /// NVML indexes, sorted.
    pub gpus: Vec<u32>,
    /// The NUMA node all of them sit on; `None` when they span nodes (or a node is unknown).
    pub numa_node: Option<u32>,
}

/// Pair costs: a missing NVLink outweighs any number of switch or NUMA misses on 16+ GPUs.
const NO_NVLINK: u64 = 10_000;
const NO_SWITCH: u64 = 100;
const OTHER_NUMA: u64 = 1;

fn pair_cost(a: &Gpu, b: &Gpu, numa_counts: bool) -> u64 {
    let mut c = 0;
    if !a.nvlink_peers.contains(&b.index) && !b.nvlink_peers.contains(&a.index) {
        c += NO_NVLINK;
    }
    if a.pcie_switch.is_none() || a.pcie_switch != b.pcie_switch {
        c += NO_SWITCH;
    }
    if numa_counts && (a.numa_node.is_none() || a.numa_node != b.numa_node) {
        c += OTHER_NUMA;
    }
    c
}

/// Greedy closest set of `count` from `pool`: from each seed, add the GPU with the lowest added
/// cost (ties: lowest index); keep the cheapest set (ties: lowest indexes).
///
/// Pair costs are computed once into a matrix and each candidate's cost of joining the set is
/// kept as a running sum, so a seed costs `count * pool` steps instead of `count^2 * pool` pair
/// tests (each a scan of NVLink peer lists); the result is the same.
fn closest_set(pool: &[&Gpu], count: usize, numa_counts: bool) -> Option<(u64, Vec<u32>)> {
    if pool.len() < count {
        return None;
    }
    if count == 0 {
        return Some((0, Vec::new()));
    }
    let n = pool.len();
    let mut cost = vec![0u64; n * n];
    for a in 0..n {
        for b in a + 1..n {
            let c = pair_cost(pool[a], pool[b], numa_counts);
            cost[a * n + b] = c;
            cost[b * n + a] = c;
        }
    }
    let mut best: Option<(u64, Vec<u32>)> = None;
    let mut joined = vec![false; n];
    let mut add = vec![0u64; n];
    let mut ids: Vec<u32> = Vec::with_capacity(count);
    for seed in 0..n {
        joined.fill(false);
        joined[seed] = true;
        add.copy_from_slice(&cost[seed * n..(seed + 1) * n]);
        ids.clear();
        ids.push(pool[seed].index);
        let mut total = 0;
        while ids.len() < count {
            let (a, next) = (0..n)
                .filter(|&i| !joined[i])
                .map(|i| (add[i], i))
                .min_by_key(|&(a, i)| (a, pool[i].index))?;
            total += a;
            joined[next] = true;
            ids.push(pool[next].index);
            for (acc, c) in add.iter_mut().zip(&cost[next * n..(next + 1) * n]) {
                *acc += c;
            }
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        if best.as_ref().is_none_or(|b| (total, &sorted) < (b.0, &b.1)) {
            best = Some((total, sorted));
        }
    }
    best
}

/// Chooses `count` GPUs among `gpus` that are healthy and not in `taken` (NVML indexes).
///
/// `require` and `prefer` first try each NUMA node on its own and keep the closest set (ties: the
/// node with the fewest free GPUs, to keep larger blocks whole, then the lowest node); `prefer`
/// then falls back to any free GPUs, as does `none`. Returns `None` when the request cannot be met.
pub fn select_gpus(
    gpus: &[Gpu],
    taken: &BTreeSet<u32>,
    count: usize,
    policy: NumaPolicy,
) -> Option<GpuSelection> {
    if count == 0 {
        return Some(GpuSelection {
            gpus: Vec::new(),
            numa_node: None,
        });
    }
    let free: Vec<&Gpu> = gpus
        .iter()
        .filter(|g| g.health.is_healthy() && !taken.contains(&g.index))
        .collect();
    let numa_of = |ids: &[u32]| -> Option<u32> {
        let nodes: BTreeSet<Option<u32>> = gpus
            .iter()
            .filter(|g| ids.contains(&g.index))
            .map(|g| g.numa_node)
            .collect();
        match nodes.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(n)] => Some(*n),
            _ => None,
        }
    };
    if policy != NumaPolicy::None {
        let mut by_node: BTreeMap<u32, Vec<&Gpu>> = BTreeMap::new();
        for g in &free {
            if let Some(n) = g.numa_node {
                by_node.entry(n).or_default().push(g);
            }
        }
        let best = by_node
            .iter()
            .filter_map(|(node, pool)| {
                closest_set(pool, count, false).map(|(cost, ids)| (cost, pool.len(), *node, ids))
            })
            .min();
        if let Some((_, _, node, ids)) = best {
            return Some(GpuSelection {
                gpus: ids,
                numa_node: Some(node),
            });
        }
        if policy == NumaPolicy::Require {
            return None;
        }
    }
    let (_, ids) = closest_set(&free, count, policy != NumaPolicy::None)?;
    Some(GpuSelection {
        numa_node: numa_of(&ids),
        gpus: ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuHealth, MigMode};
    use gantry_topology::PciBusId;
    use proptest::prelude::*;

    /// The greedy search as first written (pair costs recomputed at every step): the reference
    /// the faster [`closest_set`] must agree with.
    fn reference(pool: &[&Gpu], count: usize, numa_counts: bool) -> Option<(u64, Vec<u32>)> {
        if pool.len() < count {
            return None;
        }
        if count == 0 {
            return Some((0, Vec::new()));
        }
        let mut best: Option<(u64, Vec<u32>)> = None;
        for seed in 0..pool.len() {
            let mut chosen = vec![seed];
            let mut cost = 0;
            while chosen.len() < count {
                let (add, next) = (0..pool.len())
                    .filter(|i| !chosen.contains(i))
                    .map(|i| {
                        let add: u64 = chosen
                            .iter()
                            .map(|&c| pair_cost(pool[c], pool[i], numa_counts))
                            .sum();
                        (add, i)
                    })
                    .min_by_key(|&(add, i)| (add, pool[i].index))?;
                cost += add;
                chosen.push(next);
            }
            let mut ids: Vec<u32> = chosen.iter().map(|&i| pool[i].index).collect();
            ids.sort_unstable();
            if best.as_ref().is_none_or(|b| (cost, &ids) < (b.0, &b.1)) {
                best = Some((cost, ids));
            }
        }
        best
    }

    /// `n` GPUs with NVLink peers, switches and nodes drawn from `bits`.
    fn gpus(n: usize, bits: &[u64]) -> Vec<Gpu> {
        (0..n as u32)
            .map(|i| {
                let b = bits[i as usize % bits.len()];
                Gpu {
                    index: i,
                    minor: i,
                    uuid: format!("GPU-{i}"),
                    name: "t".into(),
                    memory_mib: 1,
                    pci_bus_id: PciBusId::from_parts(0, i as u8, 0, 0),
                    numa_node: (b & 4 != 0).then_some((b as u32 >> 3) % 3),
                    cpu_affinity: vec![],
                    nvlink_peers: (0..n as u32).filter(|p| b >> (8 + p) & 1 == 1).collect(),
                    pcie_switch: (b & 1 != 0)
                        .then(|| PciBusId::from_parts(0, 0x80 + (b >> 1) as u8 % 4, 0, 0)),
                    mig_mode: MigMode::Unsupported,
                    health: GpuHealth::Healthy,
                    mig: None,
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn closest_set_agrees_with_the_reference_search(
            n in 0usize..17,
            bits in prop::collection::vec(any::<u64>(), 1..17),
            count in 0usize..10,
            numa_counts in any::<bool>(),
        ) {
            let all = gpus(n, &bits);
            let pool: Vec<&Gpu> = all.iter().collect();
            prop_assert_eq!(
                closest_set(&pool, count, numa_counts),
                reference(&pool, count, numa_counts)
            );
        }
    }
}
