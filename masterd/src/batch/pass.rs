//! One batch controller pass's writes, gathered while the pass changes the batch state in memory
//! under the master's lock, and applied to the store in one transaction before any task is sent.
//! Also the small state changes every part of a pass shares: queueing a run, ending one, and
//! giving a run's verdict (stats, dependency progress, children to trigger).

use super::run::{RunRecord, RunState, Trigger};
use super::state::{BatchState, DAG_SEQ_KEY, NEXT_RUN_KEY};
use crate::store::records::TaskRecord;
use crate::store::Write;
use chrono::{DateTime, Utc};
use gantry_jobs::{ready_children, ReadinessRule, RunOutcome};
use std::collections::BTreeSet;

/// The readiness rule: Gantry waits for parents of one wave (Chronos #543 fixed).
pub const RULE: ReadinessRule = ReadinessRule {
    await_pending_parents: true,
};

/// What a pass will write, and what it will do once written.
#[derive(Default)]
pub struct Pass {
    pub writes: Vec<Write>,
    /// Jobs whose stored record must be rewritten (definition, progress, dependency progress).
    pub jobs: BTreeSet<String>,
    /// Task records to create (launches), with the run each belongs to.
    pub launches: Vec<TaskRecord>,
    /// Tasks to kill once the pass is stored (runs past their `maxCompletionTime`).
    pub kills: Vec<TaskRecord>,
    /// The run id or dependency counter moved.
    pub counters: bool,
}

impl Pass {
    /// Stores `run` as it is now.
    pub fn put_run(&mut self, run: &RunRecord) {
        self.writes.push(Write::PutRun {
            id: run.id,
            job: run.job.clone(),
            run: serde_json::to_value(run).unwrap_or_default(),
        });
    }

    /// The pass's writes, completed with the jobs and counters it changed.
    pub fn finish(mut self, b: &BatchState) -> (Vec<Write>, Vec<TaskRecord>, Vec<TaskRecord>) {
        for name in &self.jobs {
            if let Some(j) = b.jobs.get(name) {
                self.writes.push(Write::PutJob {
                    name: name.clone(),
                    job: j.to_store(b.dag.jobs.get(name)),
                });
            }
        }
        if self.counters || !self.jobs.is_empty() {
            self.writes.push(Write::PutMeta {
                key: NEXT_RUN_KEY.into(),
                value: b.next_run_id.to_string(),
            });
            self.writes.push(Write::PutMeta {
                key: DAG_SEQ_KEY.into(),
                value: b.dag.seq.to_string(),
            });
        }
        for t in self.launches.iter().chain(&self.kills) {
            self.writes.push(Write::PutTask(Box::new(t.clone())));
        }
        (self.writes, self.launches, self.kills)
    }
}

/// Queues a run of `job` (one attempt per array element) due at `due_ms`, and records in the
/// dependency progress that the job started (so its parents' successes are consumed once).
pub fn enqueue(
    b: &mut BatchState,
    pass: &mut Pass,
    job: &str,
    trigger: Trigger,
    due_ms: i64,
    arguments: Option<String>,
    now: f64,
) -> u64 {
    let def = b.jobs.get(job).map(|j| &j.def);
    // (array index, gang rank) of each attempt: one per element, one per rank, or one.
    let elements: Vec<(Option<u32>, Option<u32>)> =
        match (def.and_then(|d| d.array.as_ref()), def.and_then(|d| d.gang)) {
            (Some(a), _) => a.indices.iter().map(|i| (Some(*i), None)).collect(),
            (None, Some(g)) => (0..g.size).map(|k| (None, Some(k))).collect(),
            (None, None) => vec![(None, None)],
        };
    let mut occurrence = 0;
    for (idx, rank) in elements {
        let id = b.take_run_id();
        if occurrence == 0 {
            occurrence = id;
        }
        let mut r = RunRecord::queued(id, job, trigger, due_ms, now);
        r.occurrence = occurrence;
        r.arguments = arguments.clone();
        r.array_index = idx;
        r.gang_rank = rank;
        pass.put_run(&r);
        b.active.insert(id, r);
    }
    b.dag.record_started(job);
    pass.jobs.insert(job.to_owned());
    pass.counters = true;
    occurrence
}

