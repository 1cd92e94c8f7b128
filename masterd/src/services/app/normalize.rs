//! Normalization (Marathon's `AppNormalization`): defaults, relative ids, and the deprecated forms
//! translated into the canonical ones (`uris` -> `fetch`, `ports` -> `portDefinitions`,
//! `docker.network` / `ipAddress` -> `networks`, `docker.portMappings` -> `container.portMappings`).
//! Conflicting forms answer 422 `{"message":...}`.

use super::container::{Container, ContainerKind, PortMapping};
use super::error::AppError;
use super::model::{
    default_networks, default_role, AppDefinition, FetchUri, Network, NetworkMode, PortDefinition,
};
use super::read::{AppInput, DockerNetwork};
use super::strategies::{UnreachableStrategy, UpgradeStrategy};
use crate::services::path_id;

/// Archive extensions that make a deprecated `uris` entry `extract: true`.
const ARCHIVE_EXTENSIONS: [&str; 9] = [
    ".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".tgz", ".tbz2", ".txz", ".zip",
];

/// The normalized app, plus semantic problems found on the way (reported with the validation
/// errors, as 422 `Object is not valid`).
pub(super) struct Normalized {
    pub app: AppDefinition,
    pub issues: Vec<(String, String)>,
}

fn conflict(msg: &str) -> AppError {
    AppError::Unprocessable(msg.to_string())
}

