//! Re-checking a plan against a newer snapshot before it is applied: placements that no longer fit
//! (agent gone or unreachable, resources or ports taken meanwhile, a chosen GPU taken or unhealthy,
//! a chosen PU pinned by another task) are reported so the caller drops them.

use super::feasibility::ResourceKind;
use super::reasons::amount;
use super::shape::{Shape, EPSILON};
use super::{AgentSnapshot, ClusterSnapshot, Plan, TaskDemand, Unplaced};
use gantry_proto::{AgentId, NumaPlacement, PortRanges, TaskId};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// A placement of a plan that must not be applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// Position of the placement in `plan.placements`.
    pub index: usize,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub cause: ConflictCause,
}

/// Why a placement no longer holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ConflictCause {
    /// The agent is not in the snapshot any more.
    AgentGone,
    AgentUnreachable,
    /// The task is not among the demands given to `check`.
    UnknownTask,
    /// An earlier placement of the plan already puts this task somewhere.
    PlacedTwice,
    /// The demand asks for impossible amounts (negative, not a number).
    InvalidDemand(String),
    /// Not enough of a resource is left for this task.
    TooFew {
        resource: ResourceKind,
        free: f64,
        asked: f64,
    },
    /// A chosen host port is in use or not offered by the agent.
    PortTaken(u16),
    /// The placement chose a different number of ports than the demand asks.
    PortCount {
        chosen: usize,
        asked: usize,
    },
    /// A chosen GPU is held by another task.
    GpuTaken(u32),
    /// A chosen GPU is unhealthy or no longer reported by the agent.
    GpuUnavailable(u32),
    /// A chosen PU is pinned by another task.
    CpuTaken(u32),
}

impl fmt::Display for ConflictCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictCause::AgentGone => f.write_str("the agent is no longer registered"),
            ConflictCause::AgentUnreachable => f.write_str("the agent is unreachable"),
            ConflictCause::UnknownTask => f.write_str("the task is no longer waiting"),
            ConflictCause::PlacedTwice => f.write_str("the task is placed more than once"),
            ConflictCause::InvalidDemand(why) => f.write_str(why),
            ConflictCause::TooFew {
                resource,
                free,
                asked,
            } => write!(
                f,
                "too little {resource} left on the agent ({} free, {} asked)",
                amount(*free),
                amount(*asked)
            ),
            ConflictCause::PortTaken(p) => write!(f, "host port {p} is no longer free"),
            ConflictCause::PortCount { chosen, asked } => {
                write!(f, "{chosen} host ports chosen, {asked} asked")
            }
            ConflictCause::GpuTaken(i) => write!(f, "GPU {i} is held by another task"),
            ConflictCause::GpuUnavailable(i) => {
                write!(f, "GPU {i} is unhealthy or no longer reported")
            }
            ConflictCause::CpuTaken(c) => write!(f, "CPU {c} is pinned by another task"),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} on agent {}: {}",
            self.task_id, self.agent_id, self.cause
        )
    }
}

/// What is left on one agent of the newer snapshot while the plan is replayed onto it.
struct Left {
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: u32,
    ports: PortRanges,
    /// Healthy GPUs the agent reports (NVML indexes).
    healthy_gpus: HashSet<u32>,
    /// GPUs held by tasks, and PUs pinned by tasks.
    taken_gpus: HashSet<u32>,
    pinned: HashSet<u32>,
    /// The agent's GPUs, for the MIG conflicts of what the plan takes.
    topology: Option<std::sync::Arc<super::NodeTopology>>,
}

impl Left {
    fn new(agent: &AgentSnapshot) -> Self {
        let (t, u) = (&agent.total, &agent.used);
        let topo = agent.topology.as_ref();
        Left {
            cpus: t.cpus - u.cpus,
            mem: t.mem - u.mem,
            disk: t.disk - u.disk,
            gpus: t.gpus.saturating_sub(u.gpus),
            ports: t.ports.difference(&u.ports),
            healthy_gpus: topo.map_or_else(HashSet::new, |x| {
                x.topology
                    .gpus
                    .iter()
                    .filter(|g| g.health.is_healthy())
                    .map(|g| g.index)
                    .collect()
            }),
            // A held MIG device holds its parent and a held parent its MIG devices.
            taken_gpus: topo.map_or_else(HashSet::new, |x| {
                x.taken_gpus
                    .iter()
                    .flat_map(|&i| {
                        let mut v = x.topology.conflicting_indexes(i);
                        v.push(i);
                        v
                    })
                    .collect()
            }),
            topology: topo.map(|x| x.topology.clone()),
            pinned: topo.map_or_else(HashSet::new, |x| x.pinned_cpus.iter().copied().collect()),
        }
    }

    /// The first GPU or PU of `numa` that is not free.
    fn refuse_binding(&self, numa: &NumaPlacement) -> Option<ConflictCause> {
        for g in &numa.gpus {
            if !self.healthy_gpus.contains(&g.index) {
                return Some(ConflictCause::GpuUnavailable(g.index));
            }
            if self.taken_gpus.contains(&g.index) {
                return Some(ConflictCause::GpuTaken(g.index));
            }
        }
        numa.cpus
            .iter()
            .find(|c| self.pinned.contains(c))
            .map(|&c| ConflictCause::CpuTaken(c))
    }

