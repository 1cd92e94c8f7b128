//! The `serde_json::Value` rendering of AppInfo and Task that the typed views
//! (`api::marathon::views`) replaced, kept as it was: the reference `masterd/tests/
//! marathon_views.rs` checks the views against, and the "before" of `benches/marathon_apps.rs`.

#![allow(dead_code)]

use gantry_masterd::api::marathon::render::{iso, waiting};
use gantry_masterd::services::app_definition::AppDefinition;
use gantry_masterd::services::health::{is_healthy, is_unhealthy};
use gantry_masterd::state::MasterState;
use gantry_masterd::store::records::{TaskOwner, TaskRecord};
use gantry_proto::{GpuUsage, TaskId, TaskState};
use serde_json::{json, Map, Value};

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
        "ipAddresses": gantry_masterd::events::emit::ip_addresses(&host),
        "healthCheckResults": health_results(t),
    });
    if let (Some(started), Some(obj)) = (t.started_at, v.as_object_mut()) {
        obj.insert("startedAt".into(), json!(iso(started)));
    }
    v
}

fn health_results(t: &TaskRecord) -> Value {
    let instance = gantry_masterd::services::path_id::instance_of(&t.info.task_id.0);
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

fn app_version(t: &TaskRecord) -> &str {
    match &t.owner {
        TaskOwner::App { version, .. } => version,
        TaskOwner::JobRun { .. } | TaskOwner::Framework { .. } => "",
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
                h + usize::from(is_healthy(t)),
                u + usize::from(is_unhealthy(t)),
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

/// Adds the app's `lastTaskFailure` (queue items).
pub fn add_last_failure(st: &MasterState, app_id: &str, info: &mut Value) {
    if let (Some(f), Some(obj)) = (last_failure(st, app_id), info.as_object_mut()) {
        obj.insert("lastTaskFailure".into(), f);
    }
}

/// Adds the `waiting` extension to an AppInfo when something waits.
pub fn add_waiting(st: &MasterState, app: &AppDefinition, info: &mut Value, now: f64) {
    if let (Some(w), Some(obj)) = (waiting(st, app, now), info.as_object_mut()) {
        obj.insert("waiting".into(), w);
    }
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

fn gpu_json(u: &GpuUsage) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(u.uuid));
    m.insert("index".into(), json!(u.index));
    m.insert("sampledAt".into(), json!(iso(u.timestamp)));
    let figures = [
        ("gpuUtilPercent", u.gpu_util_percent.map(|v| json!(v))),
        ("memoryUtilPercent", u.memory_util_percent.map(|v| json!(v))),
        ("memoryUsedBytes", u.memory_used_bytes.map(|v| json!(v))),
        ("memoryTotalBytes", u.memory_total_bytes.map(|v| json!(v))),
        ("powerWatts", u.power_watts.map(|v| json!(v))),
        (
            "temperatureCelsius",
            u.temperature_celsius.map(|v| json!(v)),
        ),
    ];
    for (k, v) in figures {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    m.insert("xidEvents".into(), json!(u.xid_events));
    m.insert("xids".into(), json!(u.xids));
    Value::Object(m)
}

/// Adds `gpuUsage` to every task of a rendered list (`{"tasks": [...]}` or an AppInfo).
pub fn add_gpu_usage(st: &MasterState, holder: &mut Value) {
    let Some(tasks) = holder.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    for task in tasks {
        let Some(obj) = task.as_object_mut() else {
            continue;
        };
        let id = obj.get("id").and_then(Value::as_str).map(TaskId::from);
        let gpus: Vec<Value> = id
            .and_then(|id| st.cluster.usage.get(&id))
            .map(|u| u.gpu_usage.iter().map(gpu_json).collect())
            .unwrap_or_default();
        obj.insert("gpuUsage".into(), Value::Array(gpus));
    }
}

/// `GET /v2/apps` as the handler built it: `{"apps": [...]}`, serialised.
pub fn apps_body(st: &MasterState, tasks: bool, waiting: bool, gpus: bool, now: f64) -> Vec<u8> {
    let apps: Vec<Value> = st
        .services
        .apps
        .values()
        .map(|a| {
            let mut info = app_info(st, a, tasks);
            if waiting {
                add_waiting(st, a, &mut info, now);
            }
            if gpus {
                add_gpu_usage(st, &mut info);
            }
            info
        })
        .collect();
    serde_json::to_vec(&json!({ "apps": apps })).unwrap_or_default()
}
