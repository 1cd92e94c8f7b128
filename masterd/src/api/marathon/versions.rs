//! `GET /v2/apps/{id}/versions` and `/versions/{version}`: every stored version of an app, newest
//! first, and one of them as the bare app JSON.

use super::error::MarathonError;
use crate::state::MasterState;
use axum::Json;
use serde_json::{json, Value};

/// 200 `{"versions": [...]}`, newest first; 404 for an unknown app.
pub fn list(st: &MasterState, id: &str) -> Result<Json<Value>, MarathonError> {
    if !st.services.apps.contains_key(id) {
        return Err(MarathonError::NotFound(format!(
            "App '{id}' does not exist"
        )));
    }
    let versions: Vec<&String> = st
        .services
        .versions
        .get(id)
        .map(|v| v.keys().rev().collect())
        .unwrap_or_default();
    Ok(Json(json!({ "versions": versions })))
}

/// 200 with the app as it was in `version` (no `app` wrapper); 404 `App '/x' does not exist in
/// version <v>`.
pub fn one(st: &MasterState, id: &str, version: &str) -> Result<Json<Value>, MarathonError> {
    if !st.services.apps.contains_key(id) {
        return Err(MarathonError::NotFound(format!(
            "App '{id}' does not exist"
        )));
    }
    let app = st.services.version(id, version).ok_or_else(|| {
        MarathonError::NotFound(format!("App '{id}' does not exist in version {version}"))
    })?;
    Ok(Json(serde_json::to_value(app).unwrap_or_default()))
}