    /// The first reason `shape` with `ports` does not fit, or `None` when it does.
    fn refuse(&self, shape: &Shape, ports: &[u16]) -> Option<ConflictCause> {
        let scalars = [
            (ResourceKind::Cpus, self.cpus, shape.cpus, EPSILON),
            (ResourceKind::Mem, self.mem, shape.mem, EPSILON),
            (ResourceKind::Disk, self.disk, shape.disk, EPSILON),
            (
                ResourceKind::Gpus,
                f64::from(self.gpus),
                f64::from(shape.gpus),
                0.0,
            ),
        ];
        for (resource, free, asked, slack) in scalars {
            if asked > free + slack {
                return Some(ConflictCause::TooFew {
                    resource,
                    free,
                    asked,
                });
            }
        }
        if ports.len() != shape.ports {
            return Some(ConflictCause::PortCount {
                chosen: ports.len(),
                asked: shape.ports,
            });
        }
        for (k, &p) in ports.iter().enumerate() {
            if !self.ports.contains(p) || ports[..k].contains(&p) {
                return Some(ConflictCause::PortTaken(p));
            }
        }
        None
    }

    fn take(&mut self, shape: &Shape, ports: &[u16]) {
        self.cpus -= shape.cpus;
        self.mem -= shape.mem;
        self.disk -= shape.disk;
        self.gpus = self.gpus.saturating_sub(shape.gpus);
        if !ports.is_empty() {
            self.ports = self.ports.difference(&PortRanges::from_ports(ports));
        }
    }
}

/// Replays `plan` onto `snapshot` in order and reports every placement that does not fit it.
///
/// Placements not reported fit together: applying all of them overcommits nothing on `snapshot`.
/// A reported placement takes nothing, so later placements may use what it would have.
/// `demands` gives each task's resources (at least the placed ones).
pub fn check(snapshot: &ClusterSnapshot, plan: &Plan, demands: &[TaskDemand]) -> Vec<Conflict> {
    let mut agents: HashMap<&str, &AgentSnapshot> = HashMap::with_capacity(snapshot.agents.len());
    for a in &snapshot.agents {
        agents.entry(a.id.as_str()).or_insert(a);
    }
    let mut by_task: HashMap<&str, &TaskDemand> = HashMap::with_capacity(demands.len());
    for d in demands {
        by_task.entry(d.task_id.as_str()).or_insert(d);
    }
    let mut left: HashMap<&str, Left> = HashMap::new();
    let mut placed: HashSet<&str> = HashSet::with_capacity(plan.placements.len());
    let mut conflicts = Vec::new();
    for (index, p) in plan.placements.iter().enumerate() {
        let cause = (|| {
            if !placed.insert(p.task_id.as_str()) {
                return Some(ConflictCause::PlacedTwice);
            }
            let Some(demand) = by_task.get(p.task_id.as_str()) else {
                return Some(ConflictCause::UnknownTask);
            };
            let shape = match Shape::of(demand) {
                Ok(s) => s,
                Err(why) => return Some(ConflictCause::InvalidDemand(why)),
            };
            let Some(agent) = agents.get(p.agent_id.as_str()) else {
                return Some(ConflictCause::AgentGone);
            };
            if !agent.reachable {
                return Some(ConflictCause::AgentUnreachable);
            }
            let l = left
                .entry(agent.id.as_str())
                .or_insert_with(|| Left::new(agent));
            let refusal = l
                .refuse(&shape, &p.ports)
                .or_else(|| p.numa.as_ref().and_then(|n| l.refuse_binding(n)));
            if refusal.is_none() {
                l.take(&shape, &p.ports);
                if let Some(n) = &p.numa {
                    for g in &n.gpus {
                        l.taken_gpus.insert(g.index);
                        if let Some(t) = &l.topology {
                            l.taken_gpus.extend(t.conflicting_indexes(g.index));
                        }
                    }
                    l.pinned.extend(n.cpus.iter().copied());
                }
            }
            refusal
        })();
        if let Some(cause) = cause {
            conflicts.push(Conflict {
                index,
                task_id: p.task_id.clone(),
                agent_id: p.agent_id.clone(),
                cause,
            });
        }
    }
    conflicts
}

impl Plan {
    /// Removes the placements named by `conflicts` (from [`check`] on this plan) and lists their
    /// tasks as unplaced with the conflict as the reason, so the caller can queue them again.
    /// A task placed twice keeps its first placement and is not listed.
    pub fn drop_conflicts(&mut self, conflicts: &[Conflict]) {
        let drop: HashSet<usize> = conflicts.iter().map(|c| c.index).collect();
        for c in conflicts {
            if c.cause != ConflictCause::PlacedTwice {
                self.unplaced.push(Unplaced {
                    task_id: c.task_id.clone(),
                    reason: format!("its place on agent {} was lost: {}", c.agent_id, c.cause),
                });
            }
        }
        let mut k = 0;
        self.placements.retain(|_| {
            k += 1;
            !drop.contains(&(k - 1))
        });
    }
}
