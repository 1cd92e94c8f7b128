//! Tasks: what to run (`TaskInfo`), the Mesos task states and reasons, and a status (`TaskStatus`).

use crate::ids::{AgentId, TaskId};
use crate::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Mesos task states (`mesos.proto` `enum TaskState`), serialized by name (`"TASK_RUNNING"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    #[default]
    TaskStaging,
    TaskStarting,
    TaskRunning,
    TaskKilling,
    TaskFinished,
    TaskFailed,
    TaskKilled,
    TaskError,
    TaskLost,
    TaskDropped,
    TaskUnreachable,
    TaskGone,
    TaskGoneByOperator,
    TaskUnknown,
}

impl TaskState {
    /// Every state, for exhaustive tests and metrics.
    pub const ALL: [TaskState; 14] = [
        TaskState::TaskStaging,
        TaskState::TaskStarting,
        TaskState::TaskRunning,
        TaskState::TaskKilling,
        TaskState::TaskFinished,
        TaskState::TaskFailed,
        TaskState::TaskKilled,
        TaskState::TaskError,
        TaskState::TaskLost,
        TaskState::TaskDropped,
        TaskState::TaskUnreachable,
        TaskState::TaskGone,
        TaskState::TaskGoneByOperator,
        TaskState::TaskUnknown,
    ];

    /// The protobuf enum number.
    pub fn number(self) -> i32 {
        match self {
            TaskState::TaskStarting => 0,
            TaskState::TaskRunning => 1,
            TaskState::TaskFinished => 2,
            TaskState::TaskFailed => 3,
            TaskState::TaskKilled => 4,
            TaskState::TaskLost => 5,
            TaskState::TaskStaging => 6,
            TaskState::TaskError => 7,
            TaskState::TaskKilling => 8,
            TaskState::TaskDropped => 9,
            TaskState::TaskUnreachable => 10,
            TaskState::TaskGone => 11,
            TaskState::TaskGoneByOperator => 12,
            TaskState::TaskUnknown => 13,
        }
    }

    /// The enum name, as Mesos writes it (`TASK_RUNNING`).
    pub fn name(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskGoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
        }
    }

    /// Terminal states, as `protobuf_utils.cpp` defines them: the task will not run again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
        )
    }
}

/// `TaskStatus.Reason` values Gantry produces (`docs/task-state-reasons.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    ReasonCommandExecutorFailed,
    ReasonContainerLaunchFailed,
    ReasonContainerLimitation,
    ReasonContainerLimitationMemory,
    ReasonContainerLimitationDisk,
    ReasonExecutorTerminated,
    ReasonTaskKilledDuringLaunch,
    ReasonAgentRestarted,
    ReasonAgentRemoved,
    ReasonAgentRemovedByOperator,
    ReasonAgentDisconnected,
    ReasonAgentReregistered,
    ReasonAgentUnknown,
    ReasonInvalidOffers,
    ReasonResourcesUnknown,
    ReasonTaskInvalid,
    ReasonTaskUnknown,
    ReasonFrameworkRemoved,
    ReasonMasterDisconnected,
    ReasonReconciliation,
    ReasonTaskHealthCheckStatusUpdated,
}

/// The status of a task at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub agent_id: Option<AgentId>,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Seconds since the epoch.
    pub timestamp: f64,
    /// The process's exit code when it exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the process, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// The results of the task's health checks (in the order of `TaskInfo::health_checks`) when
    /// this update reports a change of them (`reason` TASK_HEALTH_CHECK_STATUS_UPDATED).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<crate::health::HealthResult>,
}

impl TaskStatus {
    /// A status with no reason, message or exit code.
    pub fn new(task_id: TaskId, agent_id: Option<AgentId>, state: TaskState) -> Self {
        Self {
            task_id,
            agent_id,
            state,
            reason: None,
            message: None,
            timestamp: crate::time::now_secs(),
            exit_code: None,
            signal: None,
            healthy: None,
            health: Vec::new(),
        }
    }

    /// The same status with a message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The same status with a reason.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// What to execute: a shell command (`cmd`) or an argument vector (`args`), as in Mesos CommandInfo.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandInfo {
    /// With `shell`, the command line given to `/bin/sh -c`; otherwise the program to run.
    pub value: Option<String>,
    /// Arguments (argv) when `shell` is false.
    pub arguments: Vec<String>,
    pub shell: bool,
    pub environment: BTreeMap<String, String>,
    /// The OS user to run as; `None` means the agent's default.
    pub user: Option<String>,
    /// Files to fetch into the sandbox before the task starts (Mesos `CommandInfo.uris`).
    pub uris: Vec<FetchUri>,
}

