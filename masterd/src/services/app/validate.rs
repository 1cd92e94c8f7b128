//! Semantic validation of a normalized app (Marathon's `AppValidation`, spec §2.1–2.8): every rule
//! checked, every failure collected as `(path, message)` for 422 `Object is not valid`.

use super::checks::HealthCheckProtocol;
use super::constraints::Constraint;
use super::container::ContainerKind;
use super::json_reader::index;
use super::model::{AppDefinition, NetworkMode};
use super::strategies::UnreachableStrategy;
use std::collections::BTreeSet;

const PROTOCOLS: [&str; 4] = ["tcp", "udp", "udp,tcp", "tcp,udp"];

/// Every semantic problem of `app`, as `(path, message)`.
pub(super) fn validate(app: &AppDefinition) -> Vec<(String, String)> {
    let mut v = Vec::new();
    super::limits::limit_rules(app, &mut v);
    command_rules(app, &mut v);
    network_rules(app, &mut v);
    port_rules(app, &mut v);
    container_rules(app, &mut v);
    health_check_rules(app, &mut v);
    readiness_rules(app, &mut v);
    strategy_rules(app, &mut v);
    gang_rules(app, &mut v);
    for (i, c) in app.constraints.iter().enumerate() {
        if let Err(e) = Constraint::from_parts(c) {
            v.push((index("/constraints", i), e));
        }
    }
    if let Err(e) = check_role(&app.role) {
        v.push(("/role".into(), e));
    }
    for (i, r) in app.accepted_resource_roles.iter().enumerate() {
        if let Err(e) = check_role(r) {
            v.push((index("/acceptedResourceRoles", i), e));
        }
    }
    v
}

fn command_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let has_cmd = app.cmd.is_some();
    let has_args = app.args.as_ref().is_some_and(|a| !a.is_empty());
    if has_cmd && has_args {
        v.push((
            "/".into(),
            "AppDefinition must not contain both 'cmd' and 'args': keep only one of them".into(),
        ));
    } else if !has_cmd && !has_args && app.container.is_none() {
        v.push((
            "/".into(),
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
                .into(),
        ));
    }
    let docker = app
        .container
        .as_ref()
        .is_some_and(|c| c.kind == ContainerKind::Docker);
    if app.gpus > 0 && docker {
        v.push((
            "/".into(),
            "GPU resources only work with the Mesos containerizer: set container.type to MESOS"
                .into(),
        ));
    }
}

fn network_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let n = &app.networks;
    let hosts = n.iter().filter(|x| x.mode == NetworkMode::Host).count();
    let bridges = n
        .iter()
        .filter(|x| x.mode == NetworkMode::ContainerBridge)
        .count();
    if hosts > 0 && hosts < n.len() {
        v.push((
            "/networks".into(),
            "host networking may not be mixed with container networks: use either one host \
             network or container networks"
                .into(),
        ));
    } else if hosts > 1 {
        v.push((
            "/networks".into(),
            "may contain at most one host network".into(),
        ));
    }
    if bridges > 0 && n.len() > 1 {
        v.push((
            "/networks".into(),
            "a container/bridge network must be the only network of an app".into(),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, net) in n.iter().enumerate() {
        let path = format!("{}/name", index("/networks", i));
        match (net.mode, &net.name) {
            (NetworkMode::Container, None) => v.push((
                path,
                "is required for networks in container mode: name the CNI or Docker network".into(),
            )),
            (NetworkMode::Container, Some(name)) => {
                if !names.insert(name) {
                    v.push(("/networks".into(), "Networks must have unique names".into()));
                }
            }
            (_, Some(_)) => v.push((
                path,
                "must not be given for host and container/bridge networks".into(),
            )),
            (_, None) => {}
        }
    }
}

fn port_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let defs = app
        .port_definitions
        .iter()
        .map(|p| (p.port, &p.protocol, &p.name));
    check_ports("/portDefinitions", defs, v);
    let maps = app
        .port_mappings()
        .iter()
        .map(|m| (m.service_port, &m.protocol, &m.name));
    check_ports("/container/portMappings", maps, v);
    for (i, m) in app.port_mappings().iter().enumerate() {
        if m.host_port.is_none() && app.is_bridge_networking() {
            v.push((
                format!("{}/hostPort", index("/container/portMappings", i)),
                "is required on the bridge network".into(),
            ));
        }
    }
}

