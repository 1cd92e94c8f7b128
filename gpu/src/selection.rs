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
fn closest_set(pool: &[&Gpu], count: usize, numa_counts: bool) -> Option<(u64, Vec<u32>)> {
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
