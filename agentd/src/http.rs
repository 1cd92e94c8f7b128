//! The agent's own HTTP endpoint: `GET /state` (Mesos agent state shape, §6.6, plus the NUMA
//! domains, GPUs with their health, and topology warnings), `GET /health` and
//! `GET /monitor/statistics` (per-container CPU and memory, Mesos shape, plus the readings of the
//! task's GPUs), and Mesos's `/files` endpoints over the sandboxes ([`crate::files`]). Every route
//! but `/health` needs a credential ([`crate::http_auth`]).

use crate::http_auth::AgentAuth;
use crate::tasks::TaskTable;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use gantry_proto::AgentInfo;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the handlers read.
#[derive(Clone)]
pub struct AgentHttp {
    pub tasks: Arc<TaskTable>,
    /// The registration info, updated when GPU health changes.
    pub info: tokio::sync::watch::Receiver<AgentInfo>,
    /// Where the GPUs come from (fixture, NVML, none and why).
    pub gpu_source: String,
    /// Where the per-task GPU readings come from (NVML, a metrics fixture, none and why).
    pub gpu_metrics_source: String,
    pub master: String,
    pub started_at: f64,
    pub registered: tokio::sync::watch::Receiver<bool>,
    /// Who may call every route but `/health`.
    pub auth: AgentAuth,
}

/// The agent's router.
pub fn router(state: AgentHttp) -> Router {
    let sandboxes = state.tasks.work_dir().sandboxes_dir();
    let guarded = Router::new()
        .route("/state", get(agent_state))
        .route("/state.json", get(agent_state))
        .route("/slave(1)/state", get(agent_state))
        .route("/monitor/statistics", get(statistics))
        .route("/monitor/statistics.json", get(statistics))
        .merge(crate::files::router(sandboxes))
        .route_layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            crate::http_auth::require,
        ));
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .merge(guarded)
        .with_state(state)
}

async fn agent_state(State(s): State<AgentHttp>) -> Json<Value> {
    let id = s.tasks.agent_id().map(|a| a.0).unwrap_or_default();
    let agent = s.info.borrow().clone();
    let mut tasks = Vec::new();
    let mut completed = Vec::new();
    for (info, state) in s.tasks.list() {
        let t = json!({
            "id": info.task_id,
            "name": info.name,
            "framework_id": info.labels.get("framework_id").cloned().unwrap_or_else(|| "marathon".into()),
            "executor_id": "",
            "slave_id": id,
            "state": state.name(),
            "resources": info.resources,
            "placement": info.placement,
            // Mesos puts it on the executor; one task per executor here.
            "directory": s.tasks.work_dir().sandbox(&info.task_id).display().to_string(),
        });
        if state.is_terminal() {
            completed.push(t);
        } else {
            tasks.push(t);
        }
    }
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "start_time": s.started_at,
        "id": id,
        "pid": format!("slave(1)@{}:{}", agent.hostname, agent.port),
        "hostname": agent.hostname,
        "registered": *s.registered.borrow(),
        "resources": agent.resources,
        "attributes": agent.attributes,
        "numa_domains": agent.numa_domains,
        "gpus": agent.gpus,
        "gpu_inventory": s.gpu_source,
        "gpu_metrics": s.gpu_metrics_source,
        "topology_warnings": agent.topology_warnings,
        "master_hostname": s.master,
        "flags": {"work_dir": s.tasks.work_dir().root().display().to_string()},
        "frameworks": [{
            "id": "marathon",
            "name": "marathon",
            "executors": [{
                "id": "",
                "name": "Command Executor",
                "source": "",
                "tasks": tasks,
                "queued_tasks": [],
                "completed_tasks": completed,
            }],
            "completed_executors": [],
        }],
        "completed_frameworks": [],
    }))
}

/// `/monitor/statistics`: one entry per running task, as Mesos's agent writes it.
async fn statistics(State(s): State<AgentHttp>) -> Json<Value> {
    let now = gantry_proto::time::now_secs();
    let entries: Vec<Value> = s
        .tasks
        .usage()
        .into_iter()
        .map(|(info, u)| {
            let framework = info
                .labels
                .get("framework_id")
                .cloned()
                .unwrap_or_else(|| "marathon".into());
            let mut stats = json!({
                "timestamp": now,
                "cpus_limit": info.resources.cpus,
                "cpus_user_time_secs": u.cpus_user_time_secs,
                "cpus_system_time_secs": u.cpus_system_time_secs,
                "cpus_nr_periods": u.cpus_nr_periods,
                "cpus_nr_throttled": u.cpus_nr_throttled,
                "cpus_throttled_time_secs": u.cpus_throttled_time_secs,
                "mem_rss_bytes": u.mem_rss_bytes,
                "mem_total_bytes": u.mem_total_bytes,
            });
            if let Some(l) = u.mem_limit_bytes {
                stats["mem_limit_bytes"] = json!(l);
            }
            // Gantry: the task's GPUs as last sampled (Mesos has no GPU statistics).
            let gpus = s.tasks.gpu_usage(&info);
            if !gpus.is_empty() {
                stats["gpu_usage"] = json!(gpus);
            }
            json!({
                "executor_id": info.task_id,
                "executor_name": format!("Command Executor (Task: {})", info.task_id),
                "framework_id": framework,
                "source": info.task_id,
                "statistics": stats,
            })
        })
        .collect();
    Json(Value::Array(entries))
}
