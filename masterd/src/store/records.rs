//! The records the master keeps durably about tasks and agents, and the audit log of mutations.

use gantry_proto::{AgentId, AgentInfo, TaskInfo, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

/// Who a task belongs to. The core tracks tasks for their owners and never reads an owner's
/// definitions: each controller finds its own tasks by this tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskOwner {
    /// An instance of a service (the services controller): the app and the version it runs.
    App { id: String, version: String },
    /// One run of a batch job (the batch controller): the job and the run's id.
    JobRun { job: String, run: u64 },
    /// A task an external framework launched through `/api/v1/scheduler`: the framework's id.
    Framework { id: String },
}

impl TaskOwner {
    /// The app's id or the job's name.
    pub fn name(&self) -> &str {
        match self {
            TaskOwner::App { id, .. } => id,
            TaskOwner::JobRun { job, .. } => job,
            TaskOwner::Framework { id } => id,
        }
    }

    /// The app id, for an app's task.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            TaskOwner::App { id, .. } => Some(id),
            TaskOwner::JobRun { .. } | TaskOwner::Framework { .. } => None,
        }
    }

    /// The framework the task belongs to, as `/master/state` names it: the built-in ones by
    /// name, an external one by its id.
    pub fn framework(&self) -> &str {
        match self {
            TaskOwner::App { .. } => "marathon",
            TaskOwner::JobRun { .. } => "chronos",
            TaskOwner::Framework { id } => id,
        }
    }

    /// The external framework's id, for a framework's task.
    pub fn framework_id(&self) -> Option<&str> {
        match self {
            TaskOwner::Framework { id } => Some(id),
            _ => None,
        }
    }

    /// A key unique per app or job (apps keep their bare id, as stored before owners existed).
    pub fn key(&self) -> String {
        match self {
            TaskOwner::App { id, .. } => id.clone(),
            TaskOwner::JobRun { job, .. } => format!("job:{job}"),
            TaskOwner::Framework { id } => format!("framework:{id}"),
        }
    }

    /// Does the owner read a task's end from the store? A job run's end is kept (as a terminal
    /// record) until the batch controller has recorded it, so that no run's outcome is lost in a
    /// crash; an app's ended task is forgotten at once (its app just starts another).
    pub fn keeps_end(&self) -> bool {
        matches!(self, TaskOwner::JobRun { .. })
    }
}

/// What the master knows about one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredTask")]
pub struct TaskRecord {
    pub info: TaskInfo,
    /// Who the task belongs to.
    pub owner: TaskOwner,
    pub state: TaskState,
    /// The latest status received (or synthesized by the master).
    pub status: Option<TaskStatus>,
    /// The highest status-update sequence number applied; duplicates at or below it are ignored.
    pub last_seq: u64,
    /// When the master staged the task (seconds since the epoch).
    pub staged_at: f64,
    /// When the task was first reported running.
    pub started_at: Option<f64>,
    /// When the task became unreachable, while it is.
    #[serde(default)]
    pub unreachable_since: Option<f64>,
    /// Replaced and forgotten by its app (unreachableStrategy.expungeAfterSeconds passed): if it
    /// comes back it is killed.
    #[serde(default)]
    pub expunged: bool,
    /// A kill was asked for.
    #[serde(default)]
    pub kill_requested: bool,
    /// The results of the task's health checks as the agent last reported them (in the order of
    /// `info.health_checks`); empty before the first result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<gantry_proto::HealthResult>,
}

impl TaskRecord {
    pub fn agent_id(&self) -> &AgentId {
        &self.info.agent_id
    }

    /// The app the task is an instance of, for a service task.
    pub fn app_id(&self) -> Option<&str> {
        self.owner.app_id()
    }

    /// When one of the task's health checks has failed often enough to get the task killed: the
    /// cause of its last failure.
    pub fn health_kill_cause(&self) -> Option<&str> {
        gantry_proto::health::kill_due(&self.info.health_checks, &self.health)
            .map(|r| r.last_failure_cause.as_deref().unwrap_or("unknown"))
    }

