//! `/v2/info` and `/v2/leader`: this master is always the leader (one master, or the one that holds
//! the store); its address is the one it listens on, or the request's `Host` when it listens on
//! every address.

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
