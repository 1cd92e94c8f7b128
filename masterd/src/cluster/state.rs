//! The in-memory cluster state the core guards: apps, tasks, agents, and what the service controller
//! remembers between runs (launch delays, why an app waits). Pure queries live here.

use crate::alloc::{AgentSnapshot, ClusterSnapshot, NodeTopology, TopologyUse};
use crate::services::app_definition::AppDefinition;
use crate::store::records::{AgentLifecycle, AgentRecord, TaskRecord};
use gantry_proto::{AgentId, MasterMessage, Resources, TaskId, TaskState};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The meta key under which an app's last failed task is stored (Marathon keeps `lastTaskFailure`
/// across restarts).
pub fn last_failure_key(app_id: &str) -> String {
    format!("last_failure:{app_id}")
}

/// The range service ports are assigned from (Marathon's `local_port_min`..`local_port_max`).
pub const SERVICE_PORTS: std::ops::RangeInclusive<u32> = 10000..=20000;

/// Too few free service ports for an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "no free service ports: the app asks for {needed} (port 0) and {free} of 10000-20000 are \
     free; give fixed ports, or delete apps that hold service ports"
)]
pub struct PortsExhausted {
    pub needed: usize,
    pub free: usize,
}

/// How many ended tasks the master remembers for `/master/state` and `lastTaskFailure`.
const COMPLETED_KEPT: usize = 1000;

/// A live connection to an agent.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<MasterMessage>,
}

/// An agent as the master tracks it.
#[derive(Debug)]
pub struct AgentEntry {
    pub record: AgentRecord,
    pub conn: Option<Conn>,
    pub last_seen: Instant,
    /// Loaded from the store at start-up and not re-registered since.
    pub recovering: bool,
    /// The agent's GPUs and NUMA domains for placement, rebuilt whenever it reports them.
    pub topology: Option<Arc<NodeTopology>>,
}

impl AgentEntry {
    /// An entry for `record`, with the topology it reported.
    pub fn new(record: AgentRecord, conn: Option<Conn>, recovering: bool) -> Self {
        AgentEntry {
            topology: NodeTopology::from_info(&record.info),
            record,
            conn,
            last_seen: Instant::now(),
            recovering,
        }
    }

    /// Registered, connected and not unreachable: it may receive tasks.
    pub fn accepts_tasks(&self) -> bool {
        self.conn.is_some() && !self.recovering && self.record.lifecycle == AgentLifecycle::Active
    }
}

/// The launch delay of an app after failures (Marathon's backoff).
#[derive(Clone, Debug)]
pub struct LaunchDelay {
    pub delay_secs: f64,
    pub until: f64,
}

/// Why an app has instances that are not placed.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub since: f64,
    pub reason: String,
    pub count: usize,
}

/// Counters for `/metrics/snapshot`.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub slave_registrations: u64,
    pub slave_reregistrations: u64,
    pub slave_unreachable: u64,
    pub valid_status_updates: u64,
    pub duplicate_status_updates: u64,
    pub tasks_launched: u64,
}

/// Everything the master holds in memory.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub apps: BTreeMap<String, AppDefinition>,
    /// Non-terminal tasks (terminal ones move to `completed`).
    pub tasks: BTreeMap<TaskId, TaskRecord>,
    pub agents: BTreeMap<AgentId, AgentEntry>,
    pub completed: VecDeque<TaskRecord>,
    pub launch_delays: HashMap<String, LaunchDelay>,
    pub waiting: BTreeMap<String, Waiting>,
    pub counters: Counters,
    /// The latest usage of each running task, from the agents' heartbeats (not stored).
    pub usage: HashMap<TaskId, gantry_proto::TaskUsage>,
}

impl ClusterState {
    /// Remembers an ended task (bounded).
    pub fn push_completed(&mut self, rec: TaskRecord) {
        self.usage.remove(&rec.info.task_id);
        if self.completed.len() == COMPLETED_KEPT {
            self.completed.pop_front();
        }
        self.completed.push_back(rec);
    }

