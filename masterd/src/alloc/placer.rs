//! The placement run: agents visited in a seed-shuffled ring, a bounded number of feasible
//! candidates scored per task (Nomad's limit iterator), free resources kept incrementally; GPUs,
//! cores and memory node chosen on the winning agent for tasks that bind to a NUMA node.

use super::agent_state::AgentState;
use super::feasibility::fits;
use super::gpu_room::GpuRoom;
use super::node_order::NodeOrder;
use super::numa_fit::{choose, SelectionMemo};
use super::reasons::tally;
use super::scoring::score;
use super::shape::{FailedShapes, Shape, ShapeKey};
use super::{ClusterSnapshot, GpuAgentRule, PlaceOptions, Placement, Plan, TaskDemand, Unplaced};
use gantry_proto::{AgentId, NumaPlacement};
use std::collections::{HashMap, HashSet};

/// How many feasible agents whose score is below zero (their group crowds them) may be passed over
/// without counting towards the limit, as in Nomad's `LimitIterator`.
pub const MAX_SKIP: usize = 3;

/// How many feasible agents are scored per task among `agents` reachable ones: `max(2, ceil(log2 n))`.
pub fn candidate_limit(agents: usize) -> usize {
    let ceil_log2 = if agents <= 1 {
        0
    } else {
        (usize::BITS - (agents - 1).leading_zeros()) as usize
    };
    ceil_log2.max(2)
}

/// Why a demand was not placed, before the sentence for "fits nowhere" is written.
enum Refusal {
    Because(String),
    FitsNowhere(Shape),
}

/// One run's working state (the gang module places whole gangs with it, undoing a gang that does
/// not fit whole).
pub(super) struct Placer<'a> {
    snapshot: &'a ClusterSnapshot,
    pub(super) states: Vec<AgentState>,
    /// For each entry of `states`, its index in `snapshot.agents`.
    agent_index: Vec<usize>,
    pub(super) unreachable: usize,
    order: NodeOrder,
    limit: usize,
    /// Tasks of each interned group wanted in all: in the batch plus already running.
    desired: Vec<u32>,
    pub(super) failed: FailedShapes,
    pub(super) rule: GpuAgentRule,
    memo: SelectionMemo,
    /// For each entry of `states`, an upper bound on the GPUs it can still give one task, read
    /// before the agent's state by tasks with GPUs.
    pub(super) room: Vec<GpuRoom>,
}

/// Where one task goes: the agent, its host ports, and what it is bound to there.
pub(super) type Chosen<'a> = (&'a AgentId, Vec<u16>, Option<NumaPlacement>);

/// Places `demands` on `snapshot`; see [`super::place`].
pub(crate) fn place(
    snapshot: &ClusterSnapshot,
    demands: &[TaskDemand],
    seed: u64,
    options: PlaceOptions,
) -> Plan {
    let mut interned: HashMap<&str, u32> = HashMap::new();
    let mut desired: Vec<u32> = Vec::new();
    let mut group_of: Vec<u32> = Vec::with_capacity(demands.len());
    for d in demands {
        let next = desired.len() as u32;
        let g = *interned.entry(d.group.as_str()).or_insert(next);
        if g == next {
            desired.push(0);
        }
        desired[g as usize] += 1;
        group_of.push(g);
    }

    let mut placer = Placer::new(snapshot, &interned, desired, seed);
    placer.rule = options.cpu_tasks_on_gpu_agents;
    let mut plan = Plan {
        placements: Vec::with_capacity(demands.len()),
        unplaced: Vec::new(),
    };
    let mut refused: Vec<(usize, Refusal)> = Vec::new();
    let mut task_ids: HashSet<&str> = HashSet::with_capacity(demands.len());
    for (k, d) in demands.iter().enumerate() {
        if !task_ids.insert(d.task_id.as_str()) {
            let why = "the same task id appears earlier in this batch".to_owned();
            refused.push((k, Refusal::Because(why)));
            continue;
        }
        let shape = match Shape::of(d) {
            Ok(s) => s,
            Err(why) => {
                refused.push((k, Refusal::Because(why)));
                continue;
            }
        };
        match placer.place_one(&shape, group_of[k]) {
            Some((agent_id, ports, numa)) => plan.placements.push(Placement {
                task_id: d.task_id.clone(),
                agent_id: agent_id.clone(),
                ports,
                numa,
            }),
            None => refused.push((k, Refusal::FitsNowhere(shape))),
        }
    }

    // Sentences are written against the state after the run: what is free now is what users see,
    // and a shape that fit nowhere during the run fits nowhere after it.
    let mut sentences: HashMap<ShapeKey, String> = HashMap::new();
    for (k, refusal) in refused {
        let reason = match refusal {
            Refusal::Because(why) => why,
            Refusal::FitsNowhere(shape) => sentences
                .entry(shape.key())
                .or_insert_with(|| {
                    tally(&placer.states, placer.unreachable, &shape, placer.rule).sentence(&shape)
                })
                .clone(),
        };
        plan.unplaced.push(Unplaced {
            task_id: demands[k].task_id.clone(),
            reason,
        });
    }
    plan
}

