//! HTTP surfaces of the master, one module per API, merged into one router on one port.

pub mod agent_link;
pub mod marathon;
pub mod mesos;

use crate::cluster::Core;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// The master's whole router.
pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .merge(marathon::router())
        .merge(mesos::router())
        .route(
            gantry_proto::messages::AGENT_CONNECT_PATH,
            get(agent_link::connect),
        )
        .fallback(|| async {
            // Marathon answers unknown routes with 500 "URI not found"; a 404 is what it means.
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"message": "URI not found"})),
            )
        })
        .with_state(core)
}