    /// A task killed because of its health checks (Marathon records it as the app's
    /// `lastTaskFailure`, as it does failed tasks).
    pub fn killed_unhealthy(&self) -> bool {
        self.state == TaskState::TaskKilled && self.health_kill_cause().is_some()
    }
}

/// A task record as stored: records written before owners existed carry `app_id` and
/// `app_version` instead of `owner`.
#[derive(Deserialize)]
struct StoredTask {
    info: TaskInfo,
    #[serde(default)]
    owner: Option<TaskOwner>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
    state: TaskState,
    status: Option<TaskStatus>,
    last_seq: u64,
    staged_at: f64,
    started_at: Option<f64>,
    #[serde(default)]
    unreachable_since: Option<f64>,
    #[serde(default)]
    expunged: bool,
    #[serde(default)]
    kill_requested: bool,
    #[serde(default)]
    health: Vec<gantry_proto::HealthResult>,
}

impl From<StoredTask> for TaskRecord {
    fn from(s: StoredTask) -> Self {
        let owner = s.owner.unwrap_or_else(|| TaskOwner::App {
            id: s.app_id.unwrap_or_default(),
            version: s.app_version.unwrap_or_default(),
        });
        TaskRecord {
            info: s.info,
            owner,
            state: s.state,
            status: s.status,
            last_seq: s.last_seq,
            staged_at: s.staged_at,
            started_at: s.started_at,
            unreachable_since: s.unreachable_since,
            expunged: s.expunged,
            kill_requested: s.kill_requested,
            health: s.health,
        }
    }
}

/// The lifecycle of an agent as the master tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentLifecycle {
    /// Registered and sending heartbeats.
    Active,
    /// Missed too many heartbeats; its tasks are TASK_UNREACHABLE.
    Unreachable,
    /// Unreachable for longer than the gone timeout; its tasks are TASK_GONE.
    Gone,
}

/// What the master knows about one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub info: AgentInfo,
    pub lifecycle: AgentLifecycle,
    pub registered_at: f64,
    pub reregistered_at: Option<f64>,
    /// When it became unreachable, while it is.
    pub unreachable_since: Option<f64>,
}

/// One entry of the audit log: a request that tried to change something (any method but GET,
/// HEAD and OPTIONS), whether it was allowed or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Assigned by the store, increasing; 0 before it is stored.
    #[serde(default)]
    pub seq: u64,
    /// Seconds since the epoch.
    pub at: f64,
    /// The principal's name; `-` when the request carried no valid credentials.
    pub principal: String,
    pub method: String,
    /// Path and query, as requested.
    pub path: String,
    /// The status of the answer.
    pub status: u16,
    /// The client's address.
    pub remote: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stored_before_owners_existed_read_as_app_tasks() {
        let old = serde_json::json!({
            "info": serde_json::to_value(TaskInfo::default()).unwrap(),
            "app_id": "/web", "app_version": "v1", "state": "TASK_RUNNING", "status": null,
            "last_seq": 3, "staged_at": 1.0, "started_at": null,
        });
        let rec: TaskRecord = serde_json::from_value(old).unwrap();
        assert_eq!(
            rec.owner,
            TaskOwner::App {
                id: "/web".into(),
                version: "v1".into()
            }
        );
        let again: TaskRecord =
            serde_json::from_value(serde_json::to_value(&rec).unwrap()).unwrap();
        assert_eq!(again, rec, "written with an owner, read back the same");
        let run = TaskRecord {
            owner: TaskOwner::JobRun {
                job: "etl".into(),
                run: 7,
            },
            ..rec
        };
        let back: TaskRecord = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
        assert_eq!(back.owner, run.owner);
        assert!(back.owner.keeps_end() && back.app_id().is_none());
    }
}
