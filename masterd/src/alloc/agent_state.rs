//! An agent's free resources and group counts during one placement run, updated in place as tasks
//! are put on it (its GPUs, pinned PUs and bound memory too, when it reported a topology).

use super::numa_fit::TopoState;
use super::ports::FreePorts;
use super::shape::Shape;
use super::AgentSnapshot;
use std::collections::HashMap;

/// What is left on one agent. Scalars are not clamped at zero, so a snapshot with more used than
/// total simply fits nothing.
#[derive(Clone, Debug)]
pub(crate) struct AgentState {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: u32,
    pub total_cpus: f64,
    pub total_mem: f64,
    pub ports: FreePorts,
    /// The agent offers GPUs (CPU-only tasks may avoid it; see `GpuAgentRule`).
    pub has_gpus: bool,
    /// Free GPUs, PUs and memory per NUMA node; `None` when the agent reported no topology.
    pub topo: Option<TopoState>,
    /// (interned group, tasks of that group on this agent), only for groups in the batch.
    groups: Vec<(u32, u32)>,
}

impl AgentState {
    /// The free resources of `agent`. `interned` maps the batch's groups to their numbers; counts of
    /// other groups are not kept.
    pub(crate) fn new(agent: &AgentSnapshot, interned: &HashMap<&str, u32>) -> Self {
        let (total, used) = (&agent.total, &agent.used);
        let groups = agent
            .group_counts
            .iter()
            .filter(|(_, &n)| n > 0)
            .filter_map(|(g, &n)| interned.get(g.as_str()).map(|&i| (i, n)))
            .collect();
        Self {
            cpus: total.cpus - used.cpus,
            mem: total.mem - used.mem,
            disk: total.disk - used.disk,
            gpus: total.gpus.saturating_sub(used.gpus),
            total_cpus: total.cpus,
            total_mem: total.mem,
            ports: FreePorts::new(&total.ports.difference(&used.ports)),
            has_gpus: total.gpus > 0,
            topo: agent.topology.as_ref().map(TopoState::new),
            groups,
        }
    }

    /// The agent's tasks of group `group` (existing and placed in this run).
    pub(crate) fn group_count(&self, group: u32) -> u32 {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map_or(0, |&(_, n)| n)
    }

    /// Tasks of each interned group on this agent.
    pub(crate) fn group_counts(&self) -> &[(u32, u32)] {
        &self.groups
    }

    /// Puts a task of `shape` and `group` here and returns its host ports; `None` (changing nothing)
    /// when the agent has too few free ports. The caller has checked the scalars.
    pub(crate) fn commit(&mut self, shape: &Shape, group: u32) -> Option<Vec<u16>> {
        let ports = self.ports.take_lowest(shape.ports)?;
        self.cpus -= shape.cpus;
        self.mem -= shape.mem;
        self.disk -= shape.disk;
        self.gpus = self.gpus.saturating_sub(shape.gpus);
        match self.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => *n += 1,
            None => self.groups.push((group, 1)),
        }
        Some(ports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::{PortRanges, Resources};

    #[test]
    fn free_is_total_less_used_and_commit_takes_it() {
        let agent = AgentSnapshot {
            id: "a".into(),
            reachable: true,
            total: Resources {
                gpus: 2,
                ports: PortRanges::new([(31000, 31004)]),
                ..Resources::scalars(4.0, 4096.0, 1000.0)
            },
            used: Resources {
                gpus: 1,
                ports: PortRanges::from_ports(&[31000]),
                ..Resources::scalars(1.0, 1024.0, 0.0)
            },
            attributes: Default::default(),
            group_counts: [("/web".to_string(), 2), ("/other".to_string(), 5)].into(),
            topology: None,
        };
        let interned: HashMap<&str, u32> = [("/web", 0), ("/db", 1)].into();
        let mut s = AgentState::new(&agent, &interned);
        assert_eq!((s.cpus, s.mem, s.disk, s.gpus), (3.0, 3072.0, 1000.0, 1));
        assert_eq!(s.ports.count(), 4);
        assert_eq!((s.group_count(0), s.group_count(1)), (2, 0));
        assert_eq!(
            s.group_counts().len(),
            1,
            "groups outside the batch are not kept"
        );
        let shape = Shape {
            cpus: 1.5,
            mem: 1000.0,
            disk: 10.0,
            gpus: 1,
            ports: 2,
            numa: gantry_gpu::NumaPolicy::None,
            pus: 2,
            profile: None,
        };
        assert_eq!(s.commit(&shape, 1), Some(vec![31001, 31002]));
        assert_eq!((s.cpus, s.mem, s.disk, s.gpus), (1.5, 2072.0, 990.0, 0));
        assert_eq!(s.group_count(1), 1);
        let greedy = Shape { ports: 3, ..shape };
        assert_eq!(s.commit(&greedy, 1), None);
        assert_eq!(s.cpus, 1.5, "a refused commit changes nothing");
    }
}
