//! HTTP surfaces of the master, one module per API, merged into one router on one port, behind
//! one guard (authentication, limits, error shapes, the audit log), with every answer counted for
//! `/metrics`.

pub mod agent_link;
pub mod audit;
pub mod chronos;
pub mod files;
pub mod guard;
pub mod marathon;
pub mod mesos;
pub mod prometheus;
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
        .merge(crate::frameworks::calls::router())
        .merge(chronos::router())
        .merge(files::router())
        .merge(crate::dns::http::router())
        .merge(crate::ui::router())
        .route("/gantry/v1/audit", get(audit::list))
        .route("/metrics", get(prometheus::metrics))
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
        .layer(axum::middleware::from_fn(count_answer))
        .with_state(core)
}

/// Counts every answer by status class for `/metrics` (outside the guard: refusals count too).
async fn count_answer(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let resp = next.run(req).await;
    crate::metrics::HTTP_ANSWERS.record(resp.status().as_u16());
    resp
}
