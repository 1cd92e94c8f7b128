//! The batch controller's loop. Each pass, under the master's lock: record the ends of job runs'
//! tasks (retries, verdicts, children), queue the schedules' due slots, launch what can start;
//! then store all of it in one transaction, and only then send the launches. A pass runs when
//! something changed (a task ended, an agent came, a job was submitted), when the next slot or
//! retry is due, and at least once a second.

use super::ends::{enforce_deadlines, record_ends, sweep_lost};
use super::launch::launch_queued;
use super::pass::Pass;
use super::schedule::queue_due;
use super::state::BatchState;
use crate::cluster::{Core, CoreError};
use crate::state::MasterState;
use crate::store::records::TaskOwner;
use chrono::Utc;
use gantry_proto::MasterMessage;
use std::sync::Arc;
use std::time::Duration;

/// The longest the controller sleeps without a change.
const TICK: Duration = Duration::from_secs(1);

/// Runs the controller until the process ends.
pub async fn run(core: Arc<Core>) {
    let mut changes = core.subscribe();
    loop {
        let wait = match pass(&core).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "batch controller pass failed");
                TICK
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass. Returns how long to wait before the next one (zero: at once).
pub async fn pass(core: &Arc<Core>) -> Result<Duration, CoreError> {
    let mut guard = core.state().await;
    let MasterState {
        cluster: st,
        batch: b,
        ..
    } = &mut *guard;
    let now_dt = Utc::now();
    let now = now_dt.timestamp_millis() as f64 / 1000.0;
    let mut pass = Pass::default();
    let ended = st.take_ended(|o| matches!(o, TaskOwner::JobRun { .. }));
    let replay = ended.clone();
    record_ends(b, &mut pass, ended, now, now_dt);
    sweep_lost(b, st, &mut pass, now, now_dt);
    enforce_deadlines(b, st, &mut pass, now);
    let next_slot = queue_due(b, &mut pass, now, now_dt);
    let more = launch_queued(b, st, &mut pass, core.cfg.place_options, now);
    let (writes, launches, kills) = pass.finish(b);
    if let Err(e) = core.store().apply(writes).await {
        // Memory ran ahead of the store within this pass: put it back as stored.
        tracing::error!(error = %e, "storing a batch pass failed; reloading the batch state");
        st.ended.extend(replay);
        match core.store().load().await {
            Ok(snap) => {
                if let Ok(fresh) = BatchState::load(snap.jobs, snap.runs, &snap.meta, b.retention) {
                    *b = fresh;
                }
            }
            Err(e) => tracing::error!(error = %e, "reloading the batch state failed"),
        }
        return Err(e.into());
    }
    for rec in launches {
        let agent = rec.info.agent_id.clone();
        tracing::info!(task = %rec.info.task_id, agent = %agent, "launching a job run");
        let msg = MasterMessage::LaunchTask {
            task: Box::new(rec.info.clone()),
        };
        st.tasks.insert(rec.info.task_id.clone(), rec);
        st.counters.tasks_launched += 1;
        Core::send(st, &agent, msg);
    }
    super::actions::send_kills(st, kills);
    // When to look again: the next slot, the next retry, or the tick.
    let retry_at = b
        .active
        .values()
        .filter(|r| r.state == super::run::RunState::Queued && r.not_before > now)
        .map(|r| r.not_before)
        .fold(f64::INFINITY, f64::min);
    let mut wait = TICK.as_secs_f64();
    if let Some(t) = next_slot {
        let secs = (t - now_dt).num_milliseconds() as f64 / 1000.0;
        wait = wait.min(secs.max(0.0));
    }
    if retry_at.is_finite() {
        wait = wait.min((retry_at - now).max(0.0));
    }
    b.next_wakeup = next_slot;
    drop(guard);
    Ok(if more {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(wait)
    })
}
