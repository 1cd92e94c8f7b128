//! The in-memory cluster state the core guards: agents and tasks (each tagged with its owner), the
//! tasks that ended and wait for their owner to read them, and counters. No controller's types:
//! each controller keeps its own state beside this one. Pure queries live here.

use crate::alloc::{AgentSnapshot, ClusterSnapshot, NodeTopology, TopologyUse};
use crate::events::{emit, Publisher};
use crate::store::records::{AgentLifecycle, AgentRecord, TaskOwner, TaskRecord};
use crate::store::Write;
use gantry_proto::{AgentId, MasterMessage, Resources, TaskId, TaskState};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The meta key under which an owner's last failed task is stored (Marathon keeps
/// `lastTaskFailure` across restarts).
pub fn last_failure_key(owner: &TaskOwner) -> String {
    format!("last_failure:{}", owner.key())
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
    /// Non-terminal tasks (terminal ones move to `completed`): read through
    /// [`ClusterState::tasks`], written through [`ClusterState::put_task`], so that `by_app`
    /// always agrees.
    tasks: BTreeMap<TaskId, TaskRecord>,
    /// The ids in `tasks` of each app's tasks, so that an app's tasks are found without a scan
    /// of every task (`GET /v2/apps?embed=apps.tasks` asks for each app's).
    by_app: HashMap<String, BTreeSet<TaskId>>,
    pub agents: BTreeMap<AgentId, AgentEntry>,
    pub completed: VecDeque<TaskRecord>,
    /// Tasks that ended and whose owner has not read the end yet (see [`ClusterState::take_ended`]).
    /// A job run's entry is also kept in the store until its owner releases it.
    pub ended: Vec<TaskRecord>,
    pub counters: Counters,
    /// The latest usage of each running task, from the agents' heartbeats (not stored).
    pub usage: HashMap<TaskId, gantry_proto::TaskUsage>,
    /// Where an app task's changes are published as Marathon events (none while loading).
    publisher: Option<Arc<Publisher>>,
    /// Resources held out of the pool, by hold id: an external framework's outstanding offers.
    /// The allocator's snapshot counts them as used, so nothing offered is placed twice.
    pub held: HashMap<String, (AgentId, Resources)>,
    /// Where the new statuses of external frameworks' tasks go (the frameworks module turns them
    /// into UPDATE events); none while loading.
    framework_updates: Option<mpsc::UnboundedSender<TaskRecord>>,
}

impl ClusterState {
    /// The live (non-terminal) tasks.
    pub fn tasks(&self) -> &BTreeMap<TaskId, TaskRecord> {
        &self.tasks
    }

    /// From now on, task changes are published as Marathon events through `publisher`.
    pub fn set_publisher(&mut self, publisher: Arc<Publisher>) {
        self.publisher = Some(publisher);
    }

    /// From now on, every new status of an external framework's task is sent to `tx`.
    pub fn set_framework_updates(&mut self, tx: mpsc::UnboundedSender<TaskRecord>) {
        self.framework_updates = Some(tx);
    }

    /// The hostname of the agent `t` is on (empty when the agent is unknown).
    pub fn hostname(&self, t: &TaskRecord) -> String {
        self.agents
            .get(&t.info.agent_id)
            .map(|a| a.record.info.hostname.clone())
            .unwrap_or_default()
    }

    /// Publishes the events of the task `rec` replacing what the table holds (if anything).
    /// Callers change memory after the change was handed to the store, so the events follow it.
    fn publish_change(&self, rec: &TaskRecord) {
        if let (Some(tx), TaskOwner::Framework { .. }) = (&self.framework_updates, &rec.owner) {
            let old = self
                .tasks
                .get(&rec.info.task_id)
                .and_then(|t| t.status.as_ref());
            if rec.status.is_some() && rec.status.as_ref() != old {
                let _ = tx.send(rec.clone());
            }
        }
        let Some(publisher) = &self.publisher else {
            return;
        };
        let host = self
            .agents
            .get(&rec.info.agent_id)
            .map_or("", |a| a.record.info.hostname.as_str());
        for event in emit::task_changed(self.tasks.get(&rec.info.task_id), rec, host) {
            publisher.publish(event);
        }
    }

