//! The Docker containerizer: tasks with a `container.docker` run as containers of the host's
//! Docker daemon (through bollard and the Engine API), labelled with their task id so an agent
//! restart finds them again. `create` plans a container, `network` and `volumes` its parts,
//! `parameters` the allowed `docker run` options, `client` the daemon and its images, `logs` the
//! output into the sandbox, `recover` what the daemon says after a restart.

pub mod client;
pub mod create;
pub mod logs;
pub mod network;
pub mod parameters;
pub mod recover;
pub mod settings;
pub mod volumes;

use super::{
    procfs, BoxFuture, Checkpoint, ContainerError, Containerizer, LaunchSpec, Recovered, RunAs,
    Termination, Usage,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use client::DockerClient;
use futures_util::StreamExt;
use gantry_proto::TaskInfo;
use recover::Found;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The prefix of a Docker checkpoint's `container_id` (then the daemon's container id).
pub const CHECKPOINT_PREFIX: &str = "docker:";
/// The label holding the task's sandbox, so a re-adopted container's output finds its files.
const SANDBOX_LABEL: &str = "gantry.sandbox";

/// What the agent lets Docker tasks do.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerPolicy {
    /// `--docker-allow-privileged`: `privileged: true` runs (refused otherwise).
    pub allow_privileged: bool,
    /// `--docker-parameters`: the `docker run` keys tasks may give.
    pub parameters: Vec<String>,
    /// `--docker-host-paths`: where `hostPath` volumes may come from (`None`: anywhere).
    pub host_paths: Option<Vec<PathBuf>>,
}

