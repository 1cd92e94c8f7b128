//! What the agent hands the container's init (as JSON in the container's meta dir): the command,
//! the user, the namespaces, the cgroup to join and the mount plan.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Namespaces the container gets (the user namespace is not used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Namespaces {
    pub pid: bool,
    pub mount: bool,
    pub uts: bool,
    pub ipc: bool,
    /// A private network namespace (loopback only) instead of the host's.
    pub net: bool,
}

/// One step of the mount plan, run by the container's init in its new mount namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MountStep {
    /// `mount --make-rprivate /`: nothing the container mounts reaches the host.
    MakeRootPrivate,
    /// A fresh `/proc` for the new pid namespace.
    Proc,
    /// A private tmpfs at `target` (mode 1777), bounded by `size_bytes` (charged to the memory cgroup).
    Tmpfs { target: PathBuf, size_bytes: u64 },
    /// Bind `source` at `target` (recursively); done through an fd opened before the tmpfs mounts,
    /// so a sandbox that lives under `/tmp` stays reachable.
    Bind { source: PathBuf, target: PathBuf },
    /// An image's rootfs: overlayfs of `lower` (top layer first) with `upper` and `work`, at
    /// `target`.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// A fresh `/proc` at `target` (inside a rootfs).
    ProcAt { target: PathBuf },
    /// A minimal `/dev` at `target`: a tmpfs, each host device node of `nodes` bind-mounted at
    /// its name, `fd`/`stdin`/`stdout`/`stderr` links, and a `shm` tmpfs.
    Dev {
        target: PathBuf,
        nodes: Vec<PathBuf>,
    },
    /// Bind the host file `source` at `target` (created when missing); skipped when `source`
    /// does not exist.
    BindFile { source: PathBuf, target: PathBuf },
    /// `pivot_root` into `new_root`; the host's root is unmounted from the container.
    PivotRoot { new_root: PathBuf },
}

/// Everything the init needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitSpec {
    pub container_id: String,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub namespaces: Namespaces,
    /// The files the launcher writes `0` (itself) into to join the cgroup before creating the
    /// namespaces: v1 `tasks`, v2 `cgroup.procs` (see [`super::cgroup::ContainerCgroup::join_files`]).
    pub cgroup_join: Vec<PathBuf>,
    pub mounts: Vec<MountStep>,
    /// Where the init records the task's wait status.
    pub status_file: PathBuf,
    /// Where the launcher writes the init's host pid (or `error: ...`).
    pub pid_file: PathBuf,
    /// A directory to create (in the image's rootfs) before the task starts in it: the image's
    /// `WorkingDir`, as Docker makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make_cwd: Option<PathBuf>,
}

/// Where every container gets its own tmpfs.
pub const PRIVATE_TMP: &str = "/tmp";

impl InitSpec {
    /// The standard plan: private propagation, `/proc`, private `/tmp`, sandbox bind-mounted at
    /// `sandbox_target` (`$MESOS_SANDBOX`).
    pub fn mount_plan(sandbox: &Path, sandbox_target: &Path, tmp_bytes: u64) -> Vec<MountStep> {
        vec![
            MountStep::MakeRootPrivate,
            MountStep::Proc,
            MountStep::Tmpfs {
                target: PathBuf::from(PRIVATE_TMP),
                size_bytes: tmp_bytes,
            },
            MountStep::Bind {
                source: sandbox.to_owned(),
                target: sandbox_target.to_owned(),
            },
        ]
    }

    pub fn load(path: &Path) -> Result<InitSpec, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("bad container spec {}: {e}", path.display()))
    }
}