    /// Adds a live task, or replaces the record of one (a task never changes owner).
    pub fn put_task(&mut self, rec: TaskRecord) {
        self.publish_change(&rec);
        if let Some(app) = rec.app_id() {
            self.by_app
                .entry(app.to_owned())
                .or_default()
                .insert(rec.info.task_id.clone());
        }
        self.tasks.insert(rec.info.task_id.clone(), rec);
    }

    fn remove_task(&mut self, id: &TaskId) {
        let Some(rec) = self.tasks.remove(id) else {
            return;
        };
        if let Some(app) = rec.app_id() {
            if let Some(ids) = self.by_app.get_mut(app) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_app.remove(app);
                }
            }
        }
    }

    /// The store write that records a task's end: owners that keep ends (job runs) keep the
    /// terminal record until they release it; other tasks are deleted.
    pub fn end_write(rec: &TaskRecord) -> Write {
        if rec.owner.keeps_end() {
            Write::PutTask(Box::new(rec.clone()))
        } else {
            Write::DeleteTask(rec.info.task_id.0.clone())
        }
    }

    /// A task ended (its end is stored): it leaves the live tasks, is remembered among the
    /// completed ones, and waits in `ended` for its owner.
    pub fn task_ended(&mut self, rec: TaskRecord) {
        self.publish_change(&rec);
        self.remove_task(&rec.info.task_id);
        self.ended.push(rec.clone());
        self.push_completed(rec);
    }

    /// Removes and returns the ended tasks whose owner `mine` accepts, oldest first.
    pub fn take_ended(&mut self, mine: impl Fn(&TaskOwner) -> bool) -> Vec<TaskRecord> {
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ended)
            .into_iter()
            .partition(|t| mine(&t.owner));
        self.ended = rest;
        taken
    }

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

    /// The allocator's view: agents that accept tasks are reachable; used resources (held ones
    /// included) and per-app counts from the task table; GPUs, pinned PUs and bound memory from
    /// the tasks' placements.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let mut used = self.used_by_agent();
        for (agent, r) in self.held.values() {
            let u = used.entry(agent.clone()).or_default();
            *u = u.plus(r);
        }
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
                .entry(t.owner.key())
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

    /// The live tasks of one app.
    pub fn app_tasks<'a>(&'a self, app_id: &'a str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.by_app
            .get(app_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, app: Option<&str>) -> TaskRecord {
        let owner = match app {
            Some(a) => TaskOwner::App {
                id: a.into(),
                version: "v".into(),
            },
            None => TaskOwner::JobRun {
                job: "j".into(),
                run: 1,
            },
        };
        TaskRecord {
            info: gantry_proto::TaskInfo {
                task_id: id.into(),
                ..Default::default()
            },
            owner,
            state: TaskState::TaskRunning,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        }
    }

    fn ids(st: &ClusterState, app: &str) -> Vec<String> {
        st.app_tasks(app)
            .map(|t| t.info.task_id.0.clone())
            .collect()
    }

    #[test]
    fn an_apps_tasks_are_found_by_owner_whatever_their_ids() {
        let mut st = ClusterState::default();
        st.put_task(task("x1", Some("/a")));
        st.put_task(task("a.2", Some("/a")));
        st.put_task(task("a.3", Some("/a/b")));
        st.put_task(task("run", None));
        st.put_task(task("x1", Some("/a"))); // an update of the same task
        assert_eq!(ids(&st, "/a"), ["a.2", "x1"]);
        assert_eq!(ids(&st, "/a/b"), ["a.3"]);
        assert_eq!(st.app_counts("/a"), (0, 2));
        st.task_ended(task("x1", Some("/a")));
        assert_eq!(ids(&st, "/a"), ["a.2"]);
        st.task_ended(task("a.2", Some("/a")));
        assert!(ids(&st, "/a").is_empty());
        assert!(!st.by_app.contains_key("/a"), "no empty entry is kept");
        assert_eq!(st.tasks().len(), 2);
    }
}