fn check_ports<'a>(
    base: &str,
    ports: impl Iterator<Item = (u32, &'a String, &'a Option<String>)>,
    v: &mut Vec<(String, String)>,
) {
    let mut seen_ports = BTreeSet::new();
    let mut seen_names = BTreeSet::new();
    for (i, (port, protocol, name)) in ports.enumerate() {
        if !PROTOCOLS.contains(&protocol.as_str()) {
            v.push((
                format!("{}/protocol", index(base, i)),
                format!("'{protocol}' is not a protocol: use tcp, udp or udp,tcp"),
            ));
        }
        if port != 0 && !seen_ports.insert(port) {
            v.push((base.into(), "ports must be unique".into()));
        }
        if let Some(name) = name {
            if !seen_names.insert(name) {
                v.push((base.into(), "Port names must be unique.".into()));
            }
        }
    }
}

fn container_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let Some(c) = &app.container else { return };
    match (&c.docker, c.kind) {
        (None, ContainerKind::Docker) => v.push((
            "/container/docker".into(),
            "must not be empty: a DOCKER container needs docker.image".into(),
        )),
        (Some(d), ContainerKind::Mesos) if d.privileged => v.push((
            "/container/docker/privileged".into(),
            "is only supported by the DOCKER containerizer".into(),
        )),
        _ => {}
    }
    if let Some(d) = &c.docker {
        if !d.image.is_empty() {
            if let Err(e) = gantry_proto::ImageRef::parse(&d.image) {
                v.push(("/container/docker/image".into(), e.why));
            }
        }
    }
    for (i, vol) in c.volumes.iter().enumerate() {
        let kinds = ["hostPath", "persistent", "external", "secret"]
            .iter()
            .filter(|k| vol.get(**k).is_some())
            .count();
        if kinds > 1 {
            v.push((
                index("/container/volumes", i),
                "a volume is exactly one of host (hostPath), persistent, external or secret".into(),
            ));
        }
        if kinds == 0 && c.kind == ContainerKind::Mesos {
            v.push((
                format!("{}/hostPath", index("/container/volumes", i)),
                "is required for a host volume (or give persistent or external)".into(),
            ));
        }
    }
}

fn health_check_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let port_count = app.service_ports().len();
    let docker = app
        .container
        .as_ref()
        .is_some_and(|c| c.kind == ContainerKind::Docker);
    let mesos_checks = app
        .health_checks
        .iter()
        .filter(|h| h.protocol.is_mesos_level())
        .count();
    if mesos_checks > 1 {
        v.push((
            "/healthChecks".into(),
            "AppDefinition can contain at most one Mesos health check (COMMAND, MESOS_HTTP, \
             MESOS_HTTPS or MESOS_TCP)"
                .into(),
        ));
    }
    for (i, hc) in app.health_checks.iter().enumerate() {
        let path = index("/healthChecks", i);
        if hc.protocol == HealthCheckProtocol::Command && hc.command.is_none() {
            v.push((
                format!("{path}/command"),
                "is required for COMMAND health checks: give {\"value\": \"<shell command>\"}"
                    .into(),
            ));
        }
        if hc.protocol.needs_port() && hc.port.is_none() {
            let addressed = hc.port_index.is_some_and(|p| (p as usize) < port_count);
            if !addressed {
                v.push((
                    path.clone(),
                    "Health check port indices must address an element of the ports array or \
                     container port mappings."
                        .into(),
                ));
            }
        }
        let mesos_net = matches!(
            hc.protocol,
            HealthCheckProtocol::MesosHttp
                | HealthCheckProtocol::MesosHttps
                | HealthCheckProtocol::MesosTcp
        );
        if hc.ip_protocol.as_deref() == Some("IPv6") && !(docker && mesos_net) {
            v.push((
                format!("{path}/ipProtocol"),
                "IPv6 is only supported with DOCKER containers and MESOS_HTTP(S)/MESOS_TCP checks"
                    .into(),
            ));
        }
    }
}

