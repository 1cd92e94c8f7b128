//! Ended tasks of job runs, as the core hands them over: each attempt's end is recorded, a retry
//! queued when the job's policy says so, and the run's verdict given once all its attempts (and
//! array elements, gang ranks) ended. The task's terminal record is released in the same transaction, so a
//! crash in between replays the end, never loses it.

use super::pass::{close_if_done, to_history, Pass};
use super::run::{RunRecord, RunState};
use super::state::BatchState;
use crate::cluster::ClusterState;
use crate::store::records::{TaskOwner, TaskRecord};
use crate::store::Write;
use chrono::{DateTime, Utc};
use gantry_jobs::{RetryDecision, TaskEnd};
use gantry_proto::TaskState;

/// The retry module's view of a terminal task state.
pub fn task_end(state: TaskState) -> TaskEnd {
    match state {
        TaskState::TaskFinished => TaskEnd::Finished,
        TaskState::TaskKilled => TaskEnd::Killed,
        TaskState::TaskError => TaskEnd::Error,
        TaskState::TaskDropped => TaskEnd::Dropped,
        TaskState::TaskGone | TaskState::TaskGoneByOperator => TaskEnd::Gone,
        TaskState::TaskLost | TaskState::TaskUnknown => TaskEnd::Lost,
        _ => TaskEnd::Failed,
    }
}

/// Records the ends in `ended` (terminal task records of job runs).
pub fn record_ends(
    b: &mut BatchState,
    pass: &mut Pass,
    ended: Vec<TaskRecord>,
    now: f64,
    now_dt: DateTime<Utc>,
) {
    for t in ended {
        pass.writes
            .push(Write::DeleteTask(t.info.task_id.0.clone()));
        let TaskOwner::JobRun { run, .. } = &t.owner else {
            continue;
        };
        // Already recorded (a replay after a crash between the two writes cannot happen, as
        // they are one transaction; an unknown run is a task of a deleted job).
        let Some(mut r) = b.active.remove(run) else {
            continue;
        };
        let status = t.status.as_ref();
        r.started_at = t.started_at;
        r.ended_at = Some(now);
        r.task_state = Some(t.state.name().to_owned());
        r.exit_code = status.and_then(|s| s.exit_code);
        r.message = status.and_then(|s| s.message.clone());
        let mut end = task_end(t.state);
        if r.timed_out {
            let limit = b.jobs.get(&r.job).map_or(0, |j| j.def.max_completion_time);
            r.message = Some(format!("killed after its maxCompletionTime of {limit} s"));
            end = TaskEnd::Failed;
        }
        end_attempt(b, pass, r, end, now, now_dt);
    }
}

/// A launched run whose task the core no longer has (it was never stored, or was forgotten):
/// its attempt counts as lost, and is retried by policy.
pub fn sweep_lost(
    b: &mut BatchState,
    cluster: &ClusterState,
    pass: &mut Pass,
    now: f64,
    now_dt: DateTime<Utc>,
) {
    let lost: Vec<u64> = b
        .active
        .values()
        .filter(|r| r.state == RunState::Launched)
        .filter(|r| {
            r.task_id.as_ref().is_none_or(|t| {
                !cluster
                    .tasks()
                    .contains_key(&gantry_proto::TaskId(t.clone()))
            })
        })
        .map(|r| r.id)
        .collect();
    for id in lost {
        if let Some(mut r) = b.active.remove(&id) {
            tracing::warn!(job = %r.job, run = id, "a launched run's task is unknown: counted as lost");
            r.ended_at = Some(now);
            r.task_state = Some(TaskState::TaskLost.name().to_owned());
            r.message = Some("the master has no record of the run's task".into());
            end_attempt(b, pass, r, TaskEnd::Lost, now, now_dt);
        }
    }
}

/// Kills the runs that passed their job's `maxCompletionTime` (counted from TASK_RUNNING, or
/// from the launch). Their end is a failure, retried by policy, as Mesos's
/// `max_completion_time`.
pub fn enforce_deadlines(b: &mut BatchState, cluster: &ClusterState, pass: &mut Pass, now: f64) {
    for r in b.active.values_mut() {
        if r.state != RunState::Launched || r.timed_out {
            continue;
        }
        let limit = b.jobs.get(&r.job).map_or(0, |j| j.def.max_completion_time);
        let Some(t) = r
            .task_id
            .as_ref()
            .and_then(|t| cluster.tasks().get(&gantry_proto::TaskId(t.clone())))
        else {
            continue;
        };
        let since = t.started_at.or(r.launched_at).unwrap_or(now);
        if limit == 0 || now - since < limit as f64 || t.kill_requested {
            continue;
        }
        tracing::warn!(job = %r.job, run = r.id, limit, "run passed its maxCompletionTime: killing it");
        r.timed_out = true;
        pass.put_run(r);
        pass.kills.push(TaskRecord {
            kill_requested: true,
            ..t.clone()
        });
    }
}

/// Ends one attempt: history, a retry or the run's verdict (a gang's rank: see `super::gang`).
fn end_attempt(
    b: &mut BatchState,
    pass: &mut Pass,
    mut r: RunRecord,
    end: TaskEnd,
    now: f64,
    now_dt: DateTime<Utc>,
) {
    let decision = match b.jobs.get(&r.job) {
        Some(j) => j
            .def
            .retry_policy()
            .decide(j.def.soft_error, r.attempt, end, now_dt),
        None => RetryDecision::Cancelled,
    };
    if r.gang_rank.is_some() {
        super::gang::end_rank(b, pass, r, decision, now, now_dt);
        return;
    }
    r.state = match decision {
        RetryDecision::Succeeded => RunState::Succeeded,
        RetryDecision::Cancelled => RunState::Killed,
        RetryDecision::Retry { .. } | RetryDecision::GaveUp { .. } => RunState::Failed,
    };
    r.waiting = None;
    tracing::info!(job = %r.job, run = r.id, attempt = r.attempt, state = r.state.name(), "job run ended");
    let (job, occurrence) = (r.job.clone(), r.occurrence);
    if let RetryDecision::Retry { attempt, at } = decision {
        let id = b.take_run_id();
        let mut next = RunRecord::queued(id, &job, r.trigger, r.due_ms, now);
        next.occurrence = occurrence;
        next.attempt = attempt;
        next.not_before = at.timestamp_millis() as f64 / 1000.0;
        next.arguments = r.arguments.clone();
        next.array_index = r.array_index;
        pass.put_run(&next);
        pass.counters = true;
        b.active.insert(id, next);
    }
    to_history(b, pass, r);
    close_if_done(b, pass, &job, occurrence, now_dt, now);
}
