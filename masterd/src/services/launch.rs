//! Turning an app definition into the task an agent launches: command, environment, resources,
//! and the NUMA placement (GPUs, cores, memory node) the allocator chose.

use super::app_definition::{AppDefinition, UnreachableStrategy};
use super::path_id;
use gantry_proto::{
    AgentId, CommandInfo, ContainerSpec, FetchUri, NumaPlacement, PortRanges, Resources, TaskId,
    TaskInfo,
};
use std::collections::BTreeMap;

/// The resources one instance asks for, without ports.
pub fn instance_resources(app: &AppDefinition) -> Resources {
    Resources {
        cpus: app.cpus,
        mem: app.mem,
        disk: app.disk,
        gpus: app.gpus,
        ports: PortRanges::default(),
    }
}

/// A fresh Marathon task id for an instance of `app_id`.
pub fn new_task_id(app_id: &str) -> TaskId {
    TaskId(path_id::new_task_id(app_id))
}

/// The app's `unreachableStrategy` as (inactiveAfterSeconds, expungeAfterSeconds); `None` when it
/// is disabled (unreachable instances are never replaced).
pub fn unreachable_after(app: &AppDefinition) -> Option<(f64, f64)> {
    match app.unreachable_strategy {
        UnreachableStrategy::Disabled => None,
        UnreachableStrategy::Enabled {
            inactive_after_seconds,
            expunge_after_seconds,
        } => Some((inactive_after_seconds as f64, expunge_after_seconds as f64)),
    }
}

/// The task for one instance of `app`, placed on `agent` with host `ports` and, when the placement
/// bound it, the GPUs, PUs and memory node chosen there.
pub fn task_info(
    app: &AppDefinition,
    id: TaskId,
    agent: AgentId,
    ports: Vec<u16>,
    placement: Option<NumaPlacement>,
) -> TaskInfo {
    let env = super::task_env::task_env(app, &ports);
    let health_checks = super::health::task_checks(app, &ports);
    let command = match (&app.cmd, &app.args) {
        (Some(cmd), _) => CommandInfo {
            value: Some(cmd.clone()),
            shell: true,
            ..CommandInfo::default()
        },
        (None, Some(args)) => CommandInfo {
            value: args.first().cloned(),
            arguments: args.clone(),
            shell: false,
            ..CommandInfo::default()
        },
        (None, None) => CommandInfo::default(),
    };
    let mut labels = BTreeMap::new();
    labels.insert("app_id".into(), app.id.clone());
    labels.insert("app_version".into(), app.version.clone());
    labels.insert("framework_id".into(), "marathon".into());
    TaskInfo {
        name: path_id::safe_id(&app.id),
        task_id: id,
        agent_id: agent,
        command: CommandInfo {
            environment: env,
            user: app.user.clone(),
            uris: app
                .fetch
                .iter()
                .map(|f| FetchUri {
                    uri: f.uri.clone(),
                    extract: f.extract,
                    executable: f.executable,
                    cache: f.cache,
                    dest_path: f.dest_path.clone(),
                })
                .collect(),
            ..command
        },
        resources: Resources {
            ports: PortRanges::from_ports(&ports),
            ..instance_resources(app)
        },
        ports,
        kill_grace_period_secs: app.task_kill_grace_period_seconds.unwrap_or(3.0),
        labels,
        placement,
        container: ContainerSpec {
            docker: super::docker_task::docker_spec(app),
            image: super::docker_task::native_image(app),
            ..ContainerSpec::default()
        },
        health_checks,
    }
}
