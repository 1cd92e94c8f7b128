//! Marathon's error bodies and status codes (spec §3.9), as one error type that renders itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered in Marathon's format.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// 400: the body is not JSON.
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    /// 404 with Marathon's message (`App '/x' does not exist`).
    #[error("{0}")]
    NotFound(String),
    /// 409 with Marathon's message.
    #[error("{0}")]
    Conflict(String),
    /// 500: something failed inside Gantry.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for MarathonError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            MarathonError::InvalidJson(d) => (
                StatusCode::BAD_REQUEST,
                json!({"message": "Invalid JSON", "details": d}),
            ),
            MarathonError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "message": m })),
            MarathonError::Conflict(m) => (StatusCode::CONFLICT, json!({ "message": m })),
            MarathonError::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, json!({ "message": m }))
            }
        };
        (status, Json(body)).into_response()
    }
}
