//! `GET /gantry/v1/audit?since=SEQ&limit=N` (admin only): the audit log of every mutation, oldest
//! first after `since`, at most `limit` (default 100, at most 1000) entries.

use super::marathon::query::Query;
use super::surface::Surface;
use crate::cluster::Core;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

pub async fn list(State(core): State<Arc<Core>>, Query(q): Query) -> Response {
    let parse = |key: &str, default: u64| -> Result<u64, String> {
        match q.first(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("'{key}' must be a whole number, got '{v}'")),
        }
    };
    let (since, limit) = match (parse("since", 0), parse("limit", 100)) {
        (Ok(s), Ok(l)) => (s, l.clamp(1, 1000) as usize),
        (Err(why), _) | (_, Err(why)) => {
            return Surface::Gantry.error(StatusCode::BAD_REQUEST, &why)
        }
    };
    match core.store().audit_log(since, limit).await {
        Ok(entries) => Json(json!({ "entries": entries })).into_response(),
        Err(e) => Surface::Gantry.error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
