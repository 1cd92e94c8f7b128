//! Marathon's response shapes (spec §3.1, §3.2): AppInfo with counts, tasks and lastTaskFailure,
//! and Task, with timestamps as ISO-8601 UTC with milliseconds and `Z`.

use crate::services::app_definition::AppDefinition;
use crate::state::MasterState;
use crate::store::records::{TaskOwner, TaskRecord};
use gantry_proto::TaskState;
use serde_json::{json, Map, Value};

/// Seconds since the epoch as Marathon writes timestamps (`2015-09-25T15:13:48.343Z`).
pub fn iso(secs: f64) -> String {
    chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A task as Marathon returns it.
pub fn task(st: &MasterState, t: &TaskRecord, with_service_ports: bool) -> Value {
    let host = st.cluster.hostname(t);
    let service_ports: Vec<u32> = if with_service_ports {
        t.app_id()
            .and_then(|a| st.services.apps.get(a))
            .map(|a| a.port_definitions.iter().map(|p| p.port).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut v = json!({
        "id": t.info.task_id,
        "appId": t.owner.name(),
        "host": host,
        "slaveId": t.info.agent_id,
        "state": t.state.name(),
        "stagedAt": iso(t.staged_at),
        "version": app_version(t),
        "ports": t.info.ports,
        "servicePorts": service_ports,
        "ipAddresses": crate::events::emit::ip_addresses(&host),
        "healthCheckResults": health_results(t),
    });
    if let (Some(started), Some(obj)) = (t.started_at, v.as_object_mut()) {
        obj.insert("startedAt".into(), json!(iso(started)));
    }
    v
}

/// The task's `healthCheckResults` (spec §3.3), one per check that has a result (in the order of
/// the app's checks), with both
/// `taskId` and `instanceId` (marathon-python reads either).
fn health_results(t: &TaskRecord) -> Value {
    let instance = crate::services::path_id::instance_of(&t.info.task_id.0);
    let ts = |x: Option<f64>| x.map_or(Value::Null, |x| json!(iso(x)));
    Value::Array(
        t.health
            .iter()
            .filter(|r| !r.is_pending())
            .map(|r| {
                json!({
                    "alive": r.alive,
                    "consecutiveFailures": r.consecutive_failures,
                    "firstSuccess": ts(r.first_success),
                    "lastFailure": ts(r.last_failure),
                    "lastSuccess": ts(r.last_success),
                    "lastFailureCause": r.last_failure_cause,
                    "taskId": t.info.task_id,
                    "instanceId": instance,
                })
            })
            .collect(),
    )
}

/// The app version a task runs (empty for tasks that are not an app's).
fn app_version(t: &TaskRecord) -> &str {
    match &t.owner {
        TaskOwner::App { version, .. } => version,
        TaskOwner::JobRun { .. } => "",
    }
}

/// An AppInfo: the app plus counts and deployments; with `full`, also tasks and lastTaskFailure.
pub fn app_info(st: &MasterState, app: &AppDefinition, full: bool) -> Value {
    let mut v = serde_json::to_value(app).unwrap_or_else(|_| Value::Object(Map::new()));
    let (staged, running) = st.cluster.app_counts(&app.id);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("tasksStaged".into(), json!(staged));
        obj.insert("tasksRunning".into(), json!(running));
        let (healthy, unhealthy) = st.cluster.app_tasks(&app.id).fold((0, 0), |(h, u), t| {
            (
                h + usize::from(crate::services::health::is_healthy(t)),
                u + usize::from(crate::services::health::is_unhealthy(t)),
            )
        });
        obj.insert("tasksHealthy".into(), json!(healthy));
        obj.insert("tasksUnhealthy".into(), json!(unhealthy));
        let deployments: Vec<Value> = st
            .services
            .locking([app.id.as_str()])
            .into_iter()
            .map(|id| json!({ "id": id }))
            .collect();
        obj.insert("deployments".into(), Value::Array(deployments));
        if full {
            let tasks: Vec<Value> = st
                .cluster
                .app_tasks(&app.id)
                .map(|t| task(st, t, false))
                .collect();
            obj.insert("tasks".into(), Value::Array(tasks));
            if let Some(f) = last_failure(st, &app.id) {
                obj.insert("lastTaskFailure".into(), f);
            }
        }
    }
    v
}

/// Adds the app's `lastTaskFailure` to an AppInfo that lacks it (queue items: the app's own
/// failure is why it is delayed).
pub fn add_last_failure(st: &MasterState, app_id: &str, info: &mut Value) {
    if let (Some(f), Some(obj)) = (last_failure(st, app_id), info.as_object_mut()) {
        obj.insert("lastTaskFailure".into(), f);
    }
}

/// Instances of `app` that are missing: its instance count less its tasks that are not being
/// killed.
pub fn missing_instances(st: &MasterState, app: &AppDefinition) -> usize {
    let have = st
        .cluster
        .app_tasks(&app.id)
        .filter(|t| !t.kill_requested && !t.expunged)
        .count();
    (app.instances as usize).saturating_sub(have)
}

/// Why instances of `app` are not running, as a Gantry extension of the AppInfo (`waiting`, only
/// with `embed=app.waiting` / `embed=apps.waiting`, since strict clients reject unknown keys):
/// the placement reason (what no agent offers), the launch delay after failures and the last
/// failure's message. `None` when nothing waits.
pub fn waiting(st: &MasterState, app: &AppDefinition, now: f64) -> Option<Value> {
    let delay = st
        .services
        .launch_delays
        .get(&app.id)
        .filter(|d| d.until > now);
    let w = st.services.waiting.get(&app.id);
    if delay.is_none() && w.is_none() {
        return None;
    }
    let mut out = Map::new();
    out.insert(
        "count".into(),
        json!(w.map_or_else(|| missing_instances(st, app), |w| w.count)),
    );
    if let Some(w) = w {
        out.insert("reason".into(), json!(w.reason));
        out.insert("since".into(), json!(iso(w.since)));
    }
    if let Some(d) = delay {
        out.insert(
            "delay".into(),
            json!({"timeLeftSeconds": (d.until - now).ceil() as i64}),
        );
    }
    if let Some(msg) =
        last_failure(st, &app.id).and_then(|f| f["message"].as_str().map(String::from))
    {
        out.insert("lastFailureMessage".into(), json!(msg));
    }
    Some(Value::Object(out))
}

/// True when the query's `embed` asks for `readinessCheckResults` (`apps.readiness`,
/// `app.readiness`, `group.apps.readiness` or plain `readiness`).
pub fn embeds_readiness<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == "readiness" || e.ends_with(".readiness"))
}

