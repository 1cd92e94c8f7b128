//! The agent's task table: launching and killing through the containerizer, watching each task to
//! its end, and the reliable status-update stream (checkpointed until the master acknowledges it).

use crate::containerizer::{Containerizer, LaunchSpec, Recovered, Termination};
use crate::fetcher::Fetcher;
use crate::health::probe::{CommandRunner, ProbeContext};
use crate::health::{self, TaskChecks};
use crate::inventory::GpuMetrics;
use crate::recovery::{Durability, TaskCheckpoint, WorkDir};
use gantry_proto::{
    AgentId, HealthResult, Reason, StatusUpdate, TaskId, TaskInfo, TaskReport, TaskState,
    TaskStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Variables systemd sets for the agent's own unit (readiness socket, journal stream, invocation
/// id, watchdog, socket activation): a task is not that service, so it does not get them.
const SERVICE_ONLY_ENV: [&str; 8] = [
    "NOTIFY_SOCKET",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

struct Entry {
    ckpt: TaskCheckpoint,
    pending: BTreeMap<u64, StatusUpdate>,
    latest: Option<TaskStatus>,
}

/// Counters for the agent's metrics.
#[derive(Clone, Debug, Default)]
pub struct TaskCounters {
    pub launched: u64,
    pub launch_errors: u64,
    pub valid_status_updates: u64,
}

/// The agent's tasks.
pub struct TaskTable {
    wd: WorkDir,
    containerizer: Arc<dyn Containerizer>,
    hostname: String,
    agent_id: Mutex<Option<AgentId>>,
    entries: Mutex<HashMap<TaskId, Entry>>,
    counters: Mutex<TaskCounters>,
    outbox: mpsc::UnboundedSender<StatusUpdate>,
    fetcher: Mutex<Option<Arc<Fetcher>>>,
    gpu_metrics: Mutex<Option<Arc<GpuMetrics>>>,
    /// The health checks of running tasks; removing an entry stops them.
    checks: Mutex<HashMap<TaskId, TaskChecks>>,
}

impl TaskTable {
    /// Sets the fetcher that brings a task's URIs into its sandbox before it starts.
    pub fn set_fetcher(&self, fetcher: Arc<Fetcher>) {
        *self.fetcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(fetcher);
    }

    /// Sets where the per-task GPU readings come from (the agent's GPU sampler).
    pub fn set_gpu_metrics(&self, metrics: Arc<GpuMetrics>) {
        *self.gpu_metrics.lock().unwrap_or_else(|p| p.into_inner()) = Some(metrics);
    }

    /// The latest readings of the GPUs `task` holds (none without GPUs or a sampler).
    pub fn gpu_usage(&self, task: &TaskInfo) -> Vec<gantry_proto::GpuUsage> {
        let gpus = task.placement.as_ref().map_or(&[][..], |p| &p.gpus[..]);
        let metrics = self
            .gpu_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        metrics.map_or_else(Vec::new, |m| m.usage_of(&task.task_id, gpus))
    }

    /// Every task that is not terminal and holds GPUs, with them: whom a GPU's readings and
    /// XIDs belong to.
    pub fn gpu_holders(&self) -> Vec<gantry_gpu::GpuHolder> {
        self.entries()
            .values()
            .filter(|e| !e.ckpt.state.is_terminal())
            .filter_map(|e| {
                let gpus = &e.ckpt.info.placement.as_ref()?.gpus;
                (!gpus.is_empty()).then(|| (e.ckpt.info.task_id.clone(), gpus.clone()))
            })
            .collect()
    }

    /// CPU and memory usage of every running task, for `/monitor/statistics`.
    pub fn usage(&self) -> Vec<(TaskInfo, crate::containerizer::Usage)> {
        let running: Vec<(TaskInfo, crate::containerizer::Checkpoint)> = self
            .entries()
            .values()
            .filter(|e| !e.ckpt.state.is_terminal())
            .filter_map(|e| Some((e.ckpt.info.clone(), e.ckpt.container.clone()?)))
            .collect();
        running
            .into_iter()
            .filter_map(|(info, c)| Some((info, self.containerizer.usage(&c).ok()?)))
            .collect()
    }

    /// The usage of every running task, stamped now, for the heartbeat.
    pub fn usage_report(&self) -> Vec<gantry_proto::TaskUsage> {
        let now = gantry_proto::time::now_secs();
        self.usage()
            .into_iter()
            .map(|(info, usage)| gantry_proto::TaskUsage {
                gpu_usage: self.gpu_usage(&info),
                task_id: info.task_id,
                timestamp: now,
                usage,
            })
            .collect()
    }

    /// A table whose new status updates are also sent to `outbox` (the link to the master).
    pub fn new(
        wd: WorkDir,
        containerizer: Arc<dyn Containerizer>,
        hostname: String,
        outbox: mpsc::UnboundedSender<StatusUpdate>,
    ) -> Arc<Self> {
        let agent_id = wd.agent_id();
        Arc::new(Self {
            wd,
            containerizer,
            hostname,
            agent_id: Mutex::new(agent_id),
            entries: Mutex::new(HashMap::new()),
            counters: Mutex::new(TaskCounters::default()),
            outbox,
            fetcher: Mutex::new(None),
            gpu_metrics: Mutex::new(None),
            checks: Mutex::new(HashMap::new()),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn work_dir(&self) -> &WorkDir {
        &self.wd
    }

    pub fn agent_id(&self) -> Option<AgentId> {
        self.agent_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the id the master gave this agent.
    pub fn set_agent_id(&self, id: AgentId) {
        if let Err(e) = self.wd.save_agent_id(&id) {
            tracing::error!(error = %e, "cannot save the agent id");
        }
        *self.agent_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    pub fn counters(&self) -> TaskCounters {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-adopts checkpointed tasks after a restart; tasks that ended meanwhile get their real
    /// terminal status.
    pub fn recover(self: &Arc<Self>) {
        // After a reboot every container is gone and its pids may belong to other processes now:
        // nothing is probed, signalled or re-adopted (Mesos does the same).
        let rebooted = self.wd.rebooted_since_last_start();

        for rec in self.wd.recover() {
            let id = rec.checkpoint.info.task_id.clone();
            let state = rec.checkpoint.state;
            let container = rec.checkpoint.container.clone();
            let latest = rec.pending.values().next_back().map(|u| u.status.clone());
            self.entries().insert(
                id.clone(),
                Entry {
                    ckpt: rec.checkpoint,
                    pending: rec.pending,
                    latest,
                },
            );
            if state.is_terminal() {
                // Its terminal update may have been lost in a crash between the checkpoint and the
                // update file: send it again unless one is pending (a duplicate is harmless).
                let pending_terminal = self
                    .entries()
                    .get(&id)
                    .is_some_and(|e| e.pending.values().any(|u| u.status.state.is_terminal()));
                if !pending_terminal {
                    self.emit(
                        &id,
                        state,
                        None,
                        "Recovered after an agent restart".into(),
                        None,
                    );
                }
                continue;
            }
            if rebooted {
                tracing::warn!(task = %id, "the host rebooted since the task started");
                self.emit(
                    &id,
                    TaskState::TaskFailed,
                    Some(Reason::ReasonAgentRestarted),
                    "The host rebooted while the task ran".into(),
                    None,
                );
                continue;
            }
            match container {
                Some(c) => match self.containerizer.recover(&c) {
                    Recovered::Running => {
                        tracing::info!(task = %id, pid = c.pid, "re-adopted a running task");
                        self.start_checks(&id, &c);
                        self.watch(id, c);
                    }
                    Recovered::Exited(term) => {
                        tracing::info!(task = %id, "task ended while the agent was down");
                        self.containerizer.cleanup(&c);
                        self.finish(&id, term);
                    }
                },
                None => {
                    // The agent died between starting the container and checkpointing it: end
                    // whatever it started, so the task does not run untracked next to its
                    // replacement.
                    let info = self.entries().get(&id).map(|e| e.ckpt.info.clone());
                    if let Some(info) = info {
                        self.containerizer
                            .destroy_unrecorded(&info, &self.wd.task_meta_dir(&id));
                    }
                    self.emit(
                        &id,
                        TaskState::TaskFailed,
                        Some(Reason::ReasonAgentRestarted),
                        "The agent restarted while launching the task".into(),
                        None,
                    )
                }
            }
        }
    }

    /// Launches a task (a repeated launch of a known task is ignored).
    pub fn launch(self: &Arc<Self>, task: TaskInfo) {
        let id = task.task_id.clone();
        if self.entries().contains_key(&id) {
            tracing::warn!(task = %id, "ignoring a duplicate launch");
            return;
        }
        let ckpt = TaskCheckpoint {
            info: task.clone(),
            container: None,
            state: TaskState::TaskStarting,
            next_seq: 1,
            kill_requested: false,
            health: Vec::new(),
        };
        // Not fsynced: the container starts after this write, so an agent crash finds it in the
        // page cache; a host crash takes the container with it (see `Durability::Agent`).
        let prepared = self
            .wd
            .create_task_dirs(&id)
            .and_then(|_| self.wd.save_task_as(&ckpt, Durability::Agent));
        self.entries().insert(
            id.clone(),
            Entry {
                ckpt,
                pending: BTreeMap::new(),
                latest: None,
            },
        );
        if let Err(e) = prepared {
            return self.launch_failed(&id, e.to_string());
        }
        if task.container.docker.is_some() && !self.containerizer.names().contains(&"docker") {
            return self.launch_failed(
                &id,
                "this agent has no Docker containerizer (start it with --containerizers \
                 native,docker)"
                    .into(),
            );
        }
        if task.container.image.is_some() && !self.containerizer.names().contains(&"native") {
            return self.launch_failed(
                &id,
                "this agent runs no container images: only the native containerizer does (start \
                 it with --containerizer native, as root)"
                    .into(),
            );
        }
        let spec = LaunchSpec {
            env: self.task_env(&task),
            sandbox: self.wd.sandbox(&id),
            meta_dir: self.wd.task_meta_dir(&id),
            task,
        };
        let fetcher = self
            .fetcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match fetcher {
            Some(f) if !spec.task.command.uris.is_empty() => {
                // Local paths are read with the rights of the user the task will run as.
                let run_as = match self.containerizer.run_as(&spec.task) {
                    Ok(r) => r,
                    Err(e) => return self.launch_failed(&id, e.to_string()),
                };
                let this = self.clone();
                let span = tracing::info_span!("fetch", task = %id);
                tokio::spawn(tracing::Instrument::instrument(
                    async move {
                        let uris = &spec.task.command.uris;
                        match f.fetch_all(uris, &spec.sandbox, &run_as).await {
                            Ok(()) => this.start_container(&id, spec),
                            Err(e) => this.launch_failed(&id, e.to_string()),
                        }
                    },
                    span,
                ));
            }
            _ => self.start_container(&id, spec),
        }
    }

    /// Starts the container of a task whose sandbox is ready (unless it was killed meanwhile).
    /// The launch (cgroup, the launcher's fork and exec, the checkpoint) blocks for milliseconds,
    /// so it runs on tokio's blocking pool: the agent's runtime thread (the master link, HTTP,
    /// the waiters of other tasks) never waits for it.
    fn start_container(self: &Arc<Self>, id: &TaskId, spec: LaunchSpec) {
        if self
            .entries()
            .get(id)
            .is_none_or(|e| e.ckpt.state.is_terminal())
        {
            return;
        }
        let this = self.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || match this.containerizer.launch(&spec) {
            Ok(c) => this.started(id, c),
            Err(e) => this.launch_failed(&id, e.to_string()),
        });
    }

    /// The container of task `id` runs: checkpoint it with TASK_RUNNING and watch it. A task
    /// killed while it was being launched has its container killed and removed instead.
    fn started(self: &Arc<Self>, id: TaskId, c: crate::containerizer::Checkpoint) {
        let killed_meanwhile = match self.entries().get_mut(&id) {
            Some(e) if !e.ckpt.state.is_terminal() => {
                e.ckpt.container = Some(c.clone());
                false
            }
            _ => true,
        };
        if killed_meanwhile {
            tracing::info!(task = %id, "killed while launching; removing its container");
            let this = self.clone();
            tokio::spawn(async move {
                this.containerizer.kill(&c, Duration::ZERO).await;
                let _ = this.containerizer.wait(&c).await;
                this.containerizer.cleanup(&c);
            });
            return;
        }
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .launched += 1;
        tracing::info!(task = %id, pid = c.pid, "task launched");
        self.emit(&id, TaskState::TaskRunning, None, String::new(), None);
        self.start_checks(&id, &c);
        self.watch(id, c);
    }

    /// Starts the health checks of running task `id` in container `c`, from the results it had
    /// before an agent restart. HTTP, HTTPS and TCP checks dial the task's host port on loopback;
    /// a COMMAND check runs inside the container as the task's user (native containerizer) or in
    /// the sandbox with the task's environment (process containerizer, whose tasks run as the
    /// agent).
    fn start_checks(self: &Arc<Self>, id: &TaskId, c: &crate::containerizer::Checkpoint) {
        let Some((info, prior)) = self
            .entries()
            .get(id)
            .map(|e| (e.ckpt.info.clone(), e.ckpt.health.clone()))
        else {
            return;
        };
        if info.health_checks.is_empty() {
            return;
        }
        let runner = match self.containerizer.run_as(&info) {
            Ok(crate::containerizer::RunAs::User { user, .. }) => CommandRunner::Container {
                pid: c.pid,
                uid: user.uid,
                gid: user.gid,
            },
            _ => CommandRunner::Sandbox,
        };
        let ctx = ProbeContext::loopback(self.wd.sandbox(id), self.task_env(&info), runner);
        let weak = Arc::downgrade(self);
        let task = id.clone();
        let report: health::Reporter = Arc::new(move |results| {
            if let Some(this) = weak.upgrade() {
                this.health_changed(&task, results);
            }
        });
        let checks = health::start(info.health_checks.clone(), prior, ctx, report);
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), checks);
    }

    /// Stops the health checks of task `id`.
    fn stop_checks(&self, id: &TaskId) {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        drop(checks);
    }

    /// A health result of running task `id` changed: tell the master (as Mesos does, with a
    /// TASK_RUNNING update whose reason is TASK_HEALTH_CHECK_STATUS_UPDATED).
    fn health_changed(&self, id: &TaskId, results: Vec<HealthResult>) {
        let running = self
            .entries()
            .get(id)
            .is_some_and(|e| e.ckpt.state == TaskState::TaskRunning && !e.ckpt.kill_requested);
        if !running {
            return;
        }
        let failing = results.iter().find(|r| !r.alive);
        let message = failing
            .and_then(|r| r.last_failure_cause.clone())
            .unwrap_or_default();
        tracing::info!(task = %id, healthy = failing.is_none(), cause = %message, "health changed");
        self.emit_status(
            id,
            TaskState::TaskRunning,
            Some(Reason::ReasonTaskHealthCheckStatusUpdated),
            message,
            None,
            results,
        );
    }

    fn launch_failed(&self, id: &TaskId, why: String) {
        tracing::warn!(task = %id, error = %why, "launch failed");
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .launch_errors += 1;
        self.emit(
            id,
            TaskState::TaskFailed,
            Some(Reason::ReasonContainerLaunchFailed),
            why,
            None,
        );
    }

    /// The environment a task sees: the agent's own (less GANTRY_* settings, which hold secrets,
    /// and what systemd set for the agent's unit alone, [`SERVICE_ONLY_ENV`]), the task's, and
    /// the Mesos/Marathon variables.
    fn task_env(&self, task: &TaskInfo) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("GANTRY_") && !SERVICE_ONLY_ENV.contains(&k.as_str()))
            .collect();
        env.extend(task.command.environment.clone());
        let sandbox = self.wd.sandbox(&task.task_id).display().to_string();
        env.insert("MESOS_TASK_ID".into(), task.task_id.to_string());
        env.insert("MESOS_SANDBOX".into(), sandbox.clone());
        env.insert("MESOS_DIRECTORY".into(), sandbox);
        env.insert("MESOS_AGENT_ID".into(), task.agent_id.to_string());
        env.insert("HOST".into(), self.hostname.clone());
        for (i, p) in task.ports.iter().enumerate() {
            env.insert(format!("PORT{i}"), p.to_string());
        }
        if let Some(p) = task.ports.first() {
            env.insert("PORT".into(), p.to_string());
        }
        let ports: Vec<String> = task.ports.iter().map(u16::to_string).collect();
        env.insert("PORTS".into(), ports.join(","));
        // GPUs: the ones the master assigned (none: CUDA sees none). Here CUDA_VISIBLE_DEVICES
        // names UUIDs (nothing hides the other GPUs); the native containerizer, which confines the
        // task with device cgroups, renumbers them from 0 as Slurm does. A GPU task placed by count
        // only (agent without a GPU inventory) is left as it is.
        let assigned = task.placement.as_ref().map_or(&[][..], |p| &p.gpus[..]);
        if !assigned.is_empty() || task.resources.gpus == 0 {
            env.extend(gantry_gpu::assignment_env(assigned, false));
        }
        env
    }

    fn watch(self: &Arc<Self>, id: TaskId, c: crate::containerizer::Checkpoint) {
        let this = self.clone();
        tokio::spawn(async move {
            let term = this.containerizer.wait(&c).await;
            this.containerizer.cleanup(&c);
            this.finish(&id, term);
        });
    }

    fn finish(&self, id: &TaskId, term: Termination) {
        self.stop_checks(id);
        let killed = self
            .entries()
            .get(id)
            .is_some_and(|e| e.ckpt.kill_requested);
        let (state, reason) = if let Some(limit) = term.limitation {
            (TaskState::TaskFailed, Some(limit))
        } else if killed {
            (TaskState::TaskKilled, None)
        } else if term.succeeded() {
            (TaskState::TaskFinished, None)
        } else {
            (TaskState::TaskFailed, None)
        };
        tracing::info!(task = %id, state = state.name(), message = %term.message, "task ended");
        self.emit(
            id,
            state,
            reason,
            term.message,
            Some((term.exit_code, term.signal)),
        );
    }

    /// Kills a task: SIGTERM, then SIGKILL after the grace period.
    pub fn kill(self: &Arc<Self>, id: &TaskId, grace: Option<f64>) {
        let container = {
            let mut entries = self.entries();
            let Some(e) = entries.get_mut(id) else {
                tracing::warn!(task = %id, "kill for a task this agent does not know");
                return;
            };
            if e.ckpt.state.is_terminal() {
                return;
            }
            e.ckpt.kill_requested = true;
            self.stop_checks(id);
            if let Err(err) = self.wd.save_task(&e.ckpt) {
                tracing::error!(task = %id, error = %err, "cannot checkpoint the kill");
            }
            e.ckpt.container.clone()
        };
        let grace = grace.unwrap_or_else(|| {
            self.entries()
                .get(id)
                .map_or(3.0, |e| e.ckpt.info.kill_grace_period_secs)
        });
        match container {
            Some(c) => {
                let this = self.clone();
                tokio::spawn(async move {
                    this.containerizer.kill(&c, grace_period(grace)).await;
                });
            }
            None => self.emit(
                id,
                TaskState::TaskKilled,
                Some(Reason::ReasonTaskKilledDuringLaunch),
                "Killed before it started".into(),
                None,
            ),
        }
    }

    /// The master applied update `seq` of task `id`.
    pub fn acknowledge(&self, id: &TaskId, seq: u64) {
        let mut entries = self.entries();
        let Some(e) = entries.get_mut(id) else {
            return;
        };
        if e.pending.remove(&seq).is_some() {
            self.wd.remove_update(id, seq);
        }
        if e.ckpt.state.is_terminal() && e.pending.is_empty() {
            entries.remove(id);
            self.wd.remove_task(id);
        }
    }

    /// Records a new status: checkpoint first, then the update file, then send.
    fn emit(
        &self,
        id: &TaskId,
        state: TaskState,
        reason: Option<Reason>,
        message: String,
        exit: Option<(Option<i32>, Option<i32>)>,
    ) {
        self.emit_status(id, state, reason, message, exit, Vec::new())
    }

    /// As [`TaskTable::emit`], with the task's health results when they changed (kept in the
    /// checkpoint too).
    fn emit_status(
        &self,
        id: &TaskId,
        state: TaskState,
        reason: Option<Reason>,
        message: String,
        exit: Option<(Option<i32>, Option<i32>)>,
        health: Vec<HealthResult>,
    ) {
        let update = {
            let mut entries = self.entries();
            let Some(e) = entries.get_mut(id) else {
                return;
            };
            let mut status = TaskStatus::new(id.clone(), self.agent_id(), state);
            status.reason = reason;
            status.message = (!message.is_empty()).then_some(message);
            if let Some((code, sig)) = exit {
                status.exit_code = code;
                status.signal = sig;
            }
            if !health.is_empty() {
                status.healthy = Some(health.iter().all(|r| r.alive));
                e.ckpt.health = health.clone();
                status.health = health;
            }
            let update = StatusUpdate {
                seq: e.ckpt.next_seq,
                uuid: uuid::Uuid::new_v4().to_string(),
                status: status.clone(),
            };
            e.ckpt.next_seq += 1;
            e.ckpt.state = state;
            // The update first: a crash between the two writes then leaves a pending update for a
            // state the checkpoint does not show yet, which recovery resends; never the reverse.
            // A terminal status (the task's outcome) must survive a host crash; the states of a
            // running task only an agent crash, as the task itself does not outlive the host.
            let durability = if state.is_terminal() {
                Durability::Host
            } else {
                Durability::Agent
            };
            if let Err(err) = self
                .wd
                .save_update_as(&update, durability)
                .and_then(|_| self.wd.save_task_as(&e.ckpt, durability))
            {
                tracing::error!(task = %id, error = %err, "cannot checkpoint a status update");
            }
            e.pending.insert(update.seq, update.clone());
            e.latest = Some(status);
            update
        };
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .valid_status_updates += 1;
        let _ = self.outbox.send(update);
    }

    /// Every task with its latest status, for (re-)registration.
    pub fn reports(&self) -> Vec<TaskReport> {
        let agent_id = self.agent_id();
        self.entries()
            .values()
            .map(|e| TaskReport {
                task: e.ckpt.info.clone(),
                status: e.latest.clone().unwrap_or_else(|| {
                    TaskStatus::new(e.ckpt.info.task_id.clone(), agent_id.clone(), e.ckpt.state)
                }),
            })
            .collect()
    }

    /// Every unacknowledged update, oldest first within each task.
    pub fn pending_updates(&self) -> Vec<StatusUpdate> {
        self.entries()
            .values()
            .flat_map(|e| e.pending.values().cloned())
            .collect()
    }

    /// (task, state) of every known task, for the agent's `/state`.
    pub fn list(&self) -> Vec<(TaskInfo, TaskState)> {
        self.entries()
            .values()
            .map(|e| (e.ckpt.info.clone(), e.ckpt.state))
            .collect()
    }
}

/// The longest grace period the agent waits between SIGTERM and SIGKILL (one day).
const MAX_GRACE: Duration = Duration::from_secs(86_400);

/// A grace period from the wire: negative or not a number is none, huge is capped.
pub fn grace_period(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(MAX_GRACE, |d| d.min(MAX_GRACE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_never_panic() {
        assert_eq!(grace_period(1.5), Duration::from_millis(1500));
        assert_eq!(grace_period(-3.0), Duration::ZERO);
        assert_eq!(grace_period(f64::NAN), Duration::ZERO);
        assert_eq!(grace_period(1e20), MAX_GRACE);
        assert_eq!(grace_period(f64::INFINITY), MAX_GRACE);
    }
}
