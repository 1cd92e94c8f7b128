//! What the agent checkpoints in its work dir so that a restart re-adopts running tasks and resends
//! unacknowledged status updates. Every file is written atomically (temp file, rename), fsynced
//! unless it only has to survive a crash of the agent ([`Durability`]).
//!
//! Layout: `meta/agent_id`; `meta/tasks/<task>/task.json`; `meta/tasks/<task>/updates/<seq>.json`;
//! the container's private files in `meta/tasks/<task>/`; sandboxes in `sandboxes/<task>/`.

pub mod gc;
pub mod orphans;

use crate::containerizer::Checkpoint;
use gantry_proto::{AgentId, StatusUpdate, TaskId, TaskInfo, TaskState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A failure reading or writing the work dir.
#[derive(Debug, thiserror::Error)]
#[error("work dir {path}: {source}")]
pub struct RecoveryError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError {
        path: path.to_owned(),
        source,
    }
}

/// The checkpointed state of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskCheckpoint {
    pub info: TaskInfo,
    pub container: Option<Checkpoint>,
    pub state: TaskState,
    /// The sequence number the next status update gets.
    pub next_seq: u64,
    pub kill_requested: bool,
    /// The task's health-check results as last reported, so that checks resume from them after
    /// an agent restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<gantry_proto::HealthResult>,
}

/// A recovered task: its checkpoint and its unacknowledged updates in order.
#[derive(Clone, Debug)]
pub struct RecoveredTask {
    pub checkpoint: TaskCheckpoint,
    pub pending: BTreeMap<u64, StatusUpdate>,
}

/// The agent's work dir.
#[derive(Clone, Debug)]
pub struct WorkDir {
    root: PathBuf,
}

/// A file-system-safe name for a task id (ids from frameworks may hold any character); the
/// master computes the same name ([`TaskId::dir_name`]) to find a task's sandbox.
pub fn dir_name(id: &TaskId) -> String {
    id.dir_name()
}

/// What a checkpoint write must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the host: the file is fsynced before it is renamed into place.
    Host,
    /// A crash (`kill -9`) of the agent only: temp file and rename, no fsync. The rename is atomic
    /// and the page cache outlives the agent, so a restarted agent reads exactly what was written.
    /// For the states of a launch (TASK_STARTING, TASK_RUNNING): a host crash kills the container
    /// too, and an agent that comes back without the record re-registers without the task, which
    /// the master then reconciles as lost. fsync there was most of the launch latency (three
    /// fsyncs before TASK_RUNNING, 5 to 30 ms each on a busy disk).
    Agent,
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecoveryError> {
    write_atomic_as(path, bytes, Durability::Host)
}

