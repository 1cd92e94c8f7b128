//! The create request of a task's container: image, command, environment, labels, CPU and memory
//! limits, privileged mode, parameters, network, volumes and the task's GPUs (their device nodes
//! and device-cgroup rules; no nvidia-container-toolkit needed). Pure: the host's devices are
//! inputs.

use super::{network, parameters, volumes, DockerPolicy};
use crate::containerizer::LaunchSpec;
use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig};
use gantry_proto::DockerSpec;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The label that names the task a container runs (how the agent finds its containers again).
pub const TASK_LABEL: &str = "gantry.task_id";
/// The label that marks a container as Gantry's.
pub const MANAGED_LABEL: &str = "gantry.managed";

/// What the host has that a GPU task needs: `/proc/devices` and which device nodes exist.
pub struct HostDevices<'a> {
    pub proc_devices: &'a str,
    pub exists: &'a dyn Fn(&str) -> bool,
}

/// A planned container.
#[derive(Debug)]
pub struct CreatePlan {
    /// The container's name.
    pub name: String,
    pub body: ContainerCreateBody,
    /// Directories to create in the sandbox first (relative host paths).
    pub sandbox_dirs: Vec<PathBuf>,
}

/// A container name for a task id: Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn container_name(task_id: &str) -> String {
    let safe: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("gantry-{safe}")
}

