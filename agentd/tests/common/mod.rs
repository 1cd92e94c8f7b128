//! Shared by the agent's root tests: a task table over the native containerizer in its own temp
//! dir and cgroup parent, and waiting for a task's terminal status as the master would see it.
#![allow(dead_code)]

use gantry_agentd::containerizer::native::cgroup::CgroupLayout;
use gantry_agentd::containerizer::native::users::UserPolicy;
use gantry_agentd::containerizer::native::{NativeConfig, NativeContainerizer};
use gantry_agentd::recovery::WorkDir;
use gantry_agentd::tasks::TaskTable;
use gantry_proto::{StatusUpdate, TaskStatus};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// A task table over the native containerizer; its per-test cgroup parent is removed on drop.
pub struct NativeTable {
    pub dir: tempfile::TempDir,
    pub table: Arc<TaskTable>,
    pub rx: UnboundedReceiver<StatusUpdate>,
    pub layout: CgroupLayout,
    pub parent: String,
}

impl NativeTable {
    /// A fresh table for test `name` (needs root: cgroups and namespaces).
    pub fn new(name: &str) -> Self {
        Self::new_in(name, &std::env::temp_dir())
    }

    /// A fresh table whose work dir is below `base` (outside `/tmp`, the containers' parent
    /// directories are the host's own, not recreated in the private `/tmp`).
    pub fn new_in(name: &str, base: &std::path::Path) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (native containers)"
        );
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        // Tasks run as `nobody`: the path to their sandboxes must be traversable.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let wd = WorkDir::open(&dir.path().join("work")).expect("work dir");
        let parent = format!("gantry-test-{}-{name}", std::process::id());
        let layout = CgroupLayout::detect().unwrap_or_else(|e| panic!("no usable cgroups: {e}"));
        let cz = Arc::new(NativeContainerizer::new(NativeConfig {
            shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
            layout: layout.clone(),
            cgroup_parent: parent.clone(),
            users: UserPolicy::default(),
            pids_max: Some(64),
            images: None,
        }));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let table = TaskTable::new(wd, cz, "127.0.0.1".into(), tx);
        NativeTable {
            dir,
            table,
            rx,
            layout,
            parent,
        }
    }

    /// The next terminal status of task `id`.
    pub async fn terminal(&mut self, id: &str) -> TaskStatus {
        loop {
            let u = tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
                .await
                .expect("a status in time")
                .expect("outbox open");
            if u.status.task_id.as_str() == id && u.status.state.is_terminal() {
                return u.status;
            }
        }
    }

    /// The per-test cgroup parent in every v1 hierarchy.
    pub fn parents(&self) -> Vec<PathBuf> {
        self.layout
            .v1
            .values()
            .map(|root| root.join(&self.parent))
            .collect()
    }
}

impl Drop for NativeTable {
    fn drop(&mut self) {
        for p in self.parents() {
            let _ = std::fs::remove_dir(p);
        }
    }
}
