//! The batch controller's actions, each one typed call from the Chronos API or the CLI: submit
//! (create or replace) a job, delete it, run it now, kill its tasks, mark it successful. Each is
//! validated against the whole graph and stored before it returns; the controller does the rest.

use super::job::{JobDefinition, JobError, Trigger as JobTrigger};
use super::pass::{close_if_done, enqueue, record_verdict, to_history, Pass};
use super::run::{RunState, Trigger};
use super::state::{BatchState, JobEntry};
use crate::cluster::{Core, Outbox};
use crate::state::MasterState;
use crate::store::records::TaskRecord;
use crate::store::{StoreError, Write};
use chrono::{DateTime, Utc};
use gantry_jobs::{DagError, ScheduleProgress};
use gantry_proto::{MasterMessage, TaskId};

/// A batch action that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The job definition is refused (the field at fault and why).
    #[error(transparent)]
    Invalid(#[from] JobError),
    #[error("Job '{0}' does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A graph refusal (unknown parent, cycle) is about the job's parents.
fn dag_error(e: DagError) -> BatchError {
    BatchError::Invalid(JobError::new("parents", e.to_string()))
}

fn now_pair() -> (DateTime<Utc>, f64) {
    let dt = Utc::now();
    (dt, dt.timestamp_millis() as f64 / 1000.0)
}

/// Creates or replaces a job (Chronos: a POST with an existing name updates it). Parents must
/// exist and the graph must stay acyclic. A replaced job keeps its run history and counters as
/// given in the body (Chronos takes them from the request); its schedule starts afresh.
pub async fn submit(core: &Core, def: JobDefinition) -> Result<(), BatchError> {
    let (now_dt, now) = now_pair();
    let mut guard = core.state().await;
    let b = &mut guard.batch;
    let spec = def.job_spec();
    let graph = b.graph.with_job(spec).map_err(dag_error)?;
    let schedule = def
        .schedule(now_dt)
        .transpose()
        .map_err(|e| JobError::new("schedule", e.to_string()))?;
    // A job re-submitted with the same schedule (chronos-sync-jobs, an edit of another field)
    // keeps its place in the schedule: no slot runs twice. A new schedule starts afresh.
    let kept = b
        .jobs
        .get(&def.name)
        .filter(|old| old.def.trigger == def.trigger && old.progress.is_some());
    let (progress, launched_once) = match kept {
        Some(old) => (old.progress, old.launched_once),
        None => (
            schedule.as_ref().map(|s| ScheduleProgress::new(s, now_dt)),
            false,
        ),
    };
    let entry = JobEntry {
        def,
        schedule,
        progress,
        submitted_at: now,
        launched_once,
        next_due: None,
    };
    let name = entry.def.name.clone();
    let replaced = b.jobs.contains_key(&name);
    let mut dag = b.dag.clone();
    if !replaced || !dag.jobs.contains_key(&name) {
        dag.register(&name);
    }
    let writes = vec![
        Write::PutJob {
            name: name.clone(),
            job: entry.to_store(dag.jobs.get(&name)),
        },
        Write::PutMeta {
            key: super::state::DAG_SEQ_KEY.into(),
            value: dag.seq.to_string(),
        },
    ];
    // Queued under the lock and awaited after it: concurrent submits share one commit.
    let durable = core.store().queue(writes, None);
    b.dag = dag;
    b.graph = graph;
    b.jobs.insert(name.clone(), entry);
    drop(guard);
    core.wake();
    durable.wait().await?;
    tracing::info!(job = %name, replaced, "job stored");
    Ok(())
}

/// Kills the launched runs of `job` (their tasks get a kill; the runs end as killed) and drops
/// its queued ones. Returns the tasks killed.
fn kill_runs(
    b: &mut BatchState,
    st: &mut crate::cluster::ClusterState,
    pass: &mut Pass,
    job: &str,
    now: f64,
) -> Vec<TaskRecord> {
    let queued: Vec<u64> = b
        .active_of(job)
        .filter(|r| r.state == RunState::Queued)
        .map(|r| r.id)
        .collect();
    for id in queued {
        if let Some(mut r) = b.active.remove(&id) {
            r.state = RunState::Killed;
            r.ended_at = Some(now);
            r.message = Some("killed before it started".into());
            let occurrence = r.occurrence;
            to_history(b, pass, r);
            close_if_done(b, pass, job, occurrence, Utc::now(), now);
        }
    }
    let tasks: Vec<TaskId> = b
        .active_of(job)
        .filter_map(|r| r.task_id.clone().map(TaskId))
        .collect();
    let mut killed = Vec::new();
    for tid in tasks {
        if let Some(t) = st.tasks().get(&tid).filter(|t| !t.kill_requested) {
            let t = TaskRecord {
                kill_requested: true,
                ..t.clone()
            };
            pass.writes.push(Write::PutTask(Box::new(t.clone())));
            killed.push(t);
        }
    }
    killed
}

/// Sends the kills of `killed` (stored as kill requested) and records them in the core's tasks.
pub(super) fn send_kills(st: &mut crate::cluster::ClusterState, killed: Vec<TaskRecord>) {
    let mut out = Outbox::default();
    queue_kills(st, &mut out, killed);
    if let Some(send) = out.after_commit() {
        send();
    }
}

/// Puts the kill of each task in `out` and its record (kill requested) back in the task table.
pub(super) fn queue_kills(
    st: &mut crate::cluster::ClusterState,
    out: &mut Outbox,
    killed: Vec<TaskRecord>,
) {
    for t in killed {
        let msg = MasterMessage::KillTask {
            task_id: t.info.task_id.clone(),
            grace_period_secs: Some(t.info.kill_grace_period_secs),
        };
        out.push(st, &t.info.agent_id, msg);
        st.put_task(t);
    }
}

/// `DELETE /v1/scheduler/task/kill/{name}`: kills every run of the job. Killed runs are not
/// retried and do not count as failures.
pub async fn kill_tasks(core: &Core, job: &str) -> Result<(), BatchError> {
    let (_, now) = now_pair();
    let mut guard = core.state().await;
    let MasterState {
        cluster: st,
        batch: b,
        ..
    } = &mut *guard;
    if !b.jobs.contains_key(job) {
        return Err(BatchError::NotFound(job.to_owned()));
    }
    let mut pass = Pass::default();
    let killed = kill_runs(b, st, &mut pass, job, now);
    let (writes, _, _) = pass.finish(b);
    store_or_reload(core, b, writes).await?;
    send_kills(st, killed);
    drop(guard);
    core.wake();
    Ok(())
}

/// Applies `writes`; on failure the batch state is reloaded from the store (memory ran ahead).
async fn store_or_reload(
    core: &Core,
    b: &mut BatchState,
    writes: Vec<Write>,
) -> Result<(), BatchError> {
    if let Err(e) = core.store().apply(writes).await {
        if let Ok(snap) = core.store().load().await {
            if let Ok(fresh) = BatchState::load(snap.jobs, snap.runs, &snap.meta, b.retention) {
                *b = fresh;
            }
        }
        return Err(e.into());
    }
    Ok(())
}

/// `PUT /v1/scheduler/job/{name}[?arguments=]`: queues a run now. It does not consume a
/// repetition of the schedule (Chronos's #814 is fixed).
pub async fn run_now(core: &Core, job: &str, arguments: Option<String>) -> Result<(), BatchError> {
    let (now_dt, now) = now_pair();
    let mut guard = core.state().await;
    let b = &mut guard.batch;
    if !b.jobs.contains_key(job) {
        return Err(BatchError::NotFound(job.to_owned()));
    }
    let mut pass = Pass::default();
    let arguments = arguments.map(|a| a.replace(';', ""));
    enqueue(
        b,
        &mut pass,
        job,
        Trigger::Manual,
        now_dt.timestamp_millis(),
        arguments,
        now,
    );
    let (writes, _, _) = pass.finish(b);
    store_or_reload(core, b, writes).await?;
    drop(guard);
    core.wake();
    Ok(())
}

/// `PUT /v1/scheduler/job/success/{name}`: counts a success as if a run had finished, and
/// triggers the job's dependents. False when there is no such job.
pub async fn mark_success(core: &Core, job: &str) -> Result<bool, BatchError> {
    let (now_dt, now) = now_pair();
    let mut guard = core.state().await;
    let b = &mut guard.batch;
    if !b.jobs.contains_key(job) {
        return Ok(false);
    }
    let mut pass = Pass::default();
    record_verdict(
        b,
        &mut pass,
        job,
        Some(gantry_jobs::RunOutcome::Succeeded),
        true,
        now_dt,
        now,
    );
    let (writes, _, _) = pass.finish(b);
    store_or_reload(core, b, writes).await?;
    drop(guard);
    core.wake();
    Ok(true)
}

/// `DELETE /v1/scheduler/job/{name}`: removes the job and its history and kills its runs. Its
/// dependents are rewired as Chronos does (spec §4.6), without Chronos's resets: a child of a
/// dependent job inherits the deleted job's parents; a child left without parents becomes a
/// scheduled job with the deleted job's schedule and keeps every other field.
pub async fn delete(core: &Core, job: &str) -> Result<(), BatchError> {
    let (_, now) = now_pair();
    let mut guard = core.state().await;
    let MasterState {
        cluster: st,
        batch: b,
        ..
    } = &mut *guard;
    let Some(gone) = b.jobs.get(job).cloned() else {
        return Err(BatchError::NotFound(job.to_owned()));
    };
    let mut pass = Pass::default();
    let killed = kill_runs(b, st, &mut pass, job, now);
    pass.writes.push(Write::DeleteJob(job.to_owned()));
    let children: Vec<String> = b.graph.children(job).map(str::to_owned).collect();
    let mut rewired: Vec<JobEntry> = Vec::new();
    for c in children {
        let Some(mut child) = b.jobs.get(&c).cloned() else {
            continue;
        };
        rewire(&mut child.def, &gone.def);
        if !child.def.is_dependent() {
            child.schedule = gone.schedule.clone();
            child.progress = gone.progress;
            child.next_due = None;
        }
        pass.jobs.insert(c.clone());
        rewired.push(child);
    }
    // The graph without the job, with the rewired children.
    let mut next = b.clone_jobs_without(job);
    for c in &rewired {
        next.insert(c.def.name.clone(), c.clone());
    }
    let graph =
        gantry_jobs::JobGraph::new(next.values().map(|j| j.def.job_spec())).map_err(dag_error)?;
    let old_jobs = std::mem::replace(&mut b.jobs, next);
    let mut dag = b.dag.clone();
    dag.forget(job);
    let old_dag = std::mem::replace(&mut b.dag, dag);
    let (mut writes, _, _) = pass.finish(b);
    // The history goes with the job.
    writes.retain(|w| !matches!(w, Write::PutRun { job: j, .. } if j == job));
    if let Err(e) = core.store().apply(writes).await {
        b.jobs = old_jobs;
        b.dag = old_dag;
        return Err(e.into());
    }
    b.graph = graph;
    b.history.remove(job);
    b.active
        .retain(|_, r| r.job != job || r.state == RunState::Launched);
    send_kills(st, killed);
    drop(guard);
    core.wake();
    Ok(())
}

/// Removes `gone` from `child`'s parents, splicing in `gone`'s own parents when it had any; with
/// no parent left the child takes `gone`'s schedule.
fn rewire(child: &mut JobDefinition, gone: &JobDefinition) {
    let JobTrigger::Dependent {
        parents,
        dependencies,
        mode,
    } = &child.trigger
    else {
        return;
    };
    let mut parents: Vec<String> = parents
        .iter()
        .filter(|p| **p != gone.name)
        .cloned()
        .collect();
    let deps = dependencies.as_ref().map(|d| {
        d.iter()
            .filter(|d| d.job != gone.name)
            .cloned()
            .collect::<Vec<_>>()
    });
    if let JobTrigger::Dependent { parents: gp, .. } = &gone.trigger {
        for p in gp {
            if !parents.contains(p) {
                parents.push(p.clone());
            }
        }
    }
    let left = parents.len() + deps.as_ref().map_or(0, Vec::len);
    child.trigger = if left == 0 {
        gone.trigger.clone()
    } else {
        JobTrigger::Dependent {
            parents,
            dependencies: deps,
            mode: *mode,
        }
    };
}

/// `DELETE /v1/scheduler/jobs`: deletes every job (children first, so no rewiring is needed),
/// killing their runs.
pub async fn delete_all(core: &Core) -> Result<(), BatchError> {
    let order: Vec<String> = {
        let st = core.state().await;
        let mut o: Vec<String> = st
            .batch
            .graph
            .topological_order()
            .into_iter()
            .map(str::to_owned)
            .collect();
        o.reverse();
        o
    };
    for name in order {
        match delete(core, &name).await {
            Ok(()) | Err(BatchError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
