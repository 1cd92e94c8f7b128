//! A demand's shape (the amounts it asks for), its validation, and the memory of shapes that fit
//! nowhere, so that a batch of identical tasks that cannot run costs one scan of the cluster, not one each.

use super::TaskDemand;
use gantry_gpu::{NumaPolicy, MAX_PROFILE_LEN};
use std::fmt;

/// A MIG profile name (`1g.10gb`) kept inline, so that shapes stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Profile {
    len: u8,
    bytes: [u8; MAX_PROFILE_LEN],
}

impl Profile {
    /// The profile `name`, or `None` when it is longer than [`MAX_PROFILE_LEN`] bytes.
    pub(crate) fn new(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() > MAX_PROFILE_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_PROFILE_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Slack for comparing fractional cpus, mem and disk (1/1000, Mesos's scalar precision).
pub(crate) const EPSILON: f64 = 1e-3;

/// What one task asks of one agent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Shape {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: u32,
    pub ports: usize,
    /// How strictly GPUs, PUs and memory must share a NUMA node.
    pub numa: NumaPolicy,
    /// PUs to pin when the task is bound to a NUMA node: `ceil(cpus)`.
    pub pus: u32,
    /// The MIG profile every GPU of the task must be (`gpuProfile`); `None`: whole GPUs.
    pub profile: Option<Profile>,
}

/// A hashable key for exactly one shape.
pub(crate) type ShapeKey = (u64, u64, u64, u32, usize, u8, Option<Profile>);

impl Shape {
    /// The shape of `demand`, or why it cannot be placed anywhere whatever the cluster holds.
    pub(crate) fn of(demand: &TaskDemand) -> Result<Shape, String> {
        let r = &demand.resources;
        for (name, v) in [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "invalid demand: {name} must be a number of at least 0, got {v}"
                ));
            }
        }
        let profile = match demand.gpu_profile.as_deref() {
            None => None,
            Some(p) if r.gpus == 0 => {
                return Err(format!(
                    "invalid demand: gpuProfile {p} needs gpus of at least 1"
                ))
            }
            Some(p) => Some(
                Profile::new(p)
                    .ok_or_else(|| format!("invalid demand: gpuProfile {p} is too long"))?,
            ),
        };
        Ok(Shape {
            profile,
            cpus: r.cpus,
            mem: r.mem,
            disk: r.disk,
            gpus: r.gpus,
            ports: demand.port_count,
            numa: demand.numa,
            pus: (r.cpus - EPSILON).ceil().max(0.0) as u32,
        })
    }

    /// True when the task takes part in GPU/NUMA placement (it asks for GPUs or a NUMA policy).
    #[inline]
    pub(crate) fn binds(&self) -> bool {
        self.gpus > 0 || self.numa != NumaPolicy::None || self.profile.is_some()
    }

    /// True when `self` asks for at least as much as `other` of everything, as strictly: same
    /// kind (GPU task or not, since CPU-only tasks may be kept off GPU agents), and a policy at
    /// least as strict (`require` is stricter than `prefer` and `none`, which fit alike).
    pub(crate) fn covers(&self, other: &Shape) -> bool {
        let strict = |p: NumaPolicy| p == NumaPolicy::Require;
        (self.gpus == 0) == (other.gpus == 0)
            && self.profile == other.profile
            && strict(self.numa) >= strict(other.numa)
            && self.cpus >= other.cpus
            && self.mem >= other.mem
            && self.disk >= other.disk
            && self.gpus >= other.gpus
            && self.ports >= other.ports
    }

    /// A hashable key for exactly this shape.
    pub(crate) fn key(&self) -> ShapeKey {
        (
            self.cpus.to_bits(),
            self.mem.to_bits(),
            self.disk.to_bits(),
            self.gpus,
            self.ports,
            self.numa as u8,
            self.profile,
        )
    }
}

/// How many failed shapes are remembered; older ones are overwritten in turn.
const REMEMBERED: usize = 32;

