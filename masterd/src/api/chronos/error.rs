//! Chronos's error answers: `{"message": ..., "status": "<reason phrase>"}` with 400 for a refused
//! job, 404 for an unknown one (Chronos answered 400; 404 is what it means), 500 otherwise.

use crate::batch::actions::BatchError;
use crate::batch::job::JobError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered in Chronos's format.
#[derive(Debug, thiserror::Error)]
pub enum ChronosError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl ChronosError {
    fn status(&self) -> StatusCode {
        match self {
            ChronosError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ChronosError::NotFound(_) => StatusCode::NOT_FOUND,
            ChronosError::Forbidden(_) => StatusCode::FORBIDDEN,
            ChronosError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<JobError> for ChronosError {
    fn from(e: JobError) -> Self {
        ChronosError::BadRequest(e.to_string())
    }
}

impl From<BatchError> for ChronosError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Invalid(j) => j.into(),
            BatchError::NotFound(_) => ChronosError::NotFound(e.to_string()),
            BatchError::Store(_) => ChronosError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ChronosError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({
            "message": self.to_string(),
            "status": status.canonical_reason().unwrap_or(""),
        });
        (status, Json(body)).into_response()
    }
}
