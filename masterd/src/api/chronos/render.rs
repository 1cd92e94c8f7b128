//! What the Chronos API shows of a job besides its definition: the schedule as Chronos rewrites it
//! after the first launch, the last and current state (`/jobs/summary`, `graph/csv`), and a run
//! of its history (Gantry's extension).

use crate::batch::run::{RunRecord, RunState};
use crate::batch::state::{BatchState, JobEntry};
use crate::cluster::ClusterState;
use crate::store::records::TaskOwner;
use chrono::DateTime;
use gantry_jobs::{CurrentState, LastState, Schedule};
use serde_json::{json, Value};

/// The schedule string to show: as submitted until the first launch, then Chronos's
/// `R[n]/<next slot>/<period>` (the remaining count comes from the progress, never the text).
pub fn displayed_schedule(job: &JobEntry) -> Option<String> {
    let (Some(Schedule::Iso8601(s)), Some(p)) = (&job.schedule, &job.progress) else {
        return None;
    };
    if !job.launched_once {
        return None;
    }
    let from = p.last_handled?;
    let next = job.schedule.as_ref()?.next_after(from)?;
    Some(s.chronos_display(p.runs_remaining, next))
}

fn time(text: &str) -> Option<DateTime<chrono::Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Fresh, success or failure, from the job's lastSuccess and lastError.
pub fn last_state(job: &JobEntry) -> LastState {
    LastState::from_times(time(&job.def.last_success), time(&job.def.last_error))
}

/// Idle, queued, or `<n> running`.
pub fn current_state(b: &BatchState, name: &str) -> CurrentState {
    let mut queued = false;
    let mut running = 0;
    for r in b.active_of(name) {
        match r.state {
            RunState::Queued => queued = true,
            RunState::Launched => running += 1,
            _ => {}
        }
    }
    if running > 0 {
        CurrentState::Running(running)
    } else if queued {
        CurrentState::Queued
    } else {
        CurrentState::Idle
    }
}

/// One run attempt as `GET /v1/scheduler/job/{name}/runs` and `gantry jobs history` show it.
pub fn run_json(r: &RunRecord, cluster: &ClusterState) -> Value {
    let iso = |s: Option<f64>| s.map(crate::api::marathon::render::iso);
    let mut state = r.state.name().to_owned();
    if r.state == RunState::Launched {
        let live = r
            .task_id
            .as_ref()
            .and_then(|t| cluster.tasks().get(&gantry_proto::TaskId(t.clone())));
        if let Some(t) = live.filter(|t| matches!(t.owner, TaskOwner::JobRun { .. })) {
            if t.state == gantry_proto::TaskState::TaskRunning {
                state = "running".into();
            }
        }
    }
    json!({
        "id": r.id,
        "job": r.job,
        "run": r.occurrence,
        "trigger": r.trigger,
        "scheduledAt": crate::api::marathon::render::iso(r.due_ms as f64 / 1000.0),
        "attempt": r.attempt,
        "arrayIndex": r.array_index,
        "gangRank": r.gang_rank,
        "arguments": r.arguments,
        "state": state,
        "taskId": r.task_id,
        "agentId": r.agent_id,
        "host": r.host,
        "queuedAt": iso(Some(r.queued_at)),
        "launchedAt": iso(r.launched_at),
        "startedAt": iso(r.started_at),
        "endedAt": iso(r.ended_at),
        "durationSeconds": r.duration_secs(),
        "taskState": r.task_state,
        "exitCode": r.exit_code,
        "message": r.message,
        "waiting": r.waiting,
    })
}
