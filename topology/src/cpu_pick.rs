//! Picking PUs on one NUMA node: whole free cores first, then single PUs.

use std::collections::BTreeSet;

/// Why no PUs could be picked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpuPickError {
    /// The NUMA node is unknown or not allowed.
    #[error("NUMA node {0} is not an allowed node of this machine")]
    UnknownNumaNode(u32),
    /// Not enough free PUs.
    #[error("asked for {wanted} CPUs on one NUMA node, only {free} are free there")]
    NotEnoughCpus {
        /// How many were asked for.
        wanted: usize,
        /// How many were free.
        free: usize,
    },
}

/// Picks `count` PUs from `cores` (each a core's PUs), skipping PUs in `busy`.
///
/// Order: whole free cores (lowest first) while at least a core's worth is still wanted; then
/// the remaining PUs from partly used cores (keeps free cores whole); then from free cores.
/// The result is sorted. Pure: the same inputs always give the same answer.
pub fn pick_cpus_from_cores(
    cores: &[&[u32]],
    count: usize,
    busy: &BTreeSet<u32>,
) -> Result<Vec<u32>, CpuPickError> {
    let free_of =
        |core: &[u32]| -> Vec<u32> { core.iter().copied().filter(|p| !busy.contains(p)).collect() };
    let total_free: usize = cores.iter().map(|c| free_of(c).len()).sum();
    if total_free < count {
        return Err(CpuPickError::NotEnoughCpus {
            wanted: count,
            free: total_free,
        });
    }
    let mut picked = Vec::with_capacity(count);
    let mut used_core = vec![false; cores.len()];
    // 1. Whole free cores that fit entirely in what is still wanted.
    for (i, core) in cores.iter().enumerate() {
        let free = free_of(core);
        let remaining = count - picked.len();
        if !core.is_empty() && free.len() == core.len() && free.len() <= remaining {
            picked.extend(free);
            used_core[i] = true;
        }
    }
    // 2. PUs from partly used cores, then 3. from the remaining free cores.
    for whole in [false, true] {
        for (i, core) in cores.iter().enumerate() {
            if used_core[i] || picked.len() == count {
                continue;
            }
            let free = free_of(core);
            if (free.len() == core.len()) != whole {
                continue;
            }
            let remaining = count - picked.len();
            picked.extend(free.into_iter().take(remaining));
        }
    }
    picked.sort_unstable();
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn smt2(n: u32) -> Vec<Vec<u32>> {
        (0..n).map(|c| vec![c, c + n]).collect()
    }

    fn refs(cores: &[Vec<u32>]) -> Vec<&[u32]> {
        cores.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn whole_cores_come_first() {
        let cores = smt2(4);
        let got = pick_cpus_from_cores(&refs(&cores), 4, &BTreeSet::new());
        assert_eq!(got, Ok(vec![0, 1, 4, 5]));
    }

    #[test]
    fn odd_count_takes_a_pu_from_a_partly_used_core_before_breaking_a_free_one() {
        let cores = smt2(4);
        // Core 1 (PUs 1,5) has PU 1 busy: PU 5 is the odd one out.
        let busy = BTreeSet::from([1]);
        let got = pick_cpus_from_cores(&refs(&cores), 3, &busy);
        assert_eq!(got, Ok(vec![0, 4, 5]));
    }

    #[test]
    fn not_enough_free_cpus_is_an_error() {
        let cores = smt2(2);
        let busy = BTreeSet::from([0, 1]);
        assert_eq!(
            pick_cpus_from_cores(&refs(&cores), 3, &busy),
            Err(CpuPickError::NotEnoughCpus { wanted: 3, free: 2 })
        );
    }

    proptest! {
        #[test]
        fn picks_exactly_count_free_distinct_pus(
            ncores in 1u32..16,
            busy in proptest::collection::btree_set(0u32..32, 0..20),
            count in 0usize..32,
        ) {
            let cores = smt2(ncores);
            let free = (0..2 * ncores).filter(|p| !busy.contains(p)).count();
            match pick_cpus_from_cores(&refs(&cores), count, &busy) {
                Ok(p) => {
                    prop_assert!(count <= free);
                    prop_assert_eq!(p.len(), count);
                    prop_assert!(p.iter().all(|c| !busy.contains(c) && *c < 2 * ncores));
                    let set: BTreeSet<u32> = p.iter().copied().collect();
                    prop_assert_eq!(set.len(), count);
                }
                Err(_) => prop_assert!(count > free),
            }
        }

        #[test]
        fn even_counts_on_an_idle_node_use_whole_cores(ncores in 1u32..16, k in 0u32..16) {
            let cores = smt2(ncores);
            let k = k.min(ncores);
            let p = pick_cpus_from_cores(&refs(&cores), 2 * k as usize, &BTreeSet::new());
            let p = p.map_err(|e| TestCaseError::fail(e.to_string()))?;
            for c in 0..ncores {
                prop_assert_eq!(p.contains(&c), p.contains(&(c + ncores)));
            }
        }
    }
}