fn readiness_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    if app.readiness_checks.len() > 1 {
        v.push((
            "/readinessChecks".into(),
            "must have at most one readiness check".into(),
        ));
    }
    let names: Vec<&str> = if app.is_host_networking() {
        app.port_definitions
            .iter()
            .filter_map(|p| p.name.as_deref())
            .collect()
    } else {
        app.port_mappings()
            .iter()
            .filter_map(|m| m.name.as_deref())
            .collect()
    };
    for (i, rc) in app.readiness_checks.iter().enumerate() {
        let path = index("/readinessChecks", i);
        if rc.timeout_seconds >= rc.interval_seconds {
            v.push((
                path.clone(),
                format!(
                    "timeoutSeconds ({}) must be less than intervalSeconds ({})",
                    rc.timeout_seconds, rc.interval_seconds
                ),
            ));
        }
        if !names.contains(&rc.port_name.as_str()) {
            v.push((
                path.clone(),
                format!(
                    "No port definition reference for portName {}: name a port definition or \
                     mapping",
                    rc.port_name
                ),
            ));
        }
        if rc.http_status_codes_for_ready.is_empty() {
            v.push((
                format!("{path}/httpStatusCodesForReady"),
                "must not be empty".into(),
            ));
        }
    }
}

fn strategy_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    let us = app.upgrade_strategy;
    for (key, val) in [
        ("minimumHealthCapacity", us.minimum_health_capacity),
        ("maximumOverCapacity", us.maximum_over_capacity),
    ] {
        let path = format!("/upgradeStrategy/{key}");
        if val < 0.0 {
            v.push((path, "is less than 0".into()));
        } else if val > 1.0 {
            v.push((path, "is greater than 1".into()));
        }
    }
    let resident = app.is_resident();
    if resident && us.maximum_over_capacity != 0.0 {
        v.push((
            "/upgradeStrategy/maximumOverCapacity".into(),
            "must be 0 for resident apps (apps with persistent volumes)".into(),
        ));
    }
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds: i,
        expunge_after_seconds: e,
    } = app.unreachable_strategy
    {
        if i > e {
            v.push((
                "/unreachableStrategy".into(),
                format!(
                    "inactiveAfterSeconds ({i}) must be less or equal to expungeAfterSeconds, \
                     which is {e}"
                ),
            ));
        }
        if resident {
            v.push((
                "/unreachableStrategy".into(),
                "must be \"disabled\" for resident apps (apps with persistent volumes)".into(),
            ));
        }
    }
    let single = app
        .labels
        .get("MARATHON_SINGLE_INSTANCE_APP")
        .is_some_and(|l| l.eq_ignore_ascii_case("true"));
    if single {
        if app.instances > 1 {
            v.push((
                "/instances".into(),
                "must be 0 or 1 for single-instance apps (label MARATHON_SINGLE_INSTANCE_APP)"
                    .into(),
            ));
        }
        if us.minimum_health_capacity != 0.0 || us.maximum_over_capacity != 0.0 {
            v.push((
                "/upgradeStrategy".into(),
                "must be {\"minimumHealthCapacity\":0,\"maximumOverCapacity\":0} for \
                 single-instance apps (label MARATHON_SINGLE_INSTANCE_APP)"
                    .into(),
            ));
        }
    }
}

/// The most instances of a gang app (as a gang job's `gangSize`).
pub const MAX_GANG_SIZE: u32 = 4096;

/// `gang` and `gangTimeoutSeconds` (docs/gang.md). `instances: 0` is allowed: a suspended gang app
/// runs no gang. The `upgradeStrategy` is not refused: a gang app is always replaced whole.
fn gang_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    if !app.gang {
        if app.gang_timeout_seconds.is_some() {
            v.push((
                "/gangTimeoutSeconds".into(),
                "gangTimeoutSeconds applies to gang apps only: add \"gang\": true or remove it"
                    .into(),
            ));
        }
        return;
    }
    if app.instances > MAX_GANG_SIZE {
        v.push((
            "/instances".into(),
            format!(
                "a gang app has at most {MAX_GANG_SIZE} instances (its ranks); {} asked",
                app.instances
            ),
        ));
    }
    if app.is_resident() {
        v.push((
            "/gang".into(),
            "gang apps cannot have persistent volumes: a gang is relaunched whole, on any agents"
                .into(),
        ));
    }
}

/// A Mesos role name: not empty, `.` or `..`; no `/` prefix, `-` prefix, whitespace or `/`.
fn check_role(role: &str) -> Result<(), String> {
    let bad = role.is_empty()
        || role == "."
        || role == ".."
        || role.starts_with('-')
        || role
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\\');
    if bad {
        return Err(format!(
            "'{role}' is not a valid role: use '*' or a name without '/', whitespace or a \
             leading '-'"
        ));
    }
    Ok(())
}
