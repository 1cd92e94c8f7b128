//! A container's cgroup: one directory per v1 controller, or one unified v2 directory, created with
//! the task's limits, and read back for usage, OOM and the processes inside. File writes go through
//! [`fs`], rooted wherever the [`CgroupLayout`] says, so unit tests run against a fixture tree.

pub mod bpf;
pub mod devfilter;
pub mod fs;
pub mod layout;
pub mod limits;
pub mod v1;
pub mod v2;

pub use layout::{CgroupLayout, Controller, HostMode};
pub use limits::Limits;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A failure on cgroupfs, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    DeviceFilter(#[from] devfilter::FilterError),
}

/// CPU and memory figures read from a container's cgroup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CgroupStats {
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
    pub mem_rss_bytes: u64,
    pub mem_total_bytes: u64,
    pub mem_limit_bytes: Option<u64>,
    pub cpu_nr_periods: u64,
    pub cpu_nr_throttled: u64,
    pub cpu_throttled_secs: f64,
}

/// One container's cgroup: `rel` (e.g. `gantry/web.1234`) under every hierarchy of `layout`.
#[derive(Clone, Debug)]
pub struct ContainerCgroup {
    layout: CgroupLayout,
    rel: PathBuf,
}

impl ContainerCgroup {
    pub fn new(layout: CgroupLayout, rel: impl Into<PathBuf>) -> Self {
        Self {
            layout,
            rel: rel.into(),
        }
    }

    /// The path relative to each hierarchy's root (what is checkpointed).
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// Creates the cgroup and applies `limits`. On failure, removes what it created.
    pub fn create(&self, limits: &Limits) -> Result<(), CgroupError> {
        let res = match self.layout.mode {
            HostMode::Unified => v2::create(&self.layout, &self.rel, limits),
            HostMode::Legacy | HostMode::Hybrid => v1::create(&self.layout, &self.rel, limits),
        };
        if res.is_err() {
            let _ = self.destroy(Duration::ZERO);
        }
        res
    }

    /// The files a single-threaded process writes `0` into to move itself into the container.
    /// v1: `tasks`. Moving only the writing thread lets the kernel skip the global
    /// `cgroup_threadgroup_rwsem` write lock (and its RCU grace period) that a `cgroup.procs`
    /// write takes, once per hierarchy: that lock was most of the launch latency's tail. For a
    /// single-threaded process (the launcher) both move the whole process. v2: `cgroup.procs`
    /// (`tasks` does not exist; `cgroup.threads` needs threaded mode).
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = match self.layout.mode {
            HostMode::Unified => "cgroup.procs",
            HostMode::Legacy | HostMode::Hybrid => "tasks",
        };
        self.dirs().into_iter().map(|d| d.join(file)).collect()
    }

    /// Every directory of this cgroup (one per v1 controller, or the one v2 directory).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self.layout.mode {
            HostMode::Unified => vec![self.layout.unified_root().join(&self.rel)],
            _ => v1::dirs(&self.layout, &self.rel),
        }
    }

    /// The directory whose `cgroup.procs` lists every process of the container.
    fn tracking_dir(&self) -> PathBuf {
        match self.layout.mode {
            HostMode::Unified => self.layout.unified_root().join(&self.rel),
            _ => v1::tracking_dir(&self.layout, &self.rel),
        }
    }

    /// True while the cgroup directory exists.
    pub fn exists(&self) -> bool {
        self.tracking_dir().is_dir()
    }

    /// Pids of every process in the container (empty when the cgroup is gone).
    pub fn pids(&self) -> Vec<i32> {
        fs::read(&self.tracking_dir(), "cgroup.procs")
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Freezes (or thaws) every process of the container, waiting until the kernel says it is done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.layout.mode {
            HostMode::Unified => v2::set_frozen(&self.tracking_dir(), frozen),
            _ => match self.layout.controller_root(Controller::Freezer) {
                Some(root) => v1::freezer::set_frozen(&root.join(&self.rel), frozen),
                None => Err(CgroupError::Unsupported(
                    "no freezer controller is mounted".into(),
                )),
            },
        }
    }

    /// True when the kernel's OOM killer killed a process of this container.
    pub fn oom_killed(&self) -> bool {
        match self.layout.mode {
            HostMode::Unified => v2::oom_killed(&self.tracking_dir()),
            _ => self
                .layout
                .controller_root(Controller::Memory)
                .is_some_and(|r| v1::memory::oom_killed(&r.join(&self.rel))),
        }
    }

    /// CPU time and memory.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        match self.layout.mode {
            HostMode::Unified => v2::stats(&self.tracking_dir()),
            _ => v1::stats(&self.layout, &self.rel),
        }
    }

    /// Removes every directory of the cgroup, retrying while the kernel still tears down exited
    /// processes, for up to `patience`. Missing directories are fine.
    pub fn destroy(&self, patience: Duration) -> Result<(), CgroupError> {
        let deadline = std::time::Instant::now() + patience;
        let mut last = Ok(());
        for dir in self.dirs() {
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if std::time::Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(source) => {
                        last = Err(CgroupError::Io {
                            path: dir.clone(),
                            source,
                        });
                        break;
                    }
                }
            }
        }
        last
    }
}
