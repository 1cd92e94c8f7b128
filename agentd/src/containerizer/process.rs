//! The plain-process containerizer: each task runs under the executor shim in its own session and
//! process group, with no isolation. Kill signals the whole group.

use super::procfs;
use super::{
    BoxFuture, Checkpoint, ContainerError, Containerizer, LaunchSpec, Recovered, RunAs,
    Termination, Usage,
};
use crate::executor::{read_record, shim_command};
use gantry_proto::TaskInfo;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// How often a container's liveness is checked while waiting for it.
const POLL: Duration = Duration::from_millis(100);

/// Runs tasks as plain processes.
pub struct ProcessContainerizer {
    /// The binary holding the executor shim (normally the running agent's own executable).
    shim_exe: PathBuf,
}

impl ProcessContainerizer {
    pub fn new(shim_exe: PathBuf) -> Self {
        Self { shim_exe }
    }
}

/// The argv a task's command turns into.
pub fn task_argv(cmd: &gantry_proto::CommandInfo) -> Result<Vec<String>, ContainerError> {
    match (&cmd.value, cmd.shell) {
        (Some(v), true) => Ok(vec!["/bin/sh".into(), "-c".into(), v.clone()]),
        (Some(v), false) if cmd.arguments.is_empty() => Ok(vec![v.clone()]),
        (_, false) if !cmd.arguments.is_empty() => Ok(cmd.arguments.clone()),
        _ => Err(ContainerError::Launch("the task has no command".into())),
    }
}

fn open_log(path: PathBuf) -> Result<std::fs::File, ContainerError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| ContainerError::Io { path, source })
}

/// Is the checkpointed init process still there? Reaps it when it is our child.
fn still_running(ckpt: &Checkpoint) -> bool {
    let pid = Pid::from_raw(ckpt.pid);
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => true,
        Ok(_) => false,
        // Not our child (adopted after an agent restart): ask /proc.
        Err(_) => procfs::is_alive(ckpt.pid, ckpt.start_time),
    }
}

/// How the task ended, from what the shim recorded.
pub fn termination_of(ckpt: &Checkpoint) -> Termination {
    match read_record(&ckpt.status_file) {
        Some(r) => {
            let message = match (r.exit_code, r.signal) {
                _ if r.error.is_some() => format!(
                    "The task could not start: {}",
                    r.error.as_deref().unwrap_or_default()
                ),
                (Some(0), _) => "Command exited with status 0".to_string(),
                (Some(c), _) => format!("Command exited with status {c}"),
                (None, Some(s)) => format!("Command terminated with signal {}", signal_name(s)),
                _ => "Command ended; its status could not be read".to_string(),
            };
            Termination {
                exit_code: r.exit_code,
                signal: r.signal,
                limitation: None,
                message,
            }
        }
        None => Termination {
            exit_code: None,
            signal: None,
            limitation: None,
            message: "The executor ended without recording the task's status (it was killed)"
                .into(),
        },
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

impl Containerizer for ProcessContainerizer {
    fn name(&self) -> &'static str {
        "process"
    }

    /// Tasks run as the agent's own user here (no user switch), so its permissions are theirs.
    fn run_as(&self, _task: &TaskInfo) -> Result<RunAs, ContainerError> {
        Ok(RunAs::Agent)
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Checkpoint, ContainerError> {
        let argv = task_argv(&spec.task.command)?;
        let status_file = spec.meta_dir.join("exit_status.json");
        let _ = std::fs::remove_file(&status_file);
        let mut cmd = shim_command(&self.shim_exe, &status_file, &argv);
        cmd.env_clear()
            .envs(&spec.env)
            .current_dir(&spec.sandbox)
            .stdin(Stdio::null())
            .stdout(open_log(spec.sandbox.join("stdout"))?)
            .stderr(open_log(spec.sandbox.join("stderr"))?);
        let child = cmd
            .spawn()
            .map_err(|e| ContainerError::Launch(format!("cannot start the executor: {e}")))?;
        let pid = child.id() as i32;
        // The shim is reaped by `still_running`; dropping `Child` neither waits nor kills.
        drop(child);
        let start_time = procfs::stat(pid)
            .map(|s| s.start_time)
            .ok_or_else(|| ContainerError::Launch("the executor exited at once".into()))?;
        Ok(Checkpoint {
            container_id: spec.task.task_id.to_string(),
            pid,
            start_time,
            status_file,
            cgroup: None,
        })
    }

    fn wait(&self, ckpt: &Checkpoint) -> BoxFuture<Termination> {
        let ckpt = ckpt.clone();
        Box::pin(async move {
            while still_running(&ckpt) {
                tokio::time::sleep(POLL).await;
            }
            termination_of(&ckpt)
        })
    }

    fn kill(&self, ckpt: &Checkpoint, grace: Duration) -> BoxFuture<()> {
        let ckpt = ckpt.clone();
        Box::pin(async move {
            let group = Pid::from_raw(ckpt.pid);
            if still_running(&ckpt) {
                let _ = killpg(group, Signal::SIGTERM);
                let deadline = tokio::time::Instant::now() + grace;
                while still_running(&ckpt) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // Whatever is left of the group (the task, or grandchildren that ignored SIGTERM).
            let _ = killpg(group, Signal::SIGKILL);
            while still_running(&ckpt) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    fn recover(&self, ckpt: &Checkpoint) -> Recovered {
        if still_running(ckpt) {
            Recovered::Running
        } else {
            Recovered::Exited(termination_of(ckpt))
        }
    }

    fn usage(&self, ckpt: &Checkpoint) -> Result<Usage, ContainerError> {
        let tick = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        let mut u = Usage::default();
        for (_, s) in procfs::group_members(ckpt.pid) {
            u.cpus_user_time_secs += s.utime_ticks as f64 / tick;
            u.cpus_system_time_secs += s.stime_ticks as f64 / tick;
            u.mem_rss_bytes += s.rss_pages * page;
        }
        Ok(u)
    }

    fn cleanup(&self, ckpt: &Checkpoint) {
        // Stragglers that outlived the task in its process group.
        if !procfs::group_members(ckpt.pid).is_empty() {
            let _ = killpg(Pid::from_raw(ckpt.pid), Signal::SIGKILL);
        }
    }

    fn destroy_unrecorded(&self, task: &gantry_proto::TaskInfo, meta_dir: &std::path::Path) {
        for pid in crate::recovery::orphans::shims_for(&meta_dir.join("exit_status.json")) {
            tracing::warn!(task = %task.task_id, pid, "killing an executor the agent never checkpointed");
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
