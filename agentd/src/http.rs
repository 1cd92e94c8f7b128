//! The agent's own HTTP endpoint: `GET /state` (Mesos agent state shape, §6.6, plus the NUMA
//! domains, GPUs with their health, and topology warnings) and `GET /health`.

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
    pub master: String,
    pub started_at: f64,
    pub registered: tokio::sync::watch::Receiver<bool>,
}

/// The agent's router.
pub fn router(state: AgentHttp) -> Router {
    Router::new()
        .route("/state", get(agent_state))
        .route("/state.json", get(agent_state))
        .route("/slave(1)/state", get(agent_state))
        .route("/health", get(|| async { "OK" }))
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
