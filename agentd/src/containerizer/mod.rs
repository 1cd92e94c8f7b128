//! The `Containerizer` trait: launch, wait, kill, recover and measure a task's container.
//! `process` runs plain processes; `native` (namespaces + cgroups) and `docker` (the host's
//! Docker daemon) implement the same trait; `routed` puts Docker next to the default back end.

pub mod docker;
pub mod native;
pub mod process;
pub mod procfs;
pub mod routed;

use gantry_proto::{Reason, TaskInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so that the trait stays object-safe.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Everything needed to start one task's container.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    pub task: TaskInfo,
    /// The task's sandbox directory; it exists, and stdout/stderr go there.
    pub sandbox: PathBuf,
    /// The full environment of the task (MESOS_TASK_ID, PORT0, ... and the task's own).
    pub env: BTreeMap<String, String>,
    /// A directory private to the agent for this container (status file, back-end state).
    pub meta_dir: PathBuf,
}

/// What the agent checkpoints about a running container so that it can re-adopt it after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub container_id: String,
    /// Pid of the container's init process (the executor shim).
    pub pid: i32,
    /// The init process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a
    /// reused pid is never mistaken for the task.
    pub start_time: u64,
    /// Where the init process writes the task's wait status when the task ends.
    pub status_file: PathBuf,
    /// The container's cgroup, for back ends that make one.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    /// The task's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended the task, when one did.
    pub signal: Option<i32>,
    /// A limit the container hit (memory, disk), when that ended it.
    pub limitation: Option<Reason>,
    /// A sentence for the user.
    pub message: String,
}

impl Termination {
    /// True for exit code 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// What `recover` finds for a checkpointed container.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovered {
    /// Still running: the agent re-adopts it.
    Running,
    /// It ended while the agent was away.
    Exited(Termination),
}

/// Resource usage of one container (the wire type, also sent in heartbeats).
pub use gantry_proto::Usage;

/// Who a task runs as, for what the agent does on its behalf before the task starts: the fetcher
/// reads the task's local paths with exactly these permissions, never more.
#[derive(Clone, Debug, PartialEq)]
pub enum RunAs {
    /// The agent's own user: the `process` back end runs tasks as the agent itself, so a task
    /// could read anything the agent reads for it.
    Agent,
    /// `user`, whom `helper` (the agent's binary, re-executed as `__gantry_fetch_local`)
    /// becomes before it opens anything.
    User {
        user: native::users::TaskUser,
        helper: PathBuf,
    },
}

/// A failure to launch or manage a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("failed to launch: {0}")]
    Launch(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Runs tasks. Every method is safe to call again after an agent restart with a checkpoint.
pub trait Containerizer: Send + Sync + 'static {
    /// The back end's name as the agent reports it (Mesos's `--containerizers`): `native`, `process`.
    fn name(&self) -> &'static str;
    /// Every back end this containerizer runs tasks with (the agent's `containerizers`).
    fn names(&self) -> Vec<&'static str> {
        vec![self.name()]
    }
    /// Who `task` will run as (the same answer `launch` acts on), for the fetcher.
    fn run_as(&self, task: &TaskInfo) -> Result<RunAs, ContainerError>;
    /// Starts the task; returns once its init process exists.
    fn launch(&self, spec: &LaunchSpec) -> Result<Checkpoint, ContainerError>;
    /// Resolves when the container has ended, with how it ended.
    fn wait(&self, ckpt: &Checkpoint) -> BoxFuture<Termination>;
    /// SIGTERM to everything in the container, SIGKILL after `grace`; resolves when all is gone.
    fn kill(&self, ckpt: &Checkpoint, grace: Duration) -> BoxFuture<()>;
    /// After an agent restart: is the checkpointed container still running, or how did it end?
    fn recover(&self, ckpt: &Checkpoint) -> Recovered;
    /// CPU time and memory of the container.
    fn usage(&self, ckpt: &Checkpoint) -> Result<Usage, ContainerError>;
    /// Releases what the container held (cgroups, mounts) once it has ended.
    fn cleanup(&self, ckpt: &Checkpoint);
    /// After an agent restart: ends whatever a launch of `task` left behind that was never
    /// checkpointed (the agent died between starting the container and saving its checkpoint), so
    /// the task cannot run untracked next to its replacement. `meta_dir` is the launch's.
    fn destroy_unrecorded(&self, task: &TaskInfo, meta_dir: &Path);
}
