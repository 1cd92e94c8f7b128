//! Scheduled jobs' slots: which are due now by the job's schedule, progress and missed-run policy
//! (the `jobs` crate decides; this queues the runs), and when to look again.

use super::pass::{enqueue, Pass};
use super::run::Trigger;
use super::state::BatchState;
use chrono::{DateTime, Utc};
use gantry_jobs::due;

/// Queues the runs that are due at `now_dt` and returns the earliest time a slot comes due.
pub fn queue_due(
    b: &mut BatchState,
    pass: &mut Pass,
    now: f64,
    now_dt: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut next: Option<DateTime<Utc>> = None;
    let names: Vec<String> = b
        .jobs
        .iter()
        .filter(|(_, j)| !j.def.disabled && j.schedule.is_some() && j.progress.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        let Some(j) = b.jobs.get_mut(&name) else {
            continue;
        };
        if let Some(t) = j.next_due.filter(|t| *t > now_dt) {
            next = Some(next.map_or(t, |n| n.min(t)));
            continue;
        }
        let (Some(schedule), Some(progress)) = (&j.schedule, j.progress) else {
            continue;
        };
        let d = due(schedule, &j.def.missed_run_policy(), &progress, now_dt);
        j.next_due = Some(d.next_wakeup.unwrap_or(DateTime::<Utc>::MAX_UTC));
        if let Some(w) = d.next_wakeup {
            next = Some(next.map_or(w, |n| n.min(w)));
        }
        if d.progress == progress && d.runs.is_empty() {
            continue;
        }
        if d.skipped > 0 {
            tracing::info!(job = %name, skipped = d.skipped, "slots passed over by the missed-run policy");
        }
        j.progress = Some(d.progress);
        if !d.runs.is_empty() {
            j.launched_once = true;
        }
        pass.jobs.insert(name.clone());
        for slot in d.runs {
            tracing::info!(job = %name, due = %slot, "slot due: queueing a run");
            enqueue(
                b,
                pass,
                &name,
                Trigger::Schedule,
                slot.timestamp_millis(),
                None,
                now,
            );
        }
    }
    next
}
