//! The services controller's side of health checks (spec §2.6): each app's `healthChecks` turned
//! into the checks its tasks' agent runs, which tasks count as healthy, and the kill of a task
//! whose check reached `maxConsecutiveFailures`, after its replacement is healthy when the app's
//! `maximumOverCapacity` leaves room for both, at once otherwise.

use super::app::HealthCheckProtocol;
use super::app_definition::AppDefinition;
use super::state::ServiceState;
use crate::cluster::ClusterState;
use crate::store::records::TaskRecord;
use gantry_proto::{HealthCheckSpec, HealthProtocol, TaskId, TaskState};

/// The host port at `index` of an app's ports (port definitions on host networking, port mappings
/// otherwise), given the task's host `ports` (which skip mappings without a host port).
pub(super) fn host_port_at(app: &AppDefinition, ports: &[u16], index: usize) -> Option<u16> {
    if app.is_host_networking() {
        return ports.get(index).copied();
    }
    let mappings = app.port_mappings();
    mappings.get(index)?.host_port?;
    let nth = mappings[..index]
        .iter()
        .filter(|m| m.host_port.is_some())
        .count();
    ports.get(nth).copied()
}

/// The checks a task of `app` with host `ports` runs: `port` wins over `portIndex`; MESOS_*
/// protocols run as their Marathon-level namesakes, flagged Mesos-level for
/// `maxConsecutiveFailures: 0`.
pub fn task_checks(app: &AppDefinition, ports: &[u16]) -> Vec<HealthCheckSpec> {
    app.health_checks
        .iter()
        .map(|hc| {
            use HealthCheckProtocol as P;
            let protocol = match hc.protocol {
                P::Http | P::MesosHttp => HealthProtocol::Http,
                P::Https | P::MesosHttps => HealthProtocol::Https,
                P::Tcp | P::MesosTcp => HealthProtocol::Tcp,
                P::Command => HealthProtocol::Command,
            };
            let port = match (hc.port, hc.port_index) {
                (Some(p), _) => u16::try_from(p).ok(),
                (None, Some(i)) => host_port_at(app, ports, i as usize),
                (None, None) => None,
            };
            HealthCheckSpec {
                protocol,
                path: hc.path.clone().unwrap_or_else(|| "/".into()),
                port: port.filter(|_| hc.protocol.needs_port()),
                command: hc.command.as_ref().map(|c| c.value.clone()),
                grace_period_secs: hc.grace_period_seconds as f64,
                interval_secs: hc.interval_seconds as f64,
                timeout_secs: hc.timeout_seconds as f64,
                max_consecutive_failures: hc.max_consecutive_failures,
                mesos_level: hc.protocol.is_mesos_level(),
                ignore_http1xx: hc.ignore_http1xx.unwrap_or(false),
            }
        })
        .collect()
}

/// A running task whose every check has a result and is alive (never true without checks, as
/// Marathon's `tasksHealthy`).
pub fn is_healthy(t: &TaskRecord) -> bool {
    t.state == TaskState::TaskRunning
        && !t.info.health_checks.is_empty()
        && t.health.len() == t.info.health_checks.len()
        && t.health.iter().all(|r| r.alive && !r.is_pending())
}

/// A task one of whose checks reports a failure (Marathon's `tasksUnhealthy`); a check without a
/// result yet does not count.
pub fn is_unhealthy(t: &TaskRecord) -> bool {
    t.state == TaskState::TaskRunning && t.health.iter().any(|r| !r.alive && !r.is_pending())
}

/// A task that is to be killed for failed health checks and is not being killed yet. It no longer
/// counts toward its app's instances, so the controller starts its replacement.
pub fn is_doomed(t: &TaskRecord) -> bool {
    !t.kill_requested && t.health_kill_cause().is_some()
}

/// Doomed tasks (see [`is_doomed`]) to kill now. For each app, up to
/// `floor(instances × (1 + maximumOverCapacity)) − instances` of them (the oldest first) stay up
/// until the app has `instances` other tasks running and, where the app has checks, healthy; the
/// rest are killed at once.
pub fn kills_due(st: &ClusterState, svc: &ServiceState) -> Vec<TaskId> {
    let mut out = Vec::new();
    for app in svc.apps.values() {
        let live: Vec<&TaskRecord> = st
            .app_tasks(&app.id)
            .filter(|t| !t.kill_requested && !t.expunged)
            .collect();
        let mut doomed: Vec<&TaskRecord> = live.iter().copied().filter(|t| is_doomed(t)).collect();
        if doomed.is_empty() {
            continue;
        }
        doomed.sort_by(|a, b| a.staged_at.total_cmp(&b.staged_at));
        let want = app.instances as usize;
        let over = app.upgrade_strategy.maximum_over_capacity.clamp(0.0, 1.0);
        let capacity = (want as f64 * (1.0 + over)).floor() as usize;
        let room = capacity.saturating_sub(want);
        let serving = live
            .iter()
            .filter(|t| !is_doomed(t) && t.state == TaskState::TaskRunning)
            .filter(|t| t.info.health_checks.is_empty() || is_healthy(t))
            .count();
        for (i, t) in doomed.into_iter().enumerate() {
            if i >= room || serving >= want {
                tracing::info!(
                    task = %t.info.task_id,
                    cause = t.health_kill_cause().unwrap_or_default(),
                    "killing a task that failed its health checks"
                );
                out.push(t.info.task_id.clone());
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
