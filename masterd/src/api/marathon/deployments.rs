//! `/v2/deployments`: the deployments in progress in Marathon's shape (spec §3.5), and cancelling
//! one, with a rollback (200 with the rollback's deployment result) or with `force=true` without
//! (202, no body).

use super::apps::deployment_result;
use super::error::MarathonError;
use super::query::{flag, Query};
use crate::cluster::Core;
use crate::services::{readiness, updates};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

/// `GET /v2/deployments`: a JSON array, oldest first.
pub async fn list(State(core): State<Arc<Core>>) -> Json<Value> {
    let st = core.state().await;
    let mut plans: Vec<_> = st.services.deployments.values().collect();
    plans.sort_by(|a, b| a.version.cmp(&b.version).then(a.id.cmp(&b.id)));
    let readiness = |app: &str| {
        serde_json::to_value(readiness::results_of(&st.services, &st.cluster, app))
            .unwrap_or_default()
    };
    Json(Value::Array(
        plans
            .iter()
            .map(|p| p.to_marathon_with(&readiness))
            .collect(),
    ))
}

/// `DELETE /v2/deployments/{id}`.
pub async fn cancel(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    let force = flag(q.first("force"), false);
    match updates::cancel(&core, &id, force).await? {
        None => Ok(StatusCode::ACCEPTED.into_response()),
        Some(d) => Ok(deployment_result(&d.id, &d.version)),
    }
}
