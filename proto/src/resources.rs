//! Resources: the scalars (cpus, mem, disk, gpus) and port ranges that agents offer and tasks use.
//! Serializes to the flat object Mesos state endpoints show (`{"cpus":1.0,"mem":128,...,"ports":"[..]"}`).

use crate::ranges::PortRanges;
use serde::{Deserialize, Serialize};

/// Tolerance for comparing fractional cpus and mem sums (1/1000, Mesos's scalar precision).
const EPSILON: f64 = 1e-3;

/// A bundle of resources. Memory and disk are in MiB, as in Mesos and Marathon.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Whole GPUs. Which GPUs and on which NUMA node is carried by the agent's NUMA domains.
    pub gpus: u32,
    pub ports: PortRanges,
}

impl Resources {
    /// Scalars only, no ports.
    pub fn scalars(cpus: f64, mem: f64, disk: f64) -> Self {
        Self {
            cpus,
            mem,
            disk,
            ..Self::default()
        }
    }

    /// True when every amount in `self` is available in `avail` (ports by identity).
    pub fn fits_in(&self, avail: &Resources) -> bool {
        self.cpus <= avail.cpus + EPSILON
            && self.mem <= avail.mem + EPSILON
            && self.disk <= avail.disk + EPSILON
            && self.gpus <= avail.gpus
            && avail.ports.is_superset_of(&self.ports)
    }

    /// The sum of both bundles.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            gpus: self.gpus + other.gpus,
            ports: self.ports.union(&other.ports),
        }
    }

    /// `self` less `other`, never below zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem: (self.mem - other.mem).max(0.0),
            disk: (self.disk - other.disk).max(0.0),
            gpus: self.gpus.saturating_sub(other.gpus),
            ports: self.ports.difference(&other.ports),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_is_flat_with_string_ports() {
        let r = Resources {
            cpus: 1.0,
            mem: 128.0,
            disk: 0.0,
            gpus: 0,
            ports: PortRanges::new([(31000, 31001), (31005, 31005)]),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cpus":1.0,"mem":128.0,"disk":0.0,"gpus":0,"ports":"[31000-31001, 31005-31005]"})
        );
    }

    #[test]
    fn fits_plus_minus() {
        let total = Resources {
            ports: PortRanges::new([(31000, 31010)]),
            ..Resources::scalars(2.0, 1024.0, 100.0)
        };
        let task = Resources {
            ports: PortRanges::from_ports(&[31000]),
            ..Resources::scalars(0.5, 256.0, 0.0)
        };
        assert!(task.fits_in(&total));
        let left = total.minus(&task);
        assert_eq!(left.cpus, 1.5);
        assert!(!task.fits_in(&left), "port 31000 is used");
        assert_eq!(left.plus(&task), total);
        assert!(!Resources::scalars(2.1, 0.0, 0.0).fits_in(&total));
    }
}