/// A URI fetched into the sandbox before the task starts (Mesos `CommandInfo.URI`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchUri {
    /// `http://`, `https://`, `file://` or an absolute local path.
    pub uri: String,
    /// Extract archives (tar, tar.gz, tar.bz2, tar.xz, zip) into the sandbox.
    #[serde(default = "yes")]
    pub extract: bool,
    /// Make the fetched file executable.
    #[serde(default)]
    pub executable: bool,
    /// Keep a copy in the agent's fetch cache.
    #[serde(default)]
    pub cache: bool,
    /// Where in the sandbox to put it (default: the URI's base name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where on the agent's topology the master placed a task: the agent applies exactly this
/// (cpuset, memory nodes, device rules and visible GPUs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NumaPlacement {
    /// The NUMA node the task was placed on, when its placement is NUMA-bound.
    pub numa_node: Option<u32>,
    /// OS indexes of the logical CPUs the task may run on (empty: not pinned).
    pub cpus: Vec<u32>,
    /// NUMA nodes the task's memory may come from (empty: any).
    pub mems: Vec<u32>,
    /// The GPUs the task was given.
    pub gpus: Vec<GpuAssignment>,
}

/// One GPU given to a task. The strings are shared (`Arc<str>`): the master builds each agent's
/// assignments once and hands out cheap clones (same JSON as `String`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuAssignment {
    /// NVML index on the agent.
    pub index: u32,
    /// Device minor number (`/dev/nvidia<minor>`, major 195).
    pub minor: u32,
    pub uuid: Arc<str>,
    /// PCI address (`dddd:bb:dd.f`): CUDA's `PCI_BUS_ID` order numbers the task's GPUs by it.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub pci_bus_id: Arc<str>,
    /// For a MIG device: the minors of its `/dev/nvidia-caps/nvidia-cap<N>` nodes, which the
    /// task is allowed besides `/dev/nvidia<minor>` (the parent GPU). Empty for a whole GPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps_minors: Vec<u32>,
}

/// How the task's container is set up beyond its resources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// A private network namespace (loopback only) instead of the host's network.
    pub private_network: bool,
    /// Run by the Docker containerizer (`container.type: DOCKER`); `None`: the agent's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<crate::docker::DockerSpec>,
    /// A Docker/OCI image the native containerizer runs the task in (`container.type: MESOS`
    /// with `docker.image`, Mesos's "UCR"): `nginx:1.11`, `host:5000/team/app@sha256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A task to launch on an agent, with everything the agent needs to run it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub task_id: TaskId,
    pub name: String,
    pub agent_id: AgentId,
    pub command: CommandInfo,
    /// Resources given to the task, including its host ports.
    pub resources: Resources,
    /// Host ports in the order the task's port definitions ask for them (PORT0, PORT1, ...).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Time from SIGTERM to SIGKILL when the task is killed.
    #[serde(default = "default_grace")]
    pub kill_grace_period_secs: f64,
    /// Free-form labels (the owning app and its version, for Marathon tasks).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// CPUs, memory nodes and GPUs chosen by the master; `None` when not topology-bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<NumaPlacement>,
    #[serde(default)]
    pub container: ContainerSpec,
    /// Health checks the agent runs next to the task (none: the task is never probed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<crate::health::HealthCheckSpec>,
}

fn default_grace() -> f64 {
    3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_by_mesos_name() {
        for s in TaskState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            let back: TaskState = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
        let numbers: std::collections::HashSet<i32> =
            TaskState::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(numbers.len(), 14);
    }

    #[test]
    fn terminal_set_matches_mesos() {
        let terminal: Vec<&str> = TaskState::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.name())
            .collect();
        assert_eq!(
            terminal,
            [
                "TASK_FINISHED",
                "TASK_FAILED",
                "TASK_KILLED",
                "TASK_ERROR",
                "TASK_LOST",
                "TASK_DROPPED",
                "TASK_GONE"
            ]
        );
    }

    #[test]
    fn reasons_use_mesos_names() {
        assert_eq!(
            serde_json::to_string(&Reason::ReasonContainerLimitationMemory).unwrap(),
            "\"REASON_CONTAINER_LIMITATION_MEMORY\""
        );
    }
}
