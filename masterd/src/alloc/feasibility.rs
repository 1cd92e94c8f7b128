//! Feasibility: whether a task's shape fits an agent's free resources, and if not, which resources
//! fall short (for the reasons users read).

use super::agent_state::AgentState;
use super::numa_fit::topo_fits;
use super::shape::{Shape, EPSILON};
use std::fmt;

/// A kind of resource a task asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Cpus,
    Mem,
    Disk,
    Gpus,
    Ports,
}

impl ResourceKind {
    /// Every kind, in the order reasons list them.
    pub const ALL: [ResourceKind; 5] = [
        ResourceKind::Cpus,
        ResourceKind::Mem,
        ResourceKind::Disk,
        ResourceKind::Gpus,
        ResourceKind::Ports,
    ];

    /// The Mesos name of the resource.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Cpus => "cpus",
            ResourceKind::Mem => "mem",
            ResourceKind::Disk => "disk",
            ResourceKind::Gpus => "gpus",
            ResourceKind::Ports => "ports",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The resources an agent lacks for one shape (empty: it fits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shortfalls(u8);

impl Shortfalls {
    /// True when nothing falls short.
    #[cfg(test)]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when `kind` falls short.
    pub(crate) fn has(self, kind: ResourceKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// True when `shape` fits the free resources of `agent` (the hot path: no bookkeeping; the
/// topology is looked at only for tasks with GPUs or a NUMA policy).
#[inline]
pub(crate) fn fits(agent: &AgentState, shape: &Shape) -> bool {
    fits_scalars(agent, shape) && (!shape.binds() || topo_fits(agent.topo.as_ref(), shape))
}

/// True when the scalars and ports of `shape` fit, whatever the topology says.
#[inline]
pub(crate) fn fits_scalars(agent: &AgentState, shape: &Shape) -> bool {
    shape.cpus <= agent.cpus + EPSILON
        && shape.mem <= agent.mem + EPSILON
        && shape.disk <= agent.disk + EPSILON
        && shape.gpus <= agent.gpus
        && shape.ports <= agent.ports.count()
}

/// Every resource of `shape` that `agent` has too little of.
pub(crate) fn shortfalls(agent: &AgentState, shape: &Shape) -> Shortfalls {
    let mut s = 0u8;
    for kind in ResourceKind::ALL {
        if asked(shape, kind) > free(agent, kind) + slack(kind) {
            s |= kind.bit();
        }
    }
    Shortfalls(s)
}

/// How much of `kind` the agent has free.
pub(crate) fn free(agent: &AgentState, kind: ResourceKind) -> f64 {
    match kind {
        ResourceKind::Cpus => agent.cpus,
        ResourceKind::Mem => agent.mem,
        ResourceKind::Disk => agent.disk,
        ResourceKind::Gpus => f64::from(agent.gpus),
        ResourceKind::Ports => agent.ports.count() as f64,
    }
}

/// How much of `kind` the shape asks for.
pub(crate) fn asked(shape: &Shape, kind: ResourceKind) -> f64 {
    match kind {
        ResourceKind::Cpus => shape.cpus,
        ResourceKind::Mem => shape.mem,
        ResourceKind::Disk => shape.disk,
        ResourceKind::Gpus => f64::from(shape.gpus),
        ResourceKind::Ports => shape.ports as f64,
    }
}

fn slack(kind: ResourceKind) -> f64 {
    match kind {
        ResourceKind::Cpus | ResourceKind::Mem | ResourceKind::Disk => EPSILON,
        ResourceKind::Gpus | ResourceKind::Ports => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AgentSnapshot;
    use gantry_proto::{PortRanges, Resources};

    fn agent(cpus: f64, mem: f64, gpus: u32, ports: (u16, u16)) -> AgentState {
        let snap = AgentSnapshot {
            id: "a".into(),
            reachable: true,
            total: Resources {
                gpus,
                ports: PortRanges::new([ports]),
                ..Resources::scalars(cpus, mem, 100.0)
            },
            used: Resources::default(),
            attributes: Default::default(),
            group_counts: Default::default(),
            topology: None,
        };
        AgentState::new(&snap, &Default::default())
    }

    fn shape(cpus: f64, mem: f64, gpus: u32, ports: usize) -> Shape {
        Shape {
            cpus,
            mem,
            disk: 0.0,
            gpus,
            ports,
            numa: gantry_gpu::NumaPolicy::None,
            pus: cpus.ceil() as u32,
            profile: None,
        }
    }

    #[test]
    fn fits_exactly_and_within_the_scalar_slack() {
        let a = agent(2.0, 1024.0, 1, (31000, 31001));
        assert!(fits(&a, &shape(2.0, 1024.0, 1, 2)));
        assert!(fits(&a, &shape(2.0005, 1024.0, 1, 2)), "within 1/1000 cpu");
        assert!(shortfalls(&a, &shape(2.0, 1024.0, 1, 2)).is_empty());
    }

    #[test]
    fn names_every_resource_that_falls_short() {
        let a = agent(2.0, 1024.0, 1, (31000, 31001));
        let s = shortfalls(&a, &shape(4.0, 512.0, 2, 3));
        assert!(!fits(&a, &shape(4.0, 512.0, 2, 3)));
        assert!(
            s.has(ResourceKind::Cpus) && s.has(ResourceKind::Gpus) && s.has(ResourceKind::Ports)
        );
        assert!(!s.has(ResourceKind::Mem) && !s.has(ResourceKind::Disk));
        for (sh, kind) in [
            (shape(2.1, 0.0, 0, 0), ResourceKind::Cpus),
            (shape(0.0, 2000.0, 0, 0), ResourceKind::Mem),
            (shape(0.0, 0.0, 2, 0), ResourceKind::Gpus),
            (shape(0.0, 0.0, 0, 3), ResourceKind::Ports),
        ] {
            assert!(!fits(&a, &sh), "{kind}");
            assert!(shortfalls(&a, &sh).has(kind), "{kind}");
        }
    }
}
