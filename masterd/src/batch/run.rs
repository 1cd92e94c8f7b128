//! One attempt of a job run as the batch controller records it: why it runs (its slot, a manual
//! run, its parents), where it ran, how it ended. Each is stored before its task is launched and
//! again when the task ends, so a restarted master knows every run it started.

use serde::{Deserialize, Serialize};

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A slot of the job's schedule.
    Schedule,
    /// `PUT /v1/scheduler/job/{name}` (or `gantry jobs run`).
    Manual,
    /// Its parents finished as its dependencies ask.
    Dependency,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting for its time (`not_before`), for a place, or for the job's earlier run to end.
    Queued,
    /// Its task is stored and sent to an agent.
    Launched,
    /// Ended with exit code 0.
    Succeeded,
    /// Ended in failure (another attempt may follow as a new run record).
    Failed,
    /// Killed on request: not retried, not counted.
    Killed,
    /// Dropped without running (its job was disabled or deleted first).
    Discarded,
}

impl RunState {
    /// Still going: queued, launched or running.
    pub fn is_active(self) -> bool {
        matches!(self, RunState::Queued | RunState::Launched)
    }

    /// The name shown in history and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Launched => "launched",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Killed => "killed",
            RunState::Discarded => "discarded",
        }
    }
}

/// One attempt of one run of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Unique and increasing across the master's life (kept in the store).
    pub id: u64,
    pub job: String,
    /// The run this attempt belongs to: the id of the first attempt of its first element. Every
    /// retry, and every element of an array run, shares it; the run's verdict is given once all
    /// of them ended.
    pub occurrence: u64,
    pub trigger: Trigger,
    /// The run's due time, in milliseconds since the epoch: the slot for a scheduled run, the
    /// request or trigger time otherwise. Every attempt of a run keeps it (it is in the task id).
    pub due_ms: i64,
    /// 0 for the first launch, then 1, 2, ... for retries.
    pub attempt: u32,
    /// Launch no earlier than this (seconds since the epoch): a retry's delay.
    #[serde(default)]
    pub not_before: f64,
    /// `PUT ...?arguments=` of a manual run.
    #[serde(default)]
    pub arguments: Option<String>,
    /// The index of an array job's element.
    #[serde(default)]
    pub array_index: Option<u32>,
    pub state: RunState,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// Seconds since the epoch.
    pub queued_at: f64,
    #[serde(default)]
    pub launched_at: Option<f64>,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub ended_at: Option<f64>,
    /// The Mesos state the task ended in (`TASK_FINISHED`, ...).
    #[serde(default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub message: Option<String>,
    /// Killed for running past the job's `maxCompletionTime`: ends as a failure.
    #[serde(default)]
    pub timed_out: bool,
    /// Why a queued run is not launched yet (no agent fits, an earlier run still runs, ...).
    #[serde(default)]
    pub waiting: Option<String>,
    /// The rank of a gang job's attempt (0 to `gangSize` - 1); the ranks of one attempt share
    /// `occurrence` and `attempt`, and are launched, ended and retried together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_rank: Option<u32>,
    /// Set on the other ranks once one rank of their gang attempt ended other than in success:
    /// they are being killed, and end as that rank did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_ended: Option<GangEnded>,
}

/// Which rank ended a gang attempt, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GangEnded {
    pub rank: u32,
    /// `Failed` or `Killed`.
    pub state: RunState,
}

impl RunRecord {
    /// A new queued attempt.
    pub fn queued(id: u64, job: &str, trigger: Trigger, due_ms: i64, now: f64) -> RunRecord {
        RunRecord {
            id,
            job: job.to_owned(),
            occurrence: id,
            trigger,
            due_ms,
            attempt: 0,
            not_before: 0.0,
            arguments: None,
            array_index: None,
            state: RunState::Queued,
            task_id: None,
            agent_id: None,
            host: None,
            queued_at: now,
            launched_at: None,
            started_at: None,
            ended_at: None,
            task_state: None,
            exit_code: None,
            message: None,
            timed_out: false,
            waiting: None,
            gang_rank: None,
            gang_ended: None,
        }
    }

    /// How long it ran, once it ended.
    pub fn duration_secs(&self) -> Option<f64> {
        Some(self.ended_at? - self.started_at.or(self.launched_at)?)
    }
}