/// Writes `bytes` to `path` atomically (temp file, rename), fsynced when `durability` asks.
pub fn write_atomic_as(
    path: &Path,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), RecoveryError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    if durability == Durability::Host {
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

impl WorkDir {
    /// Opens (creating) the work dir.
    pub fn open(root: &Path) -> Result<Self, RecoveryError> {
        let wd = Self {
            root: root.to_owned(),
        };
        for d in [wd.root.join("meta/tasks"), wd.sandboxes_dir()] {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        // Task users enter their own sandbox below it; whatever the umask said.
        let sandboxes = wd.sandboxes_dir();
        std::fs::set_permissions(&sandboxes, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(&sandboxes))?;
        Ok(wd)
    }

    /// The directory holding every task's sandbox.
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.root.join("sandboxes")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The agent id from an earlier registration.
    pub fn agent_id(&self) -> Option<AgentId> {
        let s = std::fs::read_to_string(self.root.join("meta/agent_id")).ok()?;
        let s = s.trim();
        (!s.is_empty()).then(|| AgentId(s.to_owned()))
    }

    /// True when the host rebooted since the agent last recorded its boot (or none was recorded
    /// and tasks exist): checkpointed pids then name other processes. Records the current boot.
    pub fn rebooted_since_last_start(&self) -> bool {
        let path = self.root.join("meta/boot_id");
        let now = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap_or_default()
            .trim()
            .to_string();
        let before = std::fs::read_to_string(&path)
            .ok()
            .map(|s| s.trim().to_string());
        if let Err(e) = write_atomic(&path, now.as_bytes()) {
            tracing::error!(error = %e, "cannot record the boot id");
        }
        matches!(before, Some(b) if !now.is_empty() && b != now)
    }

    pub fn save_agent_id(&self, id: &AgentId) -> Result<(), RecoveryError> {
        write_atomic(&self.root.join("meta/agent_id"), id.as_str().as_bytes())
    }

    /// The task's private directory (checkpoint, updates, container files).
    pub fn task_meta_dir(&self, id: &TaskId) -> PathBuf {
        self.root.join("meta/tasks").join(dir_name(id))
    }

    /// The task's sandbox.
    pub fn sandbox(&self, id: &TaskId) -> PathBuf {
        self.sandboxes_dir().join(dir_name(id))
    }

    /// Creates the task's directories.
    pub fn create_task_dirs(&self, id: &TaskId) -> Result<(), RecoveryError> {
        for d in [self.task_meta_dir(id).join("updates"), self.sandbox(id)] {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(())
    }

    pub fn save_task(&self, ckpt: &TaskCheckpoint) -> Result<(), RecoveryError> {
        self.save_task_as(ckpt, Durability::Host)
    }

    pub fn save_task_as(
        &self,
        ckpt: &TaskCheckpoint,
        durability: Durability,
    ) -> Result<(), RecoveryError> {
        let path = self.task_meta_dir(&ckpt.info.task_id).join("task.json");
        write_atomic_as(
            &path,
            &serde_json::to_vec(ckpt).unwrap_or_default(),
            durability,
        )
    }

    pub fn save_update(&self, update: &StatusUpdate) -> Result<(), RecoveryError> {
        self.save_update_as(update, Durability::Host)
    }

    pub fn save_update_as(
        &self,
        update: &StatusUpdate,
        durability: Durability,
    ) -> Result<(), RecoveryError> {
        let path = self
            .task_meta_dir(&update.status.task_id)
            .join("updates")
            .join(format!("{:020}.json", update.seq));
        write_atomic_as(
            &path,
            &serde_json::to_vec(update).unwrap_or_default(),
            durability,
        )
    }

    pub fn remove_update(&self, id: &TaskId, seq: u64) {
        let _ = std::fs::remove_file(
            self.task_meta_dir(id)
                .join("updates")
                .join(format!("{seq:020}.json")),
        );
    }

    /// Forgets a task whose terminal update was acknowledged (its sandbox stays for the logs).
    pub fn remove_task(&self, id: &TaskId) {
        let _ = std::fs::remove_dir_all(self.task_meta_dir(id));
    }

    /// Every checkpointed task with its pending updates. Unreadable entries are logged and skipped.
    pub fn recover(&self) -> Vec<RecoveredTask> {
        let dir = self.root.join("meta/tasks");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let ckpt: TaskCheckpoint = match std::fs::read(path.join("task.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(c) => c,
                None => {
                    tracing::warn!(dir = %path.display(), "skipping a task checkpoint that cannot be read");
                    continue;
                }
            };
            let mut pending = BTreeMap::new();
            if let Ok(ups) = std::fs::read_dir(path.join("updates")) {
                for u in ups.flatten() {
                    if u.path().extension().is_none_or(|e| e != "json") {
                        continue; // a temp file from a write cut short
                    }
                    let up: Option<StatusUpdate> = std::fs::read(u.path())
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok());
                    if let Some(up) = up {
                        pending.insert(up.seq, up);
                    }
                }
            }
            out.push(RecoveredTask {
                checkpoint: ckpt,
                pending,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::{CommandInfo, Resources, TaskStatus};

    #[test]
    fn dir_names_are_safe_and_distinct() {
        assert_eq!(
            dir_name(&"app.instance-1._app.1".into()),
            "app.instance-1._app.1"
        );
        assert_eq!(dir_name(&"a/b".into()), "a%2Fb");
        assert_eq!(dir_name(&"..".into()), "_..");
        assert_ne!(dir_name(&"a/b".into()), dir_name(&"a%2Fb".into()));
        assert_eq!(dir_name(&"a%2Fb".into()), "a%252Fb");
    }

    #[test]
    fn tasks_and_updates_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let wd = WorkDir::open(dir.path()).unwrap();
        let id: TaskId = "t1".into();
        wd.create_task_dirs(&id).unwrap();
        let ckpt = TaskCheckpoint {
            info: TaskInfo {
                task_id: id.clone(),
                name: "t".into(),
                agent_id: "a".into(),
                command: CommandInfo::default(),
                resources: Resources::default(),
                ports: vec![],
                kill_grace_period_secs: 1.0,
                ..TaskInfo::default()
            },
            container: None,
            state: TaskState::TaskRunning,
            next_seq: 3,
            kill_requested: false,
            health: vec![gantry_proto::HealthResult {
                alive: true,
                consecutive_failures: 0,
                first_success: Some(5.0),
                ..Default::default()
            }],
        };
        wd.save_task(&ckpt).unwrap();
        for seq in 1..=2 {
            wd.save_update(&StatusUpdate {
                seq,
                uuid: format!("u{seq}"),
                status: TaskStatus::new(id.clone(), None, TaskState::TaskRunning),
            })
            .unwrap();
        }
        wd.remove_update(&id, 1);
        wd.save_agent_id(&"agent-1".into()).unwrap();
        let rec = wd.recover();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].checkpoint, ckpt);
        assert_eq!(rec[0].pending.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(wd.agent_id(), Some("agent-1".into()));
        wd.remove_task(&id);
        assert!(wd.recover().is_empty());
    }

    #[test]
    fn a_reboot_is_noticed_once() {
        let dir = tempfile::tempdir().unwrap();
        let wd = WorkDir::open(dir.path()).unwrap();
        assert!(
            !wd.rebooted_since_last_start(),
            "first start: no earlier boot recorded"
        );
        assert!(!wd.rebooted_since_last_start(), "same boot");
        std::fs::write(dir.path().join("meta/boot_id"), "an-earlier-boot").unwrap();
        assert!(wd.rebooted_since_last_start(), "another boot id");
        assert!(
            !wd.rebooted_since_last_start(),
            "recorded: the next start is the same boot"
        );
    }
}