impl<'a> Placer<'a> {
    pub(super) fn new(
        snapshot: &'a ClusterSnapshot,
        interned: &HashMap<&str, u32>,
        mut desired: Vec<u32>,
        seed: u64,
    ) -> Self {
        let mut ids: HashSet<&str> = HashSet::with_capacity(snapshot.agents.len());
        let mut states = Vec::with_capacity(snapshot.agents.len());
        let mut agent_index = Vec::with_capacity(snapshot.agents.len());
        let mut unreachable = 0;
        for (i, agent) in snapshot.agents.iter().enumerate() {
            // An agent listed twice is counted once, so its resources are never handed out twice.
            if !ids.insert(agent.id.as_str()) {
                continue;
            }
            if !agent.reachable {
                unreachable += 1;
                continue;
            }
            let state = AgentState::new(agent, interned);
            for &(g, n) in state.group_counts() {
                desired[g as usize] = desired[g as usize].saturating_add(n);
            }
            states.push(state);
            agent_index.push(i);
        }
        let order = NodeOrder::new((0..states.len() as u32).collect(), seed);
        let room = states.iter().map(GpuRoom::of).collect();
        Self {
            room,
            snapshot,
            limit: candidate_limit(states.len()),
            states,
            agent_index,
            unreachable,
            order,
            desired,
            failed: FailedShapes::default(),
            rule: GpuAgentRule::default(),
            memo: SelectionMemo::default(),
        }
    }

    /// Picks an agent for one task and books its resources there.
    fn place_one(&mut self, shape: &Shape, group: u32) -> Option<Chosen<'a>> {
        if self.failed.known_to_fail(shape) {
            return None;
        }
        let Some(i) = self.select(shape, group) else {
            self.failed.remember(*shape);
            return None;
        };
        self.book(i, shape, group)
    }

    /// Books a task of `shape` on the agent at `i` (chosen by [`Self::select`]).
    pub(super) fn book(&mut self, i: usize, shape: &Shape, group: u32) -> Option<Chosen<'a>> {
        let state = &mut self.states[i];
        let ports = state.commit(shape, group)?;
        let numa = match (&mut state.topo, shape.binds()) {
            (Some(t), true) => choose(t, shape, &mut self.memo),
            _ => None,
        };
        if numa.is_some() || shape.gpus > 0 {
            self.room[i] = GpuRoom::of(state);
        }
        let agent = &self.snapshot.agents[self.agent_index[i]];
        Some((&agent.id, ports, numa))
    }

    /// The best of up to `limit` feasible agents, walking the ring from where the last task stopped.
    /// A CPU-only task prefers (`Avoid`) or only takes (`Never`) agents without GPUs.
    pub(super) fn select(&mut self, shape: &Shape, group: u32) -> Option<usize> {
        let desired = self.desired[group as usize];
        let (mut counted, mut skipped) = (0, 0);
        let mut best: Option<(usize, f64)> = None;
        let mut best_gpu_agent: Option<(usize, f64)> = None;
        let cpu_only = shape.gpus == 0;
        for _ in 0..self.order.len() {
            if counted >= self.limit {
                break;
            }
            let i = self.order.next_index()?;
            if !cpu_only && !self.room[i].admits(shape) {
                continue;
            }
            let agent = &self.states[i];
            let kept_off = cpu_only && agent.has_gpus && self.rule != GpuAgentRule::Allow;
            if (kept_off && self.rule == GpuAgentRule::Never) || !fits(agent, shape) {
                continue;
            }
            let s = score(agent, shape, agent.group_count(group), desired);
            if s < 0.0 && skipped < MAX_SKIP {
                skipped += 1;
            } else {
                counted += 1;
            }
            let slot = if kept_off {
                &mut best_gpu_agent
            } else {
                &mut best
            };
            if slot.is_none_or(|(_, b)| s > b) {
                *slot = Some((i, s));
            }
        }
        best.or(best_gpu_agent).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_the_ceiling_of_log2_and_at_least_two() {
        assert_eq!(candidate_limit(0), 2);
        assert_eq!(candidate_limit(1), 2);
        assert_eq!(candidate_limit(2), 2);
        assert_eq!(candidate_limit(5), 3);
        assert_eq!(candidate_limit(8), 3);
        assert_eq!(candidate_limit(9), 4);
        assert_eq!(candidate_limit(10_000), 14);
    }
}
