//! Placement: a pure function of (cluster snapshot, pending tasks, seed) that returns a plan.
//! No I/O, no clock; the caller re-checks the plan against current state before applying it.
//!
//! The engine follows Nomad's scheduler: agents are visited in a seed-shuffled ring, only feasible
//! ones (cpus, mem, disk, gpus, free host ports; reachable) are scored, and only a bounded number of
//! them per task ([`candidate_limit`]); the score is a best-fit bin-packing score averaged with a
//! penalty for tasks of the same group already on the agent, so an app's instances spread while
//! different apps pack. Tasks that fit nowhere get a sentence saying why ([`Unplaced::reason`]).
//! [`check`] replays a plan onto a newer snapshot and names the placements that no longer fit.
//!
//! GPUs and NUMA (docs/gpu-placement.md): agents that reported a topology carry it
//! ([`NodeTopology`]) with what running tasks hold ([`TopologyUse`]). A task asking for GPUs or
//! a NUMA policy gets, on the chosen agent, its GPU ids (closest set, `gantry_gpu::select_gpus`),
//! whole cores and a memory node on the GPUs' NUMA node ([`Placement::numa`]). CPU-only tasks
//! without a policy take the plain path, and avoid agents with GPUs ([`GpuAgentRule`]).
//!
//! Gangs (docs/gang.md): [`place_gangs`] places the ranks of each gang (a multi-node job) all
//! together against one snapshot, or none of them.

mod agent_state;
mod check;
mod cpu_bits;
mod domain_vec;
mod feasibility;
mod gang;
mod gpu_room;
mod node_order;
mod numa_fit;
mod placer;
mod ports;
mod reasons;
mod restricted;
mod rng;
mod scoring;
mod shape;
pub mod sim;
mod topology;

pub use check::{check, Conflict, ConflictCause};
pub use feasibility::ResourceKind;
pub use gang::{place_gangs, GangDemand, GangOutcome};
pub use gantry_gpu::NumaPolicy;
pub use placer::{candidate_limit, MAX_SKIP};
pub use restricted::place_restricted;
pub use topology::{DomainShape, NodeTopology, TopologyUse, MAX_GPUS_PER_AGENT};

use gantry_proto::{AgentId, NumaPlacement, Resources, TaskId};
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
    /// The agent's GPUs and NUMA domains and what tasks hold of them; `None` when it reported
    /// none (GPU tasks are then placed there by count only, and never with `require`).
    pub topology: Option<TopologyUse>,
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
    /// NUMA policy: `None` for unbound tasks; apps asking for GPUs default to `Prefer`.
    pub numa: NumaPolicy,
    /// MIG profile (`gpuProfile`, e.g. `1g.10gb`): every GPU of the task is a MIG device of this
    /// profile. `None`: whole GPUs (never a MIG device, nor a GPU with MIG enabled).
    pub gpu_profile: Option<std::sync::Arc<str>>,
}

/// One task put on one agent, with the host ports chosen for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub ports: Vec<u16>,
    /// GPUs, PUs and memory node chosen on the agent; `None` when the task is not bound.
    pub numa: Option<NumaPlacement>,
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

/// Whether tasks that ask for no GPU may run on agents that offer GPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuAgentRule {
    /// Among the agents scored for a CPU-only task, one without GPUs wins over any with GPUs;
    /// an agent with GPUs is taken only when no agent without GPUs was among them.
    #[default]
    Avoid,
    /// CPU-only tasks never run on agents with GPUs.
    Never,
    /// Agents with GPUs are ordinary agents for CPU-only tasks.
    Allow,
}

impl GpuAgentRule {
    /// Parses the master flag's value (`avoid`, `never`, `allow`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "avoid" => Some(Self::Avoid),
            "never" => Some(Self::Never),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// Placement settings that come from the master's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaceOptions {
    pub cpu_tasks_on_gpu_agents: GpuAgentRule,
}

/// Places `demands` on the agents of `snapshot` with the default [`PlaceOptions`]. Deterministic
/// for a given `seed`.
///
/// Every demand ends up in exactly one of `placements` (in demand order, with its host ports: the
/// lowest free ones of the agent) or `unplaced` (with a reason). Nothing is placed on an unreachable
/// agent, and no agent is given more cpus, mem, disk, gpus or ports than it has free. A task id that
/// appears twice is placed once; demands with negative or non-finite amounts are refused.
///
/// A task with GPUs or a NUMA policy is never given a GPU that is unhealthy or held by another
/// task, nor a PU another bound task holds; with `require` its GPUs, PUs and memory node are all
/// on one NUMA node, or it is not placed and the reason says so.
pub fn place(snapshot: &ClusterSnapshot, demands: &[TaskDemand], seed: u64) -> Plan {
    placer::place(snapshot, demands, seed, PlaceOptions::default())
}

/// [`place`] with explicit options.
pub fn place_with(
    snapshot: &ClusterSnapshot,
    demands: &[TaskDemand],
    seed: u64,
    options: PlaceOptions,
) -> Plan {
    placer::place(snapshot, demands, seed, options)
}
