//! The native containerizer: each task in its own pid, mount, uts and ipc namespaces (and network,
//! when asked), in a cgroup that enforces its cpus, mem, pids, cpuset and GPU devices, as the user
//! the agent's policy picks. The executor shim, re-executed as `__gantry_container`, is the
//! container's init. Kill freezes the cgroup before SIGKILL; recovery re-adopts from the checkpoint.

pub mod cgroup;
pub mod image;
pub mod init;
pub mod loopback;
pub mod plan;
pub mod reach;
pub mod spec;
pub mod syscall;
pub mod users;

use super::process::{task_argv, termination_of};
use super::{
    procfs, BoxFuture, Checkpoint, ContainerError, Containerizer, LaunchSpec, Recovered, RunAs,
};
use super::{Termination, Usage};
use cgroup::{CgroupLayout, ContainerCgroup};
use gantry_proto::Reason;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use spec::{InitSpec, Namespaces};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use users::UserPolicy;

/// Settings of the native back end.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// The binary holding the executor shim (the agent's own executable).
    pub shim_exe: PathBuf,
    /// The host's cgroup hierarchies.
    pub layout: CgroupLayout,
    /// Parent cgroup of every container (`gantry` → `/sys/fs/cgroup/<ctrl>/gantry/<id>`).
    pub cgroup_parent: String,
    pub users: UserPolicy,
    /// `pids.max` of every container.
    pub pids_max: Option<u64>,
    /// Images (`container.image`): pulled into the layer store, run in an overlay rootfs.
    pub images: Option<std::sync::Arc<image::pull::Images>>,
}

/// Where the time of one launch went, in microseconds (benchmarks; logged at debug level).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LaunchPhases {
    /// The user, the limits, reading `/proc/devices`.
    pub plan_us: u64,
    /// mkdir and limits in every hierarchy.
    pub cgroup_us: u64,
    /// Log files, chown of the sandbox, `container.json`.
    pub sandbox_us: u64,
    /// The launcher, from spawn to its exit: exec of the shim, joining the cgroup, unshare, fork
    /// of the init, the init's pid written.
    pub launcher_us: u64,
    /// Reading the init's pid and start time.
    pub adopt_us: u64,
}

/// Runs tasks in namespaces and cgroups.
pub struct NativeContainerizer {
    cfg: NativeConfig,
    last_launch: std::sync::Mutex<LaunchPhases>,
}

