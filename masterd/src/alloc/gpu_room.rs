//! A dense summary of every agent's free GPUs during a placement run, read before an agent's
//! state for tasks that ask for GPUs. Late in a run most agents of a GPU cluster can no longer
//! take a large GPU task, and the ring walk visits about twice as many agents for such a task as
//! for a CPU-only one; this array (8 bytes an agent, cache-resident) turns those visits away
//! without touching the agent's state. It is a necessary condition only: an agent it admits still
//! goes through [`super::feasibility::fits`].

use super::agent_state::AgentState;
use super::shape::Shape;
use gantry_gpu::NumaPolicy;

/// Upper bounds on the GPUs one task may still get on an agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GpuRoom {
    /// GPUs free on the agent.
    any: u32,
    /// GPUs free on its best single NUMA node (for `require`).
    one_node: u32,
    /// PUs not pinned on its best single NUMA node (for `require`; `u32::MAX` without topology).
    pus_one_node: u32,
}

impl GpuRoom {
    /// The room on `agent` now.
    pub(crate) fn of(agent: &AgentState) -> Self {
        match &agent.topo {
            Some(t) if !t.count_only() => {
                let one_node = t
                    .shape
                    .domains
                    .iter()
                    .map(|d| (t.free_gpus & d.gpu_mask).count_ones())
                    .max()
                    .unwrap_or(0);
                let any = t.free_gpus.count_ones().min(agent.gpus);
                GpuRoom {
                    any,
                    one_node: one_node.min(any),
                    pus_one_node: t.free_pus.as_slice().iter().copied().max().unwrap_or(0),
                }
            }
            // Count-only GPUs and agents without topology: only the count is known here.
            _ => GpuRoom {
                any: agent.gpus,
                one_node: agent.gpus,
                pus_one_node: u32::MAX,
            },
        }
    }

    /// False when `shape` certainly does not fit for lack of GPUs (or, with `require`, of PUs on
    /// one node); true says nothing more. Free GPUs and PUs only shrink during a run, so a room
    /// computed earlier in the run is still an upper bound.
    #[inline]
    pub(crate) fn admits(self, shape: &Shape) -> bool {
        if shape.numa == NumaPolicy::Require {
            shape.gpus <= self.one_node && shape.pus <= self.pus_one_node
        } else {
            shape.gpus <= self.any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::feasibility::fits;
    use crate::alloc::sim::dgx2_topology;
    use crate::alloc::{AgentSnapshot, TopologyUse};
    use gantry_proto::Resources;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn agent(taken: &[u32], pinned: &[u32], topology: bool, gpus: u32) -> AgentState {
        let snap = AgentSnapshot {
            id: "a".into(),
            reachable: true,
            total: Resources {
                gpus,
                ..Resources::scalars(96.0, 1_572_864.0, 1e6)
            },
            used: Resources {
                gpus: taken.len() as u32,
                ..Resources::default()
            },
            attributes: Default::default(),
            group_counts: Default::default(),
            topology: topology.then(|| TopologyUse {
                taken_gpus: taken.to_vec(),
                pinned_cpus: pinned.to_vec(),
                ..TopologyUse::idle(Arc::new(dgx2_topology()))
            }),
        };
        AgentState::new(&snap, &Default::default())
    }

    fn policy(p: u8) -> NumaPolicy {
        [NumaPolicy::None, NumaPolicy::Prefer, NumaPolicy::Require][usize::from(p % 3)]
    }

    #[test]
    fn require_counts_the_best_node_and_others_every_gpu() {
        // GPUs 0-5 of node 0 and 8-9 of node 1 taken: 2 free on node 0, 6 on node 1.
        let a = agent(&[0, 1, 2, 3, 4, 5, 8, 9], &[], true, 16);
        let room = GpuRoom::of(&a);
        assert_eq!(
            room,
            GpuRoom {
                any: 8,
                one_node: 6,
                pus_one_node: 48,
            }
        );
        let shape = |gpus, numa| Shape {
            cpus: 1.0,
            mem: 1.0,
            disk: 0.0,
            gpus,
            ports: 0,
            numa,
            pus: 1,
            profile: None,
        };
        assert!(room.admits(&shape(6, NumaPolicy::Require)));
        assert!(!room.admits(&shape(7, NumaPolicy::Require)));
        assert!(room.admits(&shape(8, NumaPolicy::Prefer)));
        assert!(!room.admits(&shape(9, NumaPolicy::None)));
        // 47 PUs pinned on node 0 and 30 on node 1: a require task of 19 PUs fits on neither.
        let node0 = (0..24).chain(48..72).take(47);
        let node1 = (24..48).chain(72..96).take(30);
        let pinned: Vec<u32> = node0.chain(node1).collect();
        let busy = GpuRoom::of(&agent(&[], &pinned, true, 16));
        let wide = Shape {
            pus: 19,
            ..shape(1, NumaPolicy::Require)
        };
        assert!(!busy.admits(&wide));
        assert!(busy.admits(&Shape { pus: 18, ..wide }));
        assert!(busy.admits(&Shape {
            numa: NumaPolicy::Prefer,
            ..wide
        }));
    }

    proptest! {
        /// The summary never turns away an agent where the task fits.
        #[test]
        fn never_refuses_an_agent_that_fits(
            taken in prop::collection::btree_set(0u32..16, 0..16),
            pinned in prop::collection::vec(0u32..96, 0..90),
            topology in any::<bool>(),
            count in 0u32..18,
            gpus in 0u32..18,
            cpus in 0.0f64..60.0,
            p in 0u8..3,
        ) {
            let taken: Vec<u32> = taken.into_iter().collect();
            let a = agent(&taken, &pinned, topology, count.max(taken.len() as u32));
            let shape = Shape {
                cpus,
                mem: 1024.0,
                disk: 0.0,
                gpus,
                ports: 0,
                numa: policy(p),
                pus: cpus.ceil() as u32,
                profile: None,
            };
            if fits(&a, &shape) {
                prop_assert!(GpuRoom::of(&a).admits(&shape), "{:?} {:?}", GpuRoom::of(&a), shape);
            }
        }
    }
}