/// The environment inside the container: the task's and the agent's Mesos/Marathon variables,
/// not the agent's own process environment (the image brings its own `PATH`), with
/// `MESOS_SANDBOX` at the sandbox mount and the GPU variables of a confined task.
pub fn container_env(spec: &LaunchSpec) -> Vec<String> {
    let own = &spec.task.command.environment;
    let mut env: BTreeMap<String, String> = spec
        .env
        .iter()
        .filter(|(k, v)| own.contains_key(*k) || std::env::var(k).ok().as_ref() != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.insert(
        "MESOS_SANDBOX".into(),
        volumes::SANDBOX_IN_CONTAINER.to_string(),
    );
    if let Some(p) = spec.task.placement.as_ref().filter(|p| !p.gpus.is_empty()) {
        env.extend(gantry_gpu::assignment_env(&p.gpus, true));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Plans the container of `spec`, whose Docker settings are `docker`.
pub fn plan(
    spec: &LaunchSpec,
    docker: &DockerSpec,
    policy: &DockerPolicy,
    devices: &HostDevices<'_>,
) -> Result<CreatePlan, String> {
    let task = &spec.task;
    if docker.image.is_empty() || docker.image.chars().any(|c| c.is_whitespace()) {
        return Err(format!("'{}' is not a Docker image name", docker.image));
    }
    if docker.privileged && !policy.allow_privileged {
        return Err(
            "privileged Docker containers are not allowed on this agent (its \
             --docker-allow-privileged is off)"
                .into(),
        );
    }
    let net = network::plan(docker, &task.ports)?;
    let vols = volumes::plan(&docker.volumes, &spec.sandbox, policy.host_paths.as_deref())?;
    let mut labels: HashMap<String, String> = HashMap::new();
    labels.insert(TASK_LABEL.into(), task.task_id.to_string());
    labels.insert(MANAGED_LABEL.into(), "true".into());
    let (entrypoint, cmd) = command(&task.command);
    let mut body = ContainerCreateBody {
        image: Some(docker.image.clone()),
        env: Some(container_env(spec)),
        labels: Some(labels),
        entrypoint,
        cmd,
        exposed_ports: (!net.exposed.is_empty()).then_some(net.exposed),
        stop_timeout: Some(grace_secs(task.kill_grace_period_secs)),
        ..ContainerCreateBody::default()
    };
    let r = &task.resources;
    let mem = (r.mem.max(0.0) * 1048576.0) as i64;
    let mut host = HostConfig {
        network_mode: Some(net.mode),
        port_bindings: (!net.bindings.is_empty()).then_some(net.bindings),
        binds: Some(vols.binds),
        mounts: (!vols.mounts.is_empty()).then_some(vols.mounts),
        privileged: Some(docker.privileged),
        cpu_shares: (r.cpus > 0.0).then(|| ((r.cpus * 1024.0) as i64).max(2)),
        nano_cpus: (r.cpus > 0.0).then_some((r.cpus * 1e9) as i64),
        memory: (mem > 0).then_some(mem.max(6 << 20)),
        memory_swap: (mem > 0).then_some(mem.max(6 << 20)),
        ..HostConfig::default()
    };
    if let Some(p) = &task.placement {
        if !p.cpus.is_empty() {
            host.cpuset_cpus = Some(join(&p.cpus));
        }
        if !p.mems.is_empty() {
            host.cpuset_mems = Some(join(&p.mems));
        }
        if !p.gpus.is_empty() {
            gpus(p, devices, &mut host)?;
        }
    }
    parameters::apply(&docker.parameters, &policy.parameters, &mut body, &mut host)?;
    body.host_config = Some(host);
    Ok(CreatePlan {
        name: container_name(&task.task_id.to_string()),
        body,
        sandbox_dirs: vols.sandbox_dirs,
    })
}

/// `docker run`'s entrypoint and command for a task: a shell command runs under `/bin/sh -c` (as
/// Mesos does); an argument vector follows the image's entrypoint; none runs the image's own.
fn command(c: &gantry_proto::CommandInfo) -> (Option<Vec<String>>, Option<Vec<String>>) {
    match (&c.value, c.shell) {
        (Some(v), true) => (
            Some(vec!["/bin/sh".into(), "-c".into()]),
            Some(vec![v.clone()]),
        ),
        (_, false) if !c.arguments.is_empty() => (None, Some(c.arguments.clone())),
        (Some(v), false) => (None, Some(vec![v.clone()])),
        (None, _) => (None, None),
    }
}

/// The task's GPUs: their device nodes (and the control nodes that exist) passed to the
/// container, and the same device-cgroup rules the native containerizer allows.
fn gpus(
    p: &gantry_proto::NumaPlacement,
    devices: &HostDevices<'_>,
    host: &mut HostConfig,
) -> Result<(), String> {
    let minors: Vec<u32> = p.gpus.iter().map(|g| g.minor).collect();
    let caps: Vec<u32> = p.gpus.iter().flat_map(|g| g.caps_minors.clone()).collect();
    let rules = gantry_gpu::gpu_device_rules_for(&minors, &caps, devices.proc_devices);
    let mut nodes: Vec<String> = Vec::new();
    for g in &p.gpus {
        let node = format!("/dev/nvidia{}", g.minor);
        if !(devices.exists)(&node) {
            return Err(format!(
                "GPU {} ({}) has no device node {node} on this agent",
                g.index, g.uuid
            ));
        }
        nodes.push(node);
        nodes.extend(
            g.caps_minors
                .iter()
                .map(|m| format!("/dev/nvidia-caps/nvidia-cap{m}")),
        );
    }
    for control in [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia-modeset",
    ] {
        if (devices.exists)(control) {
            nodes.push(control.to_string());
        }
    }
    nodes.dedup();
    host.devices = Some(
        nodes
            .into_iter()
            .map(|n| DeviceMapping {
                path_on_host: Some(n.clone()),
                path_in_container: Some(n),
                cgroup_permissions: Some("rwm".into()),
            })
            .collect(),
    );
    host.device_cgroup_rules = Some(rules.allow.iter().map(|r| r.to_string()).collect());
    Ok(())
}

/// The kill grace period as Docker's whole seconds (rounded up; at least 0, at most a day).
pub fn grace_secs(secs: f64) -> i64 {
    let d = crate::tasks::grace_period(secs);
    let whole = d.as_secs() as i64;
    if d.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