/// Moves an ended attempt into its job's history (bounded; dropped runs are deleted).
pub fn to_history(b: &mut BatchState, pass: &mut Pass, run: RunRecord) {
    pass.put_run(&run);
    let def = b.jobs.get(&run.job).map(|j| &j.def);
    let elements = def
        .and_then(|d| d.array.as_ref().map(|a| a.size()))
        .or_else(|| def.and_then(|d| d.gang).map(|g| g.size as usize));
    let keep = elements.map_or(b.retention, |n| b.retention.max(n + 10));
    let h = b.history.entry(run.job.clone()).or_default();
    h.push_back(run);
    while h.len() > keep {
        if let Some(old) = h.pop_front() {
            pass.writes.push(Write::DeleteRun(old.id));
        }
    }
}

/// The verdict of a run whose attempts have all ended, or `None` while some still run (or the
/// run was cancelled). An array run succeeds when every element's last attempt succeeded, a gang
/// run when every rank's last attempt did.
pub fn verdict(b: &BatchState, job: &str, occurrence: u64) -> Option<RunOutcome> {
    if b.active.has_occurrence(occurrence) {
        return None;
    }
    type Element = (Option<u32>, Option<u32>);
    let mut last: std::collections::BTreeMap<Element, &RunRecord> = Default::default();
    for r in b.history.get(job).into_iter().flatten() {
        if r.occurrence == occurrence {
            last.insert((r.array_index, r.gang_rank), r);
        }
    }
    if last.is_empty() {
        return None;
    }
    let states: Vec<RunState> = last.values().map(|r| r.state).collect();
    if states.iter().all(|s| *s == RunState::Succeeded) {
        Some(RunOutcome::Succeeded)
    } else if states.contains(&RunState::Failed) {
        Some(RunOutcome::Failed)
    } else {
        None // killed or discarded: neither
    }
}

/// Records a run's verdict: the job's counters (Chronos's successCount, errorCount, lastSuccess,
/// lastError, errorsSinceLastSuccess), its dependency progress, and the children it makes ready,
/// which are queued at once.
pub fn record_verdict(
    b: &mut BatchState,
    pass: &mut Pass,
    job: &str,
    outcome: Option<RunOutcome>,
    marked: bool,
    at: DateTime<Utc>,
    now: f64,
) {
    let Some(entry) = b.jobs.get_mut(job) else {
        return;
    };
    let stamp = super::job::chronos_time(at);
    match outcome {
        Some(RunOutcome::Succeeded) => {
            entry.def.success_count += 1;
            entry.def.errors_since_last_success = 0;
            entry.def.last_success = stamp;
            if marked {
                b.dag.record_marked_success(job);
            } else {
                b.dag.record_finished(job, RunOutcome::Succeeded);
            }
        }
        Some(RunOutcome::Failed) => {
            entry.def.error_count += 1;
            entry.def.errors_since_last_success += 1;
            entry.def.last_error = stamp;
            b.dag.record_finished(job, RunOutcome::Failed);
        }
        None => {
            // Cancelled: the run no longer counts as running for its dependents.
            if let Some(r) = b.dag.jobs.get_mut(job) {
                r.running = r.running.saturating_sub(1);
            }
        }
    }
    pass.jobs.insert(job.to_owned());
    pass.counters = true;
    if outcome.is_none() {
        return;
    }
    let at_ms = at.timestamp_millis();
    for child in ready_children(&b.graph, &b.dag, job, RULE) {
        let enabled = b.jobs.get(&child).is_some_and(|c| !c.def.disabled);
        if enabled {
            tracing::info!(parent = job, job = %child, "dependencies met: queueing a run");
            enqueue(b, pass, &child, Trigger::Dependency, at_ms, None, now);
        }
    }
}

/// After an attempt of `occurrence` left the active runs: when none of the run's attempts is
/// active any more, records its verdict (success, failure, or cancelled: killed or discarded).
pub fn close_if_done(
    b: &mut BatchState,
    pass: &mut Pass,
    job: &str,
    occurrence: u64,
    at: DateTime<Utc>,
    now: f64,
) {
    if b.active.has_occurrence(occurrence) {
        return;
    }
    let outcome = verdict(b, job, occurrence);
    record_verdict(b, pass, job, outcome, false, at, now);
}