impl NativeContainerizer {
    /// The agent becomes a child subreaper, so container inits (orphaned when their launcher
    /// exits) are reparented to it and reaped as soon as they end.
    pub fn new(cfg: NativeConfig) -> Self {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(error = %e, "cannot become a child subreaper; exited container inits are reaped by the host's init");
        }
        Self {
            cfg,
            last_launch: std::sync::Mutex::default(),
        }
    }

    /// The phases of the latest successful launch.
    pub fn last_launch_phases(&self) -> LaunchPhases {
        *self.last_launch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cgroup of a checkpointed container.
    pub fn cgroup_of(&self, ckpt: &Checkpoint) -> Option<ContainerCgroup> {
        ckpt.cgroup
            .as_ref()
            .map(|rel| ContainerCgroup::new(self.cfg.layout.clone(), rel.clone()))
    }

    fn launch_inner(
        &self,
        spec: &LaunchSpec,
        cg: &ContainerCgroup,
    ) -> Result<Checkpoint, ContainerError> {
        let mut clock = Instant::now();
        let mut lap = || {
            let now = Instant::now();
            let us = now.duration_since(clock).as_micros() as u64;
            clock = now;
            us
        };
        let mut phases = LaunchPhases::default();
        let task = &spec.task;
        let prepared = self.prepare_image(spec)?;
        let argv = match &prepared {
            Some(p) => p.config.argv(&task.command).ok_or_else(|| {
                ContainerError::Launch(
                    "the task has no command and its image no Entrypoint or Cmd".into(),
                )
            })?,
            None => task_argv(&task.command)?,
        };
        let (user, note) = self
            .cfg
            .users
            .resolve(task.command.user.as_deref())
            .map_err(|e| ContainerError::Launch(e.to_string()))?;
        if let Some(why) = note {
            tracing::warn!(task = %task.task_id, "{why}");
        }
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        let limits = plan::limits_for(task, self.cfg.pids_max, &proc_devices);
        phases.plan_us = lap();
        cg.create(&limits)
            .map_err(|e| ContainerError::Launch(format!("cgroup {}: {e}", cg.rel().display())))?;
        phases.cgroup_us = lap();

        let stdout = open_log(&spec.sandbox.join("stdout"))?;
        let stderr = open_log(&spec.sandbox.join("stderr"))?;
        chown_tree(&spec.sandbox, user.uid, user.gid)?;
        let status_file = spec.meta_dir.join("exit_status.json");
        let pid_file = spec.meta_dir.join("init.pid");
        let _ = std::fs::remove_file(&status_file);
        let _ = std::fs::remove_file(&pid_file);
        let sandbox_target = match &prepared {
            Some(_) => PathBuf::from(image::rootfs::SANDBOX_IN_IMAGE),
            None => spec
                .env
                .get("MESOS_SANDBOX")
                .map(PathBuf::from)
                .unwrap_or_else(|| spec.sandbox.clone()),
        };
        let tmp_bytes = limits.memory_bytes().unwrap_or(1 << 30);
        let image_cwd = prepared
            .as_ref()
            .and_then(|p| p.config.cwd())
            .map(PathBuf::from);
        let mounts = match &prepared {
            Some(p) => {
                let pl = task.placement.clone().unwrap_or_default();
                let minors: Vec<u32> = pl.gpus.iter().map(|g| g.minor).collect();
                let caps: Vec<u32> = pl.gpus.iter().flat_map(|g| g.caps_minors.clone()).collect();
                image::rootfs::mount_plan(
                    p,
                    &spec.sandbox,
                    tmp_bytes,
                    image::rootfs::gpu_nodes(&minors, &caps),
                )
            }
            None => InitSpec::mount_plan(&spec.sandbox, &sandbox_target, tmp_bytes),
        };
        let init = InitSpec {
            container_id: plan::container_id(task.task_id.as_str()),
            argv,
            cwd: image_cwd.clone().unwrap_or_else(|| sandbox_target.clone()),
            uid: user.uid,
            gid: user.gid,
            groups: user.groups.clone(),
            namespaces: Namespaces {
                pid: true,
                mount: true,
                uts: true,
                ipc: true,
                net: task.container.private_network,
            },
            cgroup_join: cg.join_files(),
            mounts,
            status_file: status_file.clone(),
            pid_file: pid_file.clone(),
            make_cwd: image_cwd,
        };
        let spec_file = spec.meta_dir.join("container.json");
        let body = serde_json::to_vec(&init).map_err(|e| ContainerError::Other(e.to_string()))?;
        std::fs::write(&spec_file, body).map_err(|source| ContainerError::Io {
            path: spec_file.clone(),
            source,
        })?;
        let mut env = match &prepared {
            Some(p) => {
                let mut e = p.config.merge_env(&spec.env);
                e.insert("MESOS_SANDBOX".into(), sandbox_target.display().to_string());
                e
            }
            None => spec.env.clone(),
        };
        env.extend(plan::gpu_env(task));
        env.insert("USER".into(), user.name.clone());
        phases.sandbox_us = lap();
        let status = std::process::Command::new(&self.cfg.shim_exe)
            .arg(init::CONTAINER_ARG)
            .arg(&spec_file)
            .env_clear()
            .envs(&env)
            .current_dir(&spec.sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .map_err(|e| {
                ContainerError::Launch(format!("cannot start the container's init: {e}"))
            })?;
        phases.launcher_us = lap();
        let reported = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let pid: i32 = match reported.trim().parse() {
            Ok(p) if status.success() => p,
            _ => {
                let why = reported
                    .trim()
                    .strip_prefix("error: ")
                    .unwrap_or(reported.trim());
                return Err(ContainerError::Launch(format!(
                    "the container's launcher failed ({status}): {}",
                    if why.is_empty() {
                        "see the sandbox's stderr"
                    } else {
                        why
                    }
                )));
            }
        };
        let start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or(0);
        phases.adopt_us = lap();
        tracing::debug!(?phases, "container launched");
        *self.last_launch.lock().unwrap_or_else(|p| p.into_inner()) = phases;
        Ok(Checkpoint {
            container_id: init.container_id,
            pid,
            start_time,
            status_file,
            cgroup: Some(cg.rel().to_owned()),
        })
    }

    /// The task's image pulled (what the store lacks) and its rootfs dirs made; `None` for a
    /// task without an image. Runs the pull on the agent's runtime from this blocking thread.
    fn prepare_image(&self, spec: &LaunchSpec) -> Result<Option<image::Prepared>, ContainerError> {
        let Some(name) = &spec.task.container.image else {
            return Ok(None);
        };
        let images = self.cfg.images.as_ref().ok_or_else(|| {
            ContainerError::Launch("this agent does not run container images".into())
        })?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| ContainerError::Launch(format!("cannot pull {name}: {e}")))?;
        let cid = plan::container_id(spec.task.task_id.as_str());
        handle
            .block_on(images.prepare(name, &cid))
            .map(Some)
            .map_err(|e| ContainerError::Launch(e.to_string()))
    }

    /// Removes the image rootfs dirs of `container` (none for a task without an image).
    fn release_image(&self, container: &str) {
        if let Some(i) = &self.cfg.images {
            i.store().release(container);
        }
    }

    /// How the container ended: the init's record, and the memory limit if the OOM killer acted.
    fn termination(&self, ckpt: &Checkpoint) -> Termination {
        let mut t = termination_of(ckpt);
        if self.cgroup_of(ckpt).is_some_and(|cg| cg.oom_killed()) {
            t.limitation = Some(Reason::ReasonContainerLimitationMemory);
            t.message = format!(
                "Memory limit exceeded: the task was OOM-killed ({})",
                t.message
            );
        }
        t
    }

    /// SIGKILLs every process in the cgroup while it is frozen, so none can fork meanwhile.
    fn kill_all_frozen(cg: &ContainerCgroup) {
        let frozen = cg.set_frozen(true).is_ok();
        for p in cg.pids() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        if frozen {
            let _ = cg.set_frozen(false);
        }
    }
}

