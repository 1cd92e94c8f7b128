//! The batch controller's loop. Each pass, under the master's lock: record the ends of job runs'
//! tasks (retries, verdicts, children), queue the schedules' due slots, launch what can start;
//! then store all of it in one transaction, and only then send the launches. A pass runs when
//! something changed (a task ended, an agent came, a job was submitted), when the next slot or
//! retry is due, and at least once a second. The pass's writes are queued under the lock and
//! awaited after it (see `AsyncStore::queue`), so submits and status updates arriving meanwhile
//! share its commit.

use super::ends::{enforce_deadlines, record_ends, sweep_lost};
use super::launch::launch_queued;
use super::pass::Pass;
use super::schedule::queue_due;
use crate::cluster::{Core, CoreError, Outbox};
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
    record_ends(b, &mut pass, ended, now, now_dt);
    sweep_lost(b, st, &mut pass, now, now_dt);
    enforce_deadlines(b, st, &mut pass, now);
    super::gang::kill_ended(b, st, &mut pass);
    let next_slot = queue_due(b, &mut pass, now, now_dt);
    let more = launch_queued(b, st, &mut pass, core.cfg.place_options, now);
    let (writes, launches, kills) = pass.finish(b);
    // Memory changes now; the launches and kills go out once the pass is durable (the store's
    // writer sends them right after the commit), and the lock is not held across the fsync.
    let mut out = Outbox::default();
    for rec in launches {
        let agent = rec.info.agent_id.clone();
        tracing::info!(task = %rec.info.task_id, agent = %agent, "launching a job run");
        let msg = MasterMessage::LaunchTask {
            task: Box::new(rec.info.clone()),
        };
        out.push(st, &agent, msg);
        st.put_task(rec);
        st.counters.tasks_launched += 1;
    }
    super::actions::queue_kills(st, &mut out, kills);
    let durable = core.store().queue(writes, out.after_commit());
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
    durable.wait().await?;
    Ok(if more {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(wait)
    })
}
