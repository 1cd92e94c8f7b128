//! The records the master keeps durably about tasks and agents, and the audit log of mutations.

use gantry_proto::{AgentId, AgentInfo, TaskInfo, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

/// What the master knows about one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub info: TaskInfo,
    /// The Marathon app the task belongs to.
    pub app_id: String,
    /// The app version the task runs.
    pub app_version: String,
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
}

impl TaskRecord {
    pub fn agent_id(&self) -> &AgentId {
        &self.info.agent_id
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
