//! `/v2/info` and `/v2/leader`: this master is always the leader (one master, or the one that holds
//! the store); its address is the one it listens on, or the request's `Host` when it listens on
//! every address. `DELETE /v2/leader` abdicates: an HA master leaves the group and starts again as
//! a standby; the one master without `--zk` has no one to hand over to and says so (409).

use crate::cluster::Core;
use crate::services::state::SERVICE_PORTS;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// `host:port` of this master as clients reach it.
fn leader(core: &Core, headers: &HeaderMap) -> String {
    let listen = core.cfg.listen;
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("localhost:{}", listen.port()))
}

/// `GET /v2/leader`: 200 `{"leader": "host:port"}`.
pub async fn get_leader(State(core): State<Arc<Core>>, headers: HeaderMap) -> Json<Value> {
    Json(json!({ "leader": leader(&core, &headers) }))
}

/// `DELETE /v2/leader` (spec §1.7): 200 `{"message": "Leadership abdicated"}`, then, after 500 ms
/// (as Marathon waits before it exits), this master leaves the masters' group: another one leads
/// and this one executes itself again as a contender. Marathon's `backup` and `restore` are not
/// supported and are refused. Without `--zk` a 409: stepping down would leave the cluster with
/// no master (Marathon exits there and relies on its supervisor).
pub async fn delete_leader(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    if let Some(k) = ["backup", "restore"].iter().find(|k| q.contains_key(**k)) {
        let msg = format!(
            "'{k}' is not supported: Gantry's state lives in its store, not in a backup file"
        );
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": msg })));
    }
    if !crate::ha::can_abdicate() {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"message": "This master runs alone (no --zk): there is no other master to take over"}),
            ),
        );
    }
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tracing::warn!("leadership abdicated (DELETE /v2/leader): leaving the masters' group");
        crate::ha::abdicate();
    });
    (
        StatusCode::OK,
        Json(json!({"message": "Leadership abdicated"})),
    )
}

/// `GET /v2/info` (spec §1.7, §3.8): Marathon's keys, with Gantry's values.
pub async fn get_info(State(core): State<Arc<Core>>, headers: HeaderMap) -> Json<Value> {
    let leader = leader(&core, &headers);
    let port = core.cfg.listen.port();
    Json(json!({
        "name": "marathon",
        "version": "1.10.0",
        "buildref": concat!("gantry-", env!("CARGO_PKG_VERSION")),
        "elected": true,
        "leader": leader,
        "frameworkId": "marathon",
        "marathon_config": {
            "master": leader,
            "mesos_role": "*",
            "local_port_min": SERVICE_PORTS.start(),
            "local_port_max": SERVICE_PORTS.end(),
            "features": [],
            "hostname": leader.rsplit_once(':').map_or(leader.as_str(), |(h, _)| h),
            "task_launch_timeout": 300000,
            "task_reservation_timeout": 20000,
            "checkpoint": true,
            "executor": "//cmd",
            "failover_timeout": 604800,
            "framework_name": "marathon",
            "ha": false,
            "leader_proxy_connection_timeout_ms": 5000,
            "leader_proxy_read_timeout_ms": 10000,
            "mesos_leader_ui_url": format!("http://{leader}/"),
            "webui_url": null,
        },
        "zookeeper_config": {},
        "http_config": {"http_port": port, "https_port": 8443},
    }))
}