/// Shapes that fit on no agent. Within one placement run free resources only shrink, so any demand
/// asking at least as much as a remembered shape cannot fit either.
#[derive(Clone, Debug, Default)]
pub(crate) struct FailedShapes {
    shapes: Vec<Shape>,
    next: usize,
}

impl FailedShapes {
    /// Remembers that `shape` fits nowhere.
    pub(crate) fn remember(&mut self, shape: Shape) {
        if self.shapes.len() < REMEMBERED {
            self.shapes.push(shape);
        } else {
            self.shapes[self.next] = shape;
            self.next = (self.next + 1) % REMEMBERED;
        }
    }

    /// True when `shape` is known to fit nowhere.
    pub(crate) fn known_to_fail(&self, shape: &Shape) -> bool {
        self.shapes.iter().any(|f| shape.covers(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::Resources;

    fn demand(cpus: f64, mem: f64, ports: usize) -> TaskDemand {
        TaskDemand {
            task_id: "t".into(),
            group: "/g".into(),
            resources: Resources::scalars(cpus, mem, 0.0),
            port_count: ports,
            numa: NumaPolicy::None,
            gpu_profile: None,
        }
    }

    #[test]
    fn rejects_negative_and_non_finite_amounts() {
        assert!(Shape::of(&demand(-1.0, 10.0, 0)).is_err());
        let e = Shape::of(&demand(1.0, f64::NAN, 0)).unwrap_err();
        assert!(e.contains("mem"), "{e}");
        assert!(Shape::of(&demand(1.0, f64::INFINITY, 0)).is_err());
        assert!(Shape::of(&demand(0.0, 0.0, 0)).is_ok());
    }

    #[test]
    fn a_bigger_shape_than_a_failed_one_fails_a_smaller_does_not() {
        let mut f = FailedShapes::default();
        let failed = Shape::of(&demand(4.0, 1024.0, 1)).unwrap();
        f.remember(failed);
        assert!(f.known_to_fail(&Shape::of(&demand(4.0, 1024.0, 1)).unwrap()));
        assert!(f.known_to_fail(&Shape::of(&demand(8.0, 2048.0, 2)).unwrap()));
        assert!(!f.known_to_fail(&Shape::of(&demand(3.0, 4096.0, 1)).unwrap()));
        assert!(!f.known_to_fail(&Shape::of(&demand(4.0, 1024.0, 0)).unwrap()));
        let gpu = Shape {
            gpus: 1,
            ..Shape::of(&demand(8.0, 2048.0, 2)).unwrap()
        };
        assert!(
            !f.known_to_fail(&gpu),
            "a GPU task may fit where a CPU task may not"
        );
    }

    #[test]
    fn require_is_stricter_and_pus_round_up() {
        let mut f = FailedShapes::default();
        let mut d = demand(1.5, 100.0, 0);
        d.numa = NumaPolicy::Require;
        let req = Shape::of(&d).unwrap();
        assert_eq!(req.pus, 2);
        assert_eq!(Shape::of(&demand(1.0, 1.0, 0)).unwrap().pus, 1);
        assert_eq!(Shape::of(&demand(0.1, 1.0, 0)).unwrap().pus, 1);
        f.remember(req);
        assert!(!f.known_to_fail(&Shape::of(&demand(1.5, 100.0, 0)).unwrap()));
        assert!(f.known_to_fail(&req));
    }

    #[test]
    fn remembers_a_bounded_number_of_shapes() {
        let mut f = FailedShapes::default();
        for i in 0..(REMEMBERED + 5) {
            f.remember(Shape::of(&demand(100.0 + i as f64, 1.0, 0)).unwrap());
        }
        assert_eq!(f.shapes.len(), REMEMBERED);
        assert!(
            !f.known_to_fail(&Shape::of(&demand(100.0, 1.0, 0)).unwrap()),
            "overwritten"
        );
        assert!(f.known_to_fail(&Shape::of(&demand(200.0, 1.0, 0)).unwrap()));
    }
}
