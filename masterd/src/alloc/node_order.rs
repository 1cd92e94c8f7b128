//! The order agents are visited in: shuffled once per run by the seed, then walked round and round,
//! each task starting where the last one stopped (Nomad's static iterator).

use super::rng::SplitMix64;

/// A seed-shuffled ring of agent indexes.
#[derive(Clone, Debug)]
pub(crate) struct NodeOrder {
    ring: Vec<u32>,
    pos: usize,
}

impl NodeOrder {
    /// Shuffles `indexes` by `seed`.
    pub(crate) fn new(mut indexes: Vec<u32>, seed: u64) -> Self {
        SplitMix64::new(seed).shuffle(&mut indexes);
        Self {
            ring: indexes,
            pos: 0,
        }
    }

    /// How many agents the ring holds.
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// The next agent index, wrapping around; `None` only for an empty ring.
    #[inline]
    pub(crate) fn next_index(&mut self) -> Option<usize> {
        let i = *self.ring.get(self.pos)?;
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        Some(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_agent_once_per_round_and_continues_where_it_stopped() {
        let mut o = NodeOrder::new((0..10).collect(), 42);
        let first: Vec<usize> = (0..10).filter_map(|_| o.next_index()).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let second: Vec<usize> = (0..10).filter_map(|_| o.next_index()).collect();
        assert_eq!(first, second, "the ring repeats");
        let mut p = NodeOrder::new((0..10).collect(), 42);
        assert_eq!(p.next_index(), Some(first[0]), "same seed, same order");
        let other: Vec<usize> = {
            let mut q = NodeOrder::new((0..10).collect(), 43);
            (0..10).filter_map(|_| q.next_index()).collect()
        };
        assert_ne!(first, other);
        assert_eq!(NodeOrder::new(vec![], 1).next_index(), None);
    }
}