    /// Resources held by the non-terminal tasks on each agent.
    pub fn used_by_agent(&self) -> HashMap<AgentId, Resources> {
        let mut used: HashMap<AgentId, Resources> = HashMap::new();
        for t in self.tasks.values() {
            let u = used.entry(t.info.agent_id.clone()).or_default();
            *u = u.plus(&t.info.resources);
        }
        used
    }

    /// The allocator's view: agents that accept tasks are reachable; used resources and per-app
    /// counts from the task table; GPUs, pinned PUs and bound memory from the tasks' placements.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let used = self.used_by_agent();
        let mut bound: HashMap<AgentId, TopologyUse> = HashMap::new();
        for t in self.tasks.values() {
            let Some(p) = &t.info.placement else {
                continue;
            };
            let u = bound.entry(t.info.agent_id.clone()).or_default();
            u.taken_gpus.extend(p.gpus.iter().map(|g| g.index));
            u.pinned_cpus.extend(p.cpus.iter().copied());
            if let [node] = p.mems[..] {
                u.mem_bound.push((node, t.info.resources.mem));
            }
        }
        let mut groups: HashMap<AgentId, HashMap<String, u32>> = HashMap::new();
        for t in self.tasks.values() {
            *groups
                .entry(t.info.agent_id.clone())
                .or_default()
                .entry(t.app_id.clone())
                .or_default() += 1;
        }
        ClusterSnapshot {
            agents: self
                .agents
                .values()
                .map(|a| AgentSnapshot {
                    id: a.record.id.clone(),
                    reachable: a.accepts_tasks(),
                    total: a.record.info.resources.clone(),
                    used: used.get(&a.record.id).cloned().unwrap_or_default(),
                    attributes: a.record.info.attributes.clone(),
                    group_counts: groups.remove(&a.record.id).unwrap_or_default(),
                    topology: a.topology.as_ref().map(|topology| TopologyUse {
                        topology: topology.clone(),
                        ..bound.remove(&a.record.id).unwrap_or_default()
                    }),
                })
                .collect(),
        }
    }

    /// The tasks of one app.
    pub fn app_tasks<'a>(&'a self, app_id: &'a str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks.values().filter(move |t| t.app_id == app_id)
    }

    /// (staged, running) counts of an app's tasks, as Marathon reports them.
    pub fn app_counts(&self, app_id: &str) -> (usize, usize) {
        let mut staged = 0;
        let mut running = 0;
        for t in self.app_tasks(app_id) {
            match t.state {
                TaskState::TaskStaging | TaskState::TaskStarting => staged += 1,
                TaskState::TaskRunning => running += 1,
                _ => {}
            }
        }
        (staged, running)
    }

    /// Gives every port definition asking for port 0 a service port from 10000-20000 (Marathon's
    /// default `local_port_min`/`max`), unique across apps. When the range has too few free ports
    /// nothing is assigned and the error says how many were needed and free.
    pub fn assign_service_ports(&self, app: &mut AppDefinition) -> Result<(), PortsExhausted> {
        let taken: HashSet<u32> = self
            .apps
            .values()
            .filter(|a| a.id != app.id)
            .flat_map(|a| a.port_definitions.iter().map(|p| p.port))
            .chain(app.port_definitions.iter().map(|p| p.port))
            .collect();
        let needed = app.port_definitions.iter().filter(|p| p.port == 0).count();
        let free: Vec<u32> = SERVICE_PORTS
            .filter(|p| !taken.contains(p))
            .take(needed)
            .collect();
        if free.len() < needed {
            return Err(PortsExhausted {
                needed,
                free: free.len(),
            });
        }
        let mut free = free.into_iter();
        for pd in app.port_definitions.iter_mut().filter(|p| p.port == 0) {
            pd.port = free.next().unwrap_or_default();
        }
        Ok(())
    }

    /// Number of tasks in each state, for metrics.
    pub fn state_counts(&self) -> HashMap<TaskState, u64> {
        let mut out = HashMap::new();
        for t in self.tasks.values() {
            *out.entry(t.state).or_default() += 1;
        }
        for t in &self.completed {
            *out.entry(t.state).or_default() += 1;
        }
        out
    }
}
