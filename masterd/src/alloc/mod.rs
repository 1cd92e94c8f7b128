//! Placement: a pure function of (cluster snapshot, pending tasks, seed) that returns a plan.
//! No I/O, no clock; the caller re-checks the plan against current state before applying it.

use gantry_proto::{AgentId, PortRanges, Resources, TaskId};
use std::collections::{BTreeMap, HashMap};

/// The cluster as the allocator sees it.
#[derive(Clone, Debug, Default)]
pub struct ClusterSnapshot {
    pub agents: Vec<AgentSnapshot>,
}

/// One agent: what it has, what is used, and how many tasks of each group it already runs.
#[derive(Clone, Debug)]
pub struct AgentSnapshot {
    pub id: AgentId,
    /// Only reachable agents receive tasks.
    pub reachable: bool,
    pub total: Resources,
    /// Resources held by non-terminal tasks (ports included).
    pub used: Resources,
    pub attributes: BTreeMap<String, String>,
    /// Non-terminal tasks per group (the Marathon app id), used to spread a group's instances.
    pub group_counts: HashMap<String, u32>,
}

/// A task waiting for a place.
#[derive(Clone, Debug)]
pub struct TaskDemand {
    pub task_id: TaskId,
    /// Tasks of one group (the app id) are spread over agents.
    pub group: String,
    /// cpus, mem, disk, gpus; `ports` is ignored here (see `port_count`).
    pub resources: Resources,
    /// How many host ports to pick from the agent's free ports.
    pub port_count: usize,
}

/// One task put on one agent, with the host ports chosen for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub ports: Vec<u16>,
}

/// Why a task found no place: a human sentence for users, e.g. the Marathon queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Unplaced {
    pub task_id: TaskId,
    pub reason: String,
}

/// The allocator's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub placements: Vec<Placement>,
    pub unplaced: Vec<Unplaced>,
}

/// Places `demands` on the agents of `snapshot`. Deterministic for a given `seed`.
pub fn place(snapshot: &ClusterSnapshot, demands: &[TaskDemand], _seed: u64) -> Plan {
    let mut free: Vec<Resources> = snapshot
        .agents
        .iter()
        .map(|a| a.total.minus(&a.used))
        .collect();
    let mut counts: Vec<HashMap<String, u32>> = snapshot
        .agents
        .iter()
        .map(|a| a.group_counts.clone())
        .collect();
    let mut plan = Plan::default();
    for d in demands {
        let mut best: Option<(usize, u32)> = None;
        for (i, a) in snapshot.agents.iter().enumerate() {
            if !a.reachable
                || !d.resources.fits_in(&free[i])
                || free[i].ports.len() < d.port_count as u64
            {
                continue;
            }
            let c = counts[i].get(&d.group).copied().unwrap_or(0);
            if best.is_none_or(|(_, bc)| c < bc) {
                best = Some((i, c));
            }
        }
        match best {
            Some((i, _)) => {
                let ports = free[i].ports.lowest(d.port_count).unwrap_or_default();
                let mut used = Resources {
                    ports: PortRanges::from_ports(&ports),
                    ..d.resources.clone()
                };
                used.ports = PortRanges::from_ports(&ports);
                free[i] = free[i].minus(&used);
                *counts[i].entry(d.group.clone()).or_default() += 1;
                plan.placements.push(Placement {
                    task_id: d.task_id.clone(),
                    agent_id: snapshot.agents[i].id.clone(),
                    ports,
                });
            }
            None => plan.unplaced.push(Unplaced {
                task_id: d.task_id.clone(),
                reason: "no reachable agent has enough free resources".into(),
            }),
        }
    }
    plan
}

/// A placement that no longer fits the current cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub task_id: TaskId,
    pub reason: String,
}

/// Re-checks `plan` against a newer `snapshot`: placements on agents that are gone or unreachable,
/// or whose resources or ports are now taken, are returned as conflicts.
pub fn check(snapshot: &ClusterSnapshot, plan: &Plan, demands: &[TaskDemand]) -> Vec<Conflict> {
    let mut free: HashMap<&AgentId, Resources> = snapshot
        .agents
        .iter()
        .filter(|a| a.reachable)
        .map(|a| (&a.id, a.total.minus(&a.used)))
        .collect();
    let by_id: HashMap<&TaskId, &TaskDemand> = demands.iter().map(|d| (&d.task_id, d)).collect();
    let mut out = Vec::new();
    for p in &plan.placements {
        let need = Resources {
            ports: PortRanges::from_ports(&p.ports),
            ..by_id
                .get(&p.task_id)
                .map(|d| d.resources.clone())
                .unwrap_or_default()
        };
        match free.get_mut(&p.agent_id) {
            Some(f) if need.fits_in(f) => *f = f.minus(&need),
            _ => out.push(Conflict {
                task_id: p.task_id.clone(),
                reason: "the agent no longer has room for it".into(),
            }),
        }
    }
    out
}