/// Is the init still running? Reaps it when it is our child (it is, through the subreaper).
fn alive(ckpt: &Checkpoint) -> bool {
    match waitpid(Pid::from_raw(ckpt.pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => true,
        Ok(_) => false,
        Err(_) => procfs::is_alive(ckpt.pid, ckpt.start_time),
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, ContainerError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ContainerError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Gives the sandbox (and what was fetched into it) to the task's user. Symlinks are not followed.
fn chown_tree(root: &Path, uid: u32, gid: u32) -> Result<(), ContainerError> {
    use nix::unistd::{Gid, Uid};
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &p,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ContainerError::Io {
            path: p.clone(),
            source: e.into(),
        })?;
        if p.is_dir() && !p.is_symlink() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
    }
    Ok(())
}

impl Containerizer for NativeContainerizer {
    fn name(&self) -> &'static str {
        "native"
    }

    /// The user the policy picks for the task, reached through the agent's own binary.
    fn run_as(&self, task: &gantry_proto::TaskInfo) -> Result<RunAs, ContainerError> {
        let (user, _) = self
            .cfg
            .users
            .resolve(task.command.user.as_deref())
            .map_err(|e| ContainerError::Launch(e.to_string()))?;
        Ok(RunAs::User {
            user,
            helper: self.cfg.shim_exe.clone(),
        })
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Checkpoint, ContainerError> {
        let _span = tracing::info_span!("native_launch", task = %spec.task.task_id).entered();
        let rel =
            Path::new(&self.cfg.cgroup_parent).join(plan::container_id(spec.task.task_id.as_str()));
        let cg = ContainerCgroup::new(self.cfg.layout.clone(), rel);
        match self.launch_inner(spec, &cg) {
            Ok(c) => Ok(c),
            Err(e) => {
                Self::kill_all_frozen(&cg);
                let _ = cg.destroy(Duration::from_secs(1));
                self.release_image(&plan::container_id(spec.task.task_id.as_str()));
                Err(e)
            }
        }
    }

    fn wait(&self, ckpt: &Checkpoint) -> BoxFuture<Termination> {
        let ckpt = ckpt.clone();
        let this = Self {
            cfg: self.cfg.clone(),
            last_launch: std::sync::Mutex::default(),
        };
        Box::pin(async move {
            let started = Instant::now();
            while alive(&ckpt) {
                let fast = started.elapsed() < Duration::from_millis(200);
                tokio::time::sleep(Duration::from_millis(if fast { 5 } else { 50 })).await;
            }
            this.termination(&ckpt)
        })
    }

    fn kill(&self, ckpt: &Checkpoint, grace: Duration) -> BoxFuture<()> {
        let ckpt = ckpt.clone();
        let cg = self.cgroup_of(&ckpt);
        let span = tracing::info_span!("native_kill", container = %ckpt.container_id);
        Box::pin(tracing::Instrument::instrument(
            async move {
                let Some(cg) = cg else { return };
                // SIGTERM to everything but the init (which would forward it to the task a second time).
                for p in cg.pids().into_iter().filter(|p| *p != ckpt.pid) {
                    let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
                }
                let deadline = tokio::time::Instant::now() + grace;
                while alive(&ckpt) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Whatever is left: frozen, then SIGKILLed, until the cgroup is empty.
                let until = Instant::now() + Duration::from_secs(10);
                loop {
                    if cg.pids().is_empty() && !alive(&ckpt) {
                        break;
                    }
                    Self::kill_all_frozen(&cg);
                    if Instant::now() > until {
                        tracing::error!("processes survive SIGKILL in the container's cgroup");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            span,
        ))
    }

    fn recover(&self, ckpt: &Checkpoint) -> Recovered {
        if alive(ckpt) {
            Recovered::Running
        } else {
            Recovered::Exited(self.termination(ckpt))
        }
    }

    fn usage(&self, ckpt: &Checkpoint) -> Result<Usage, ContainerError> {
        let cg = self
            .cgroup_of(ckpt)
            .ok_or_else(|| ContainerError::Other("the container has no cgroup".into()))?;
        let s = cg
            .stats()
            .map_err(|e| ContainerError::Other(e.to_string()))?;
        Ok(Usage {
            cpus_user_time_secs: s.cpu_user_secs,
            cpus_system_time_secs: s.cpu_system_secs,
            mem_rss_bytes: s.mem_rss_bytes,
            mem_total_bytes: s.mem_total_bytes,
            mem_limit_bytes: s.mem_limit_bytes,
            cpus_nr_periods: s.cpu_nr_periods,
            cpus_nr_throttled: s.cpu_nr_throttled,
            cpus_throttled_time_secs: s.cpu_throttled_secs,
        })
    }

    fn cleanup(&self, ckpt: &Checkpoint) {
        let Some(cg) = self.cgroup_of(ckpt) else {
            return;
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !cg.pids().is_empty() && Instant::now() < until {
            Self::kill_all_frozen(&cg);
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Err(e) = cg.destroy(Duration::from_secs(2)) {
            tracing::error!(container = %ckpt.container_id, error = %e, "cannot remove the container's cgroup");
        }
        self.release_image(&ckpt.container_id);
    }

    fn destroy_unrecorded(&self, task: &gantry_proto::TaskInfo, meta_dir: &Path) {
        // A launcher that had not joined the cgroup yet is found by its command line...
        let spec_file = meta_dir.join("container.json");
        for pid in crate::recovery::orphans::processes_with(init::CONTAINER_ARG, &spec_file) {
            tracing::warn!(task = %task.task_id, pid, "killing a container launcher the agent never checkpointed");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // ...and everything that got into the container by its cgroup, which is then removed.
        let rel =
            Path::new(&self.cfg.cgroup_parent).join(plan::container_id(task.task_id.as_str()));
        let cg = ContainerCgroup::new(self.cfg.layout.clone(), rel);
        let until = Instant::now() + Duration::from_secs(5);
        while !cg.pids().is_empty() && Instant::now() < until {
            tracing::warn!(task = %task.task_id, "killing a container the agent never checkpointed");
            Self::kill_all_frozen(&cg);
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = cg.destroy(Duration::from_secs(2));
        self.release_image(&plan::container_id(task.task_id.as_str()));
    }
}
