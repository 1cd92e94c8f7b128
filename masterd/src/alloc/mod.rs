//! Placement: a pure function of (cluster snapshot, pending tasks, seed) that returns a plan.
//! No I/O, no clock; the caller re-checks the plan against current state before applying it.
//!
//! The engine follows Nomad's scheduler: agents are visited in a seed-shuffled ring, only feasible
//! ones (cpus, mem, disk, gpus, free host ports; reachable) are scored, and only a bounded number of
//! them per task ([`candidate_limit`]); the score is a best-fit bin-packing score averaged with a
//! penalty for tasks of the same group already on the agent, so an app's instances spread while
//! different apps pack. Tasks that fit nowhere get a sentence saying why ([`Unplaced::reason`]).
//! [`check`] replays a plan onto a newer snapshot and names the placements that no longer fit.

mod agent_state;
mod check;
mod feasibility;
mod node_order;
mod placer;
mod ports;
mod reasons;
mod rng;
mod scoring;
mod shape;
pub mod sim;

pub use check::{check, Conflict, ConflictCause};
pub use feasibility::ResourceKind;
pub use placer::{candidate_limit, MAX_SKIP};

use gantry_proto::{AgentId, Resources, TaskId};
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
///
/// Every demand ends up in exactly one of `placements` (in demand order, with its host ports: the
/// lowest free ones of the agent) or `unplaced` (with a reason). Nothing is placed on an unreachable
/// agent, and no agent is given more cpus, mem, disk, gpus or ports than it has free. A task id that
/// appears twice is placed once; demands with negative or non-finite amounts are refused.
pub fn place(snapshot: &ClusterSnapshot, demands: &[TaskDemand], seed: u64) -> Plan {
    placer::place(snapshot, demands, seed)
}