/// Builds the canonical app from what was sent; relative ids resolve against the group `base`.
pub(super) fn normalize(input: AppInput, base: &str) -> Result<Normalized, AppError> {
    let mut issues: Vec<(String, String)> = Vec::new();
    let AppInput {
        id,
        cmd,
        args,
        user,
        instances,
        cpus,
        mem,
        disk,
        gpus,
        numa_policy,
        gpu_profile,
        gang,
        gang_timeout_seconds,
        env,
        labels,
        ports,
        port_definitions,
        require_ports,
        networks,
        container,
        ip_address,
        health_checks,
        readiness_checks,
        constraints,
        fetch,
        uris,
        dependencies,
        accepted_resource_roles,
        upgrade_strategy,
        unreachable_strategy,
        kill_selection,
        backoff_seconds,
        backoff_factor,
        max_launch_delay_seconds,
        executor,
        role,
        residency,
        task_kill_grace_period_seconds,
        secret_paths,
    } = input;

    // Identity.
    let raw_id = id.unwrap_or_default();
    let id = match path_id::resolve(&raw_id, base) {
        Ok(id) => {
            if let Err(e) = path_id::validate_app_id(&id) {
                issues.push(("/id".into(), e.to_string()));
            }
            id
        }
        Err(e) => {
            issues.push(("/id".into(), e.to_string()));
            path_id::normalize(&raw_id)
        }
    };
    let parent = path_id::parent(&id);
    let dependencies = dependencies
        .iter()
        .enumerate()
        .map(|(i, d)| {
            path_id::resolve(d, &parent).unwrap_or_else(|e| {
                issues.push((format!("/dependencies({i})"), e.to_string()));
                path_id::normalize(d)
            })
        })
        .collect();
    for path in secret_paths {
        issues.push((
            path,
            "Feature secrets is not enabled: Gantry has no secret store; pass the value directly \
             (or fetch it into the sandbox) instead of a secret reference"
                .into(),
        ));
    }

    // Networks: `networks`, else the deprecated `docker.network` / `ipAddress`, else host.
    let docker_network = container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .and_then(|d| d.network);
    let networks_given = networks.as_ref().is_some_and(|n| !n.is_empty());
    if networks_given && docker_network.is_some() {
        return Err(conflict(
            "cannot mix the deprecated container.docker.network with networks: remove \
             container.docker.network and keep networks",
        ));
    }
    if networks_given && ip_address.is_some() {
        return Err(conflict(
            "cannot mix the deprecated ipAddress with networks: remove ipAddress and keep networks",
        ));
    }
    let ip_network = ip_address.as_ref().map(|ip| Network {
        mode: NetworkMode::Container,
        name: ip.network_name.clone(),
        labels: ip.labels.clone(),
    });
    let networks = match (networks.filter(|n| !n.is_empty()), docker_network) {
        (Some(n), _) => n,
        (None, Some(DockerNetwork::Host)) => default_networks(),
        (None, Some(DockerNetwork::Bridge)) => vec![Network {
            mode: NetworkMode::ContainerBridge,
            ..Network::default()
        }],
        (None, Some(DockerNetwork::User)) => vec![ip_network.clone().unwrap_or(Network {
            mode: NetworkMode::Container,
            ..Network::default()
        })],
        (None, Some(DockerNetwork::None)) => {
            return Err(conflict(
                "container.docker.network NONE is not supported: use networks with mode host, \
                 container/bridge or container",
            ))
        }
        (None, None) => ip_network.map(|n| vec![n]).unwrap_or_else(default_networks),
    };
    let host = networks.iter().all(|n| n.mode == NetworkMode::Host);
    let bridge = networks
        .iter()
        .any(|n| n.mode == NetworkMode::ContainerBridge);

    // Ports: `portDefinitions` (host networking) or port mappings (other networks).
    let ports_given = ports.as_ref().is_some_and(|p| !p.is_empty());
    let defs_given = port_definitions.as_ref().is_some_and(|p| !p.is_empty());
    if ports_given && defs_given {
        return Err(conflict(
            "You cannot specify both ports and port definitions: ports is deprecated, use \
             portDefinitions",
        ));
    }
    let port_definitions = if host {
        match (port_definitions, ports) {
            (Some(defs), None) => defs,
            (Some(defs), Some(_)) if !ports_given => defs,
            (_, Some(ports)) => ports
                .into_iter()
                .map(|port| PortDefinition {
                    port,
                    ..PortDefinition::default_port()
                })
                .map(|p| PortDefinition { name: None, ..p })
                .collect(),
            (None, None) => vec![PortDefinition::default_port()],
        }
    } else {
        for (key, given) in [("/portDefinitions", defs_given), ("/ports", ports_given)] {
            if given {
                issues.push((
                    key.into(),
                    "port definitions are only allowed with host networking: use \
                     container.portMappings on container networks"
                        .into(),
                ));
            }
        }
        Vec::new()
    };

    let container = match container {
        None if host => None,
        None => Some(Container {
            kind: ContainerKind::Mesos,
            docker: None,
            volumes: Vec::new(),
            port_mappings: None,
        }),
        Some(c) => {
            let (docker, docker_mappings) = match c.docker {
                Some(d) => (Some(d.docker), d.port_mappings),
                None => (None, None),
            };
            let both = c.port_mappings.as_ref().is_some_and(|m| !m.is_empty())
                && docker_mappings.as_ref().is_some_and(|m| !m.is_empty());
            if both {
                return Err(conflict(
                    "cannot specify both container.docker.portMappings and \
                     container.portMappings: move them all to container.portMappings",
                ));
            }
            let port_mappings = match (c.port_mappings, docker_mappings) {
                (Some(m), _) if !m.is_empty() => Some(m),
                (_, Some(m)) if !m.is_empty() => Some(m),
                (m, d) => m.or(d),
            };
            Some(Container {
                kind: c.kind,
                docker,
                volumes: c.volumes,
                port_mappings,
            })
        }
    };
    let container = container.map(|mut c| {
        let mappings = c.port_mappings.take().or_else(|| {
            ip_address
                .as_ref()
                .filter(|ip| !ip.discovery_ports.is_empty())
                .map(|ip| ip.discovery_ports.clone())
        });
        if host {
            if mappings.as_ref().is_some_and(|m| !m.is_empty()) {
                issues.push((
                    "/container/portMappings".into(),
                    "portMappings are not allowed with host-networking: use portDefinitions, or \
                     a container/bridge or container network"
                        .into(),
                ));
            }
        } else {
            let mut mappings = mappings.unwrap_or_else(|| vec![PortMapping::default_for(bridge)]);
            if bridge {
                for m in &mut mappings {
                    m.host_port.get_or_insert(0);
                }
            }
            c.port_mappings = Some(mappings);
        }
        c
    });

    // Fetch: `fetch`, or the deprecated `uris`.
    if !fetch.is_empty() && !uris.is_empty() {
        return Err(conflict(
            "cannot specify both uris and fetch fields: uris is deprecated, use fetch",
        ));
    }
    let fetch = if fetch.is_empty() {
        uris.into_iter()
            .map(|uri| FetchUri {
                extract: ARCHIVE_EXTENSIONS.iter().any(|ext| uri.ends_with(ext)),
                executable: false,
                cache: false,
                dest_path: None,
                uri,
            })
            .collect()
    } else {
        fetch
    };

    let mut app = AppDefinition {
        id,
        cmd,
        args: args.filter(|a| !a.is_empty()),
        user,
        env,
        labels,
        port_definitions,
        task_kill_grace_period_seconds,
        require_ports: require_ports.unwrap_or(false),
        networks,
        container,
        health_checks,
        readiness_checks,
        constraints,
        fetch,
        dependencies,
        accepted_resource_roles,
        role: role.unwrap_or_else(default_role),
        residency,
        ..AppDefinition::with_defaults("")
    };
    app.instances = instances.unwrap_or(app.instances);
    app.cpus = cpus.unwrap_or(app.cpus);
    app.mem = mem.unwrap_or(app.mem);
    app.disk = disk.unwrap_or(app.disk);
    app.gpus = gpus.unwrap_or(app.gpus);
    app.numa_policy = numa_policy;
    if let Some(p) = &gpu_profile {
        if let Some(why) = gpu_profile_issue(p, app.gpus) {
            issues.push(("/gpuProfile".into(), why));
        }
    }
    app.gpu_profile = gpu_profile;
    app.gang = gang.unwrap_or(false);
    app.gang_timeout_seconds = gang_timeout_seconds;
    app.executor = executor.unwrap_or_default();
    app.backoff_seconds = backoff_seconds.unwrap_or(app.backoff_seconds);
    app.backoff_factor = backoff_factor.unwrap_or(app.backoff_factor);
    app.max_launch_delay_seconds = max_launch_delay_seconds.unwrap_or(app.max_launch_delay_seconds);
    app.kill_selection = kill_selection.unwrap_or_default();
    let resident = app.is_resident();
    // A gang is replaced whole (the old gang ends before the new one is placed): say so.
    app.upgrade_strategy = upgrade_strategy.unwrap_or(if resident || app.gang {
        UpgradeStrategy::resident_default()
    } else {
        UpgradeStrategy::default()
    });
    app.unreachable_strategy = unreachable_strategy.unwrap_or(if resident {
        UnreachableStrategy::Disabled
    } else {
        UnreachableStrategy::default()
    });

    // Health checks address port 0 by default when the app has ports.
    let has_ports = !app.service_ports().is_empty();
    for hc in &mut app.health_checks {
        hc.fill_protocol_defaults();
        if hc.protocol.needs_port() && hc.port.is_none() && hc.port_index.is_none() && has_ports {
            hc.port_index = Some(0);
        }
    }
    Ok(Normalized { app, issues })
}

/// Why `gpuProfile` is refused, if it is: not a MIG profile name, or on an app without GPUs.
pub(crate) fn gpu_profile_issue(profile: &str, gpus: u32) -> Option<String> {
    if !gantry_gpu::is_valid_profile(profile) {
        return Some(format!(
            "'{profile}' is not a MIG profile: expected <g>g.<GB>gb such as 1g.10gb or 3g.40gb \
             (optionally <c>c. before it and +me after it)"
        ));
    }
    (gpus == 0).then(|| "gpuProfile needs gpus of at least 1".to_string())
}
