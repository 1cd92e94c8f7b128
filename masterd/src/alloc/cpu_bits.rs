//! Pinned PUs as a bit set, and picking PUs from a NUMA node's cores without allocating per core:
//! the same rule and result as `gantry_topology::pick_cpus_from_cores` (whole free cores first,
//! then PUs of partly used cores, then of free cores), for the allocator's hot path.

/// A set of PU indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PuSet {
    words: Vec<u64>,
}

impl PuSet {
    /// An empty set with room for PUs below `64 * words` (it grows when needed).
    pub(crate) fn with_words(words: usize) -> Self {
        PuSet {
            words: vec![0; words],
        }
    }

    #[inline]
    pub(crate) fn contains(&self, pu: u32) -> bool {
        self.words
            .get((pu / 64) as usize)
            .is_some_and(|w| (w >> (pu % 64)) & 1 == 1)
    }

    pub(crate) fn insert(&mut self, pu: u32) {
        let i = (pu / 64) as usize;
        if i >= self.words.len() {
            self.words.resize(i + 1, 0);
        }
        self.words[i] |= 1 << (pu % 64);
    }
}

fn free_in(core: &[u32], busy: &PuSet) -> usize {
    core.iter().filter(|&&p| !busy.contains(p)).count()
}

/// Picks `count` PUs from `cores` (each a core's PUs) not in `busy`, sorted; `None` when fewer
/// are free. Whole free cores first while at least a core's worth is still wanted, then PUs of
/// partly used cores (keeping free cores whole), then PUs of the remaining free cores.
///
/// Each core's free PUs are counted once (on the stack for nodes of up to 64 cores), and cores
/// taken whole are marked in a bit mask, so the hot path allocates only the answer.
pub(crate) fn pick_pus(cores: &[Vec<u32>], count: usize, busy: &PuSet) -> Option<Vec<u32>> {
    const SMALL: usize = 64;
    let mut small = [0u32; SMALL];
    let mut big = Vec::new();
    let free: &mut [u32] = if cores.len() <= SMALL {
        &mut small[..cores.len()]
    } else {
        big.resize(cores.len(), 0);
        &mut big
    };
    let mut total = 0usize;
    for (f, core) in free.iter_mut().zip(cores) {
        *f = free_in(core, busy) as u32;
        total += *f as usize;
    }
    if total < count {
        return None;
    }
    let whole = |i: usize| free[i] as usize == cores[i].len();
    let mut picked = Vec::with_capacity(count);
    // Cores taken whole in the first pass: bit i of `used_small`, or `used` beyond 64 cores.
    let mut used = PuSet::with_words(0);
    let mut used_small = 0u64;
    for (i, core) in cores.iter().enumerate() {
        if picked.len() == count {
            break;
        }
        if !core.is_empty() && whole(i) && core.len() <= count - picked.len() {
            picked.extend_from_slice(core);
            if i < SMALL {
                used_small |= 1 << i;
            } else {
                used.insert(i as u32);
            }
        }
    }
    let is_used = |i: usize| {
        if i < SMALL {
            used_small & (1 << i) != 0
        } else {
            used.contains(i as u32)
        }
    };
    for want_whole in [false, true] {
        for (i, core) in cores.iter().enumerate() {
            if picked.len() == count {
                break;
            }
            if free[i] == 0 || whole(i) != want_whole || is_used(i) {
                continue;
            }
            let remaining = count - picked.len();
            picked.extend(
                core.iter()
                    .copied()
                    .filter(|&p| !busy.contains(p))
                    .take(remaining),
            );
        }
    }
    picked.sort_unstable();
    Some(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn sets_hold_what_was_inserted_and_grow() {
        let mut s = PuSet::with_words(1);
        s.insert(3);
        s.insert(200);
        assert!(s.contains(3) && s.contains(200));
        assert!(!s.contains(4) && !s.contains(1000));
    }

    proptest! {
        #[test]
        fn picks_exactly_what_the_topology_crate_picks(
            smt in 1u32..4,
            ncores in 0u32..80,
            busy in prop::collection::vec(0u32..160, 0..60),
            count in 0usize..100,
        ) {
            let cores: Vec<Vec<u32>> = (0..ncores)
                .map(|c| (0..smt).map(|t| c + t * ncores).collect())
                .collect();
            let reference_busy: BTreeSet<u32> = busy.iter().copied().collect();
            let mut bits = PuSet::with_words(1);
            for &b in &busy {
                bits.insert(b);
            }
            let refs: Vec<&[u32]> = cores.iter().map(Vec::as_slice).collect();
            let expected = gantry_topology::pick_cpus_from_cores(&refs, count, &reference_busy).ok();
            prop_assert_eq!(pick_pus(&cores, count, &bits), expected);
        }
    }
}