/// Adds `readinessCheckResults` to an AppInfo: the results of the app's new tasks while a
/// deployment changes it, `[]` otherwise.
pub fn add_readiness(st: &MasterState, app: &AppDefinition, info: &mut Value) {
    let results = crate::services::readiness::results_of(&st.services, &st.cluster, &app.id);
    if let Some(obj) = info.as_object_mut() {
        obj.insert(
            "readinessCheckResults".into(),
            serde_json::to_value(results).unwrap_or_else(|_| json!([])),
        );
    }
}

/// True when the query's `embed` asks for the `waiting` extension.
pub fn embeds_waiting<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == "app.waiting" || e == "apps.waiting")
}

fn last_failure(st: &MasterState, app_id: &str) -> Option<Value> {
    let t = st.cluster.completed.iter().rev().find(|t| {
        t.app_id() == Some(app_id) && (t.state == TaskState::TaskFailed || t.killed_unhealthy())
    })?;
    let status = t.status.as_ref();
    let message = match t.health_kill_cause() {
        Some(cause) if t.state == TaskState::TaskKilled => {
            format!("Task was killed since health check failed. Reason: {cause}")
        }
        _ => status.and_then(|s| s.message.clone()).unwrap_or_default(),
    };
    Some(json!({
        "appId": app_id,
        "host": st.cluster.agents.get(&t.info.agent_id).map(|a| a.record.info.hostname.clone()).unwrap_or_default(),
        "message": message,
        "state": t.state.name(),
        "taskId": t.info.task_id,
        "timestamp": iso(status.map_or(t.staged_at, |s| s.timestamp)),
        "version": app_version(t),
        "slaveId": t.info.agent_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn timestamps_end_in_z_with_millis() {
        assert_eq!(iso(1443194028.343), "2015-09-25T15:13:48.343Z");
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000Z");
    }
}
