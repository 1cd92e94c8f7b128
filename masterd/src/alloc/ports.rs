//! An agent's free host ports during one placement run: a count kept up to date and the lowest free
//! ports handed out first, without touching `PortRanges` in the hot loop.

use gantry_proto::PortRanges;

/// Free ports as sorted inclusive ranges, consumed from the lowest port up.
#[derive(Clone, Debug, Default)]
pub(crate) struct FreePorts {
    ranges: Vec<(u16, u16)>,
    /// Index of the first range that still holds ports.
    head: usize,
    count: usize,
}

impl FreePorts {
    /// The free ports of an agent: its total ports less those in use.
    pub(crate) fn new(free: &PortRanges) -> Self {
        let ranges = free.ranges().to_vec();
        let count = ranges
            .iter()
            .map(|&(b, e)| usize::from(e) - usize::from(b) + 1)
            .sum();
        Self {
            ranges,
            head: 0,
            count,
        }
    }

    /// How many ports are still free.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Takes the lowest `n` free ports, or `None` (taking nothing) when fewer are free.
    pub(crate) fn take_lowest(&mut self, n: usize) -> Option<Vec<u16>> {
        if n > self.count {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let (b, e) = self.ranges[self.head];
            let want = n - out.len();
            let avail = usize::from(e) - usize::from(b) + 1;
            let take = want.min(avail);
            out.extend((0..take).map(|k| b + k as u16));
            if take == avail {
                self.head += 1;
            } else {
                self.ranges[self.head].0 = b + take as u16;
            }
        }
        self.count -= n;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_lowest_ports_across_ranges_and_counts_down() {
        let mut f = FreePorts::new(&PortRanges::new([
            (31000, 31001),
            (31005, 31007),
            (65535, 65535),
        ]));
        assert_eq!(f.count(), 6);
        assert_eq!(f.take_lowest(3), Some(vec![31000, 31001, 31005]));
        assert_eq!(f.count(), 3);
        assert_eq!(f.take_lowest(4), None, "only 3 ports are left");
        assert_eq!(f.count(), 3, "a refused take takes nothing");
        assert_eq!(f.take_lowest(0), Some(vec![]));
        assert_eq!(f.take_lowest(3), Some(vec![31006, 31007, 65535]));
        assert_eq!(f.count(), 0);
        assert_eq!(f.take_lowest(1), None);
    }

    #[test]
    fn no_ports_at_all() {
        let mut f = FreePorts::new(&PortRanges::default());
        assert_eq!(f.count(), 0);
        assert_eq!(f.take_lowest(1), None);
        assert_eq!(f.take_lowest(0), Some(vec![]));
    }
}
