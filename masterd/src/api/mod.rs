//! HTTP surfaces of the master, one module per API, merged into one router on one port, behind
//! one guard (authentication, limits, error shapes, the audit log).

pub mod agent_link;
pub mod audit;
pub mod guard;
pub mod marathon;
pub mod mesos;
pub mod rate_limit;
pub mod surface;

use crate::cluster::Core;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use guard::Security;
use std::sync::Arc;

/// The master's whole router.
pub fn router(core: Arc<Core>, security: Arc<Security>) -> Router {
    let body_limit = security.limits.max_body_bytes;
    Router::new()
        .merge(marathon::router())
        .merge(mesos::router())
        .route("/gantry/v1/audit", get(audit::list))
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
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(security, guard::guard))
        .with_state(core)
}