impl Default for DockerPolicy {
    fn default() -> Self {
        Self {
            allow_privileged: false,
            host_paths: None,
            parameters: parameters::DEFAULT_ALLOWED
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// The Docker containerizer's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerConfig {
    /// The daemon's socket (`--docker-socket`, default `/var/run/docker.sock`).
    pub socket: PathBuf,
    pub policy: DockerPolicy,
}

/// Runs tasks in Docker containers.
pub struct DockerContainerizer {
    client: Arc<DockerClient>,
    policy: DockerPolicy,
    /// The log followers of running containers, by container id.
    followers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// The daemon's container id in a Docker checkpoint.
pub fn container_id(ckpt: &Checkpoint) -> Option<&str> {
    ckpt.container_id.strip_prefix(CHECKPOINT_PREFIX)
}

impl DockerContainerizer {
    /// Connects to the daemon; fails when it does not answer.
    pub fn connect(cfg: &DockerConfig) -> Result<Self, String> {
        Ok(Self {
            client: Arc::new(DockerClient::connect(&cfg.socket)?),
            policy: cfg.policy.clone(),
            followers: Mutex::new(HashMap::new()),
        })
    }

    /// The daemon's user networks (every network but `bridge`, `host` and `none`): the
    /// container networks Docker tasks here may join (`networks: [{mode: container, name}]`).
    pub fn user_networks(&self) -> Result<Vec<String>, String> {
        let docker = self.docker();
        let mut names: Vec<String> = self
            .client
            .block(async move { docker.list_networks(None).await })
            .map_err(|e| format!("cannot list the Docker networks: {e}"))?
            .into_iter()
            .filter_map(|n| n.name)
            .filter(|n| !["bridge", "host", "none"].contains(&n.as_str()))
            .collect();
        names.sort();
        Ok(names)
    }

    fn docker(&self) -> Docker {
        self.client.docker.clone()
    }

    fn start_following(&self, id: &str, sandbox: PathBuf, since: i32) {
        let handle = self
            .client
            .spawn(logs::follow(self.docker(), id.to_string(), sandbox, since));
        if let Some(old) = self
            .followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), handle)
        {
            old.abort();
        }
    }

    fn take_follower(&self, id: &str) -> Option<tokio::task::JoinHandle<()>> {
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }
}

fn launch_error(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Launch(e.to_string())
}

/// Waits until container `id` is not running; `false` when the daemon does not know it.
async fn wait_not_running(docker: &Docker, id: &str) -> bool {
    loop {
        let opts = WaitContainerOptions {
            condition: "not-running".into(),
        };
        match docker.wait_container(id, Some(opts)).next().await {
            Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {
                return true
            }
            Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })) => return false,
            Some(Err(e)) => {
                tracing::warn!(container = id, error = %e, "waiting for a container; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Containerizer for DockerContainerizer {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run_as(&self, _task: &TaskInfo) -> Result<RunAs, ContainerError> {
        // The container's user is the image's (or --user's) inside its own user table; what the
        // agent fetches into the sandbox it reads as itself.
        Ok(RunAs::Agent)
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Checkpoint, ContainerError> {
        let d = spec
            .task
            .container
            .docker
            .as_ref()
            .ok_or_else(|| launch_error("the task has no Docker container"))?;
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        let exists = |p: &str| Path::new(p).exists();
        let devices = create::HostDevices {
            proc_devices: &proc_devices,
            exists: &exists,
        };
        let mut plan = create::plan(spec, d, &self.policy, &devices).map_err(launch_error)?;
        for dir in &plan.sandbox_dirs {
            std::fs::create_dir_all(dir).map_err(|source| ContainerError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        if let Some(labels) = plan.body.labels.as_mut() {
            labels.insert(SANDBOX_LABEL.into(), spec.sandbox.display().to_string());
        }
        let docker = self.docker();
        let image = d.image.clone();
        let force = d.force_pull_image;
        let (id, pid) = self
            .client
            .block(async move {
                client::ensure_image(&docker, &image, force).await?;
                // A container of this name left by an earlier try of the same task is not running it.
                let _ = docker
                    .remove_container(
                        &plan.name,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..RemoveContainerOptions::default()
                        }),
                    )
                    .await;
                let opts = CreateContainerOptions {
                    name: Some(plan.name.clone()),
                    ..CreateContainerOptions::default()
                };
                let created = docker
                    .create_container(Some(opts), plan.body)
                    .await
                    .map_err(|e| format!("cannot create the Docker container: {e}"))?;
                if let Err(e) = docker.start_container(&created.id, None).await {
                    let _ = docker
                        .remove_container(
                            &created.id,
                            Some(RemoveContainerOptions {
                                force: true,
                                ..RemoveContainerOptions::default()
                            }),
                        )
                        .await;
                    return Err(format!("cannot start the Docker container: {e}"));
                }
                let pid = match docker.inspect_container(&created.id, None).await {
                    Ok(c) => c.state.and_then(|s| s.pid).unwrap_or(0),
                    Err(_) => 0,
                };
                Ok::<_, String>((created.id, i32::try_from(pid).unwrap_or(0)))
            })
            .map_err(launch_error)?;
        self.start_following(&id, spec.sandbox.clone(), 0);
        tracing::info!(task = %spec.task.task_id, container = %id, pid, image = %d.image, "Docker container started");
        Ok(Checkpoint {
            container_id: format!("{CHECKPOINT_PREFIX}{id}"),
            pid,
            start_time: procfs::stat(pid).map_or(0, |s| s.start_time),
            status_file: spec.meta_dir.join("docker_container"),
            cgroup: None,
        })
    }

    fn wait(&self, ckpt: &Checkpoint) -> BoxFuture<Termination> {
        let Some(id) = container_id(ckpt).map(String::from) else {
            return Box::pin(async { recover::gone() });
        };
        let docker = self.docker();
        let follower = self.take_follower(&id);
        let handle = self.client.spawn(async move {
            loop {
                if !wait_not_running(&docker, &id).await {
                    return recover::gone();
                }
                if let Some(f) = follower.as_ref() {
                    // The output ends with the container; let the last of it reach the files.
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        while !f.is_finished() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    })
                    .await;
                }
                match recover::inspect(&docker, &id).await {
                    Found::Ended(t) => return t,
                    Found::Gone => return recover::gone(),
                    Found::Running => continue,
                    Found::Unreachable(e) => {
                        tracing::warn!(container = %id, error = %e, "inspecting an ended container; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Box::pin(async move { handle.await.unwrap_or_else(|_| recover::gone()) })
    }

    fn kill(&self, ckpt: &Checkpoint, grace: Duration) -> BoxFuture<()> {
        let Some(id) = container_id(ckpt).map(String::from) else {
            return Box::pin(async {});
        };
        let docker = self.docker();
        let secs = create::grace_secs(grace.as_secs_f64());
        let handle = self.client.spawn(async move {
            let opts = StopContainerOptions {
                t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
                signal: None,
            };
            if let Err(e) = docker.stop_container(&id, Some(opts)).await {
                tracing::debug!(container = %id, error = %e, "docker stop");
            }
            wait_not_running(&docker, &id).await;
        });
        Box::pin(async move {
            let _ = handle.await;
        })
    }

    fn recover(&self, ckpt: &Checkpoint) -> Recovered {
        let Some(id) = container_id(ckpt).map(String::from) else {
            return Recovered::Exited(recover::gone());
        };
        let docker = self.docker();
        let probe = id.clone();
        let (found, sandbox) = self.client.block(async move {
            let sandbox = docker
                .inspect_container(&probe, None)
                .await
                .ok()
                .and_then(|c| c.config?.labels?.remove(SANDBOX_LABEL));
            (recover::inspect(&docker, &probe).await, sandbox)
        });
        match found {
            Found::Running => {
                if let Some(sb) = sandbox.map(PathBuf::from) {
                    let since = logs::resume_since(&sb);
                    self.start_following(&id, sb, since);
                }
                Recovered::Running
            }
            Found::Ended(t) => Recovered::Exited(t),
            Found::Gone => Recovered::Exited(recover::gone()),
            Found::Unreachable(e) => {
                // Watched as running: its waiter retries until the daemon answers.
                tracing::warn!(container = %id, error = %e, "the Docker daemon does not answer; the container is watched until it does");
                Recovered::Running
            }
        }
    }

    fn usage(&self, ckpt: &Checkpoint) -> Result<Usage, ContainerError> {
        if ckpt.pid <= 0 || !procfs::is_alive(ckpt.pid, ckpt.start_time) {
            return Err(ContainerError::Other("the container is not running".into()));
        }
        let tick = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        let mut u = Usage::default();
        for (_, s) in procfs::group_members(ckpt.pid) {
            u.cpus_user_time_secs += s.utime_ticks as f64 / tick;
            u.cpus_system_time_secs += s.stime_ticks as f64 / tick;
            u.mem_rss_bytes += s.rss_pages * page;
        }
        u.mem_total_bytes = u.mem_rss_bytes;
        Ok(u)
    }

    fn cleanup(&self, ckpt: &Checkpoint) {
        let Some(id) = container_id(ckpt).map(String::from) else {
            return;
        };
        if let Some(f) = self.take_follower(&id) {
            f.abort();
        }
        let docker = self.docker();
        // Not waited for: the task's end is reported at once; the removal follows.
        self.client.spawn(async move {
            let opts = RemoveContainerOptions {
                force: true,
                ..RemoveContainerOptions::default()
            };
            if let Err(e) = docker.remove_container(&id, Some(opts)).await {
                tracing::debug!(container = %id, error = %e, "docker rm");
            }
        });
    }

    fn destroy_unrecorded(&self, task: &TaskInfo, _meta_dir: &Path) {
        let docker = self.docker();
        let task_id = task.task_id.to_string();
        let removed = self.client.block(async move {
            let ids = recover::containers_of(&docker, &task_id).await?;
            for id in &ids {
                let opts = RemoveContainerOptions {
                    force: true,
                    ..RemoveContainerOptions::default()
                };
                let _ = docker.remove_container(id, Some(opts)).await;
            }
            Ok::<_, String>(ids)
        });
        match removed {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(task = %task.task_id, containers = ?ids, "removed containers the agent never checkpointed")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(task = %task.task_id, error = %e, "cannot list the task's containers")
            }
        }
    }
}
