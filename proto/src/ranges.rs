//! Port ranges: a normalized set of inclusive `u16` ranges, written the Mesos way
//! (`[31000-31001, 31005-31005]`) on the wire and in state JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A set of ports as sorted, non-overlapping, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortRanges(Vec<(u16, u16)>);

/// A port range string that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid port range '{input}': {why}")]
pub struct RangeError {
    /// The text at fault.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl PortRanges {
    /// Builds a normalized set from any ranges (unordered, overlapping, with `begin > end` dropped).
    pub fn new(ranges: impl IntoIterator<Item = (u16, u16)>) -> Self {
        let mut v: Vec<(u16, u16)> = ranges.into_iter().filter(|(b, e)| b <= e).collect();
        v.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(v.len());
        for (b, e) in v {
            match out.last_mut() {
                Some(last) if u32::from(b) <= u32::from(last.1) + 1 => last.1 = last.1.max(e),
                _ => out.push((b, e)),
            }
        }
        Self(out)
    }

    /// The set holding exactly these ports.
    pub fn from_ports(ports: &[u16]) -> Self {
        Self::new(ports.iter().map(|&p| (p, p)))
    }

    /// The normalized ranges.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    /// How many ports the set holds.
    pub fn len(&self) -> u64 {
        self.0
            .iter()
            .map(|&(b, e)| u64::from(e) - u64::from(b) + 1)
            .sum()
    }

    /// True when the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(b, e)| b <= port && port <= e)
    }

    /// True when every port of `other` is in `self`.
    pub fn is_superset_of(&self, other: &PortRanges) -> bool {
        other
            .0
            .iter()
            .all(|&(ob, oe)| self.0.iter().any(|&(b, e)| b <= ob && oe <= e))
    }

    /// The ports in either set.
    pub fn union(&self, other: &PortRanges) -> PortRanges {
        PortRanges::new(self.0.iter().chain(other.0.iter()).copied())
    }

    /// The ports of `self` that are not in `other`.
    pub fn difference(&self, other: &PortRanges) -> PortRanges {
        let mut out = Vec::new();
        for &(b, e) in &self.0 {
            let mut start = u32::from(b);
            let end = u32::from(e);
            for &(ob, oe) in &other.0 {
                let (ob, oe) = (u32::from(ob), u32::from(oe));
                if oe < start || ob > end {
                    continue;
                }
                if ob > start {
                    out.push((start as u16, (ob - 1) as u16));
                }
                start = oe + 1;
                if start > end {
                    break;
                }
            }
            if start <= end {
                out.push((start as u16, end as u16));
            }
        }
        PortRanges(out)
    }

    /// The lowest `n` ports of the set, or `None` when it holds fewer.
    pub fn lowest(&self, n: usize) -> Option<Vec<u16>> {
        let mut out = Vec::with_capacity(n);
        for &(b, e) in &self.0 {
            for p in b..=e {
                if out.len() == n {
                    return Some(out);
                }
                out.push(p);
            }
        }
        (out.len() == n).then_some(out)
    }
}

impl fmt::Display for PortRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{b}-{e}")?;
        }
        f.write_str("]")
    }
}

impl FromStr for PortRanges {
    type Err = RangeError;

    /// Parses `[31000-32000, 33000-33010]`, with or without the brackets; `[]` is empty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| RangeError {
            input: s.to_owned(),
            why,
        };
        let inner = s.trim();
        let inner = inner
            .strip_prefix('[')
            .map(|r| r.strip_suffix(']').ok_or_else(|| err("missing ']'")))
            .transpose()?
            .unwrap_or(inner);
        let mut ranges = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (b, e) = part.split_once('-').unwrap_or((part, part));
            let b: u16 = b.trim().parse().map_err(|_| err("not a port number"))?;
            let e: u16 = e.trim().parse().map_err(|_| err("not a port number"))?;
            if b > e {
                return Err(err("range begins after it ends"));
            }
            ranges.push((b, e));
        }
        Ok(PortRanges::new(ranges))
    }
}

impl Serialize for PortRanges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRanges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_the_mesos_format() {
        let r: PortRanges = "[31000-31001, 31005-31005]".parse().unwrap();
        assert_eq!(r.ranges(), &[(31000, 31001), (31005, 31005)]);
        assert_eq!(r.to_string(), "[31000-31001, 31005-31005]");
        assert_eq!(r.len(), 3);
        assert_eq!("31000-32000".parse::<PortRanges>().unwrap().len(), 1001);
        assert!("[]".parse::<PortRanges>().unwrap().is_empty());
        assert!("[5-1]".parse::<PortRanges>().is_err());
        assert!("[a-b]".parse::<PortRanges>().is_err());
    }

    #[test]
    fn normalizes_overlaps_and_neighbours() {
        let r = PortRanges::new([(10, 12), (13, 15), (11, 11), (20, 21)]);
        assert_eq!(r.ranges(), &[(10, 15), (20, 21)]);
    }

    #[test]
    fn difference_and_lowest() {
        let all = PortRanges::new([(31000, 31009)]);
        let used = PortRanges::from_ports(&[31000, 31002, 31009]);
        let free = all.difference(&used);
        assert_eq!(free.ranges(), &[(31001, 31001), (31003, 31008)]);
        assert_eq!(free.lowest(3), Some(vec![31001, 31003, 31004]));
        assert_eq!(free.lowest(8), None);
        assert!(all.is_superset_of(&used));
        assert!(!free.is_superset_of(&used));
    }

    proptest! {
        #[test]
        fn difference_partitions_the_set(a in proptest::collection::vec((0u16..200, 0u16..20), 0..8),
                                         b in proptest::collection::vec((0u16..200, 0u16..20), 0..8)) {
            let a = PortRanges::new(a.into_iter().map(|(s, l)| (s, s + l)));
            let b = PortRanges::new(b.into_iter().map(|(s, l)| (s, s + l)));
            let d = a.difference(&b);
            for p in 0u16..230 {
                prop_assert_eq!(d.contains(p), a.contains(p) && !b.contains(p));
            }
            prop_assert_eq!(d.union(&b).is_superset_of(&a), true);
            let round: PortRanges = a.to_string().parse().unwrap();
            prop_assert_eq!(round, a);
        }
    }
}
