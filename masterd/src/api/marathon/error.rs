//! Marathon's error bodies and status codes (spec §3.9), as one error type that renders itself as
//! an `application/json` response.

use crate::services::actions::ServiceError;
use crate::services::app::describe;
pub use crate::services::app::{AppError, FieldErrors};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answered in Marathon's format.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// 400 `{"message":"Invalid JSON","details":"<parser message>"}`: the body is not JSON.
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    /// 400 `{"message":"Please specify data in JSON format","details":"<why>"}`: the body is empty
    /// or cannot be mapped at all.
    #[error("Please specify data in JSON format: {0}")]
    EmptyBody(String),
    /// 422 `{"message":"Invalid JSON","details":[{"path","errors"}]}`: the JSON is well formed but
    /// fields have the wrong type or break a schema constraint (`error.expected.jsstring`,
    /// `error.min`, `error.pattern`, `error.path.missing`, ...).
    #[error("Invalid JSON: {}", describe(.0))]
    InvalidFields(Vec<FieldErrors>),
    /// 422 `{"message":"Object is not valid","details":[{"path","errors"}]}`: semantic validation.
    #[error("Object is not valid: {}", describe(.0))]
    InvalidObject(Vec<FieldErrors>),
    /// 422 `{"message":"..."}`: a normalization error such as `cannot specify both uris and fetch
    /// fields`.
    #[error("{0}")]
    Unprocessable(String),
    /// 400 `{"message":"..."}`: a bad query or id (`You cannot use scale and wipe at the same time.`).
    #[error("{0}")]
    BadRequest(String),
    /// 404 with Marathon's message (`App '/x' does not exist`).
    #[error("{0}")]
    NotFound(String),
    /// 409 with Marathon's message.
    #[error("{0}")]
    Conflict(String),
    /// 403 `{"message":"Not Authorized to perform this action!"}` (with the reason in `details`).
    #[error("Not Authorized to perform this action! {0}")]
    Forbidden(String),
    /// 409: the app is locked by running deployments (their ids) and `force` was not given.
    #[error("App is locked by one or more deployments: {}", .0.join(", "))]
    Locked(Vec<String>),
    /// 405 `{"message":"..."}`: `/v2/events` without `Accept: text/event-stream` (Marathon's
    /// Jetty answers 405 there).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 500: something failed inside Gantry.
    #[error("{0}")]
    Internal(String),
}

impl From<AppError> for MarathonError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::InvalidJson(d) => MarathonError::InvalidJson(d),
            AppError::EmptyBody(d) => MarathonError::EmptyBody(d),
            AppError::InvalidFields(d) => MarathonError::InvalidFields(d),
            AppError::InvalidObject(d) => MarathonError::InvalidObject(d),
            AppError::Unprocessable(d) => MarathonError::Unprocessable(d),
        }
    }
}

impl From<ServiceError> for MarathonError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::AppExists(_) => MarathonError::Conflict(e.to_string()),
            ServiceError::AppNotFound(_)
            | ServiceError::VersionNotFound { .. }
            | ServiceError::DeploymentNotFound(_) => MarathonError::NotFound(e.to_string()),
            ServiceError::Locked(ids) => MarathonError::Locked(ids),
            ServiceError::PortsExhausted(_) => MarathonError::Unprocessable(e.to_string()),
            ServiceError::Cycle(_) => MarathonError::InvalidObject(vec![FieldErrors {
                path: "/".into(),
                errors: vec![e.to_string()],
            }]),
            ServiceError::GroupNotFound(_) => MarathonError::NotFound(e.to_string()),
            ServiceError::Store(_) => MarathonError::Internal(e.to_string()),
        }
    }
}

impl MarathonError {
    /// The HTTP status Marathon answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            MarathonError::InvalidJson(_)
            | MarathonError::EmptyBody(_)
            | MarathonError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MarathonError::InvalidFields(_)
            | MarathonError::InvalidObject(_)
            | MarathonError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            MarathonError::NotFound(_) => StatusCode::NOT_FOUND,
            MarathonError::Forbidden(_) => StatusCode::FORBIDDEN,
            MarathonError::Conflict(_) | MarathonError::Locked(_) => StatusCode::CONFLICT,
            MarathonError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            MarathonError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body Marathon answers with.
    pub fn body(&self) -> Value {
        match self {
            MarathonError::InvalidJson(d) => json!({"message": "Invalid JSON", "details": d}),
            MarathonError::EmptyBody(d) => {
                json!({"message": "Please specify data in JSON format", "details": d})
            }
            MarathonError::InvalidFields(d) => json!({"message": "Invalid JSON", "details": d}),
            MarathonError::Forbidden(why) => {
                json!({"message": "Not Authorized to perform this action!", "details": why})
            }
            MarathonError::InvalidObject(d) => {
                json!({"message": "Object is not valid", "details": d})
            }
            MarathonError::Locked(ids) => {
                let first = ids.first().map(String::as_str).unwrap_or_default();
                json!({
                    "message": format!(
                        "App is locked by one or more deployments. Override with the option \
                         '?force=true'. View details at '/v2/deployments/{first}'."
                    ),
                    "deployments": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                })
            }
            MarathonError::Unprocessable(m)
            | MarathonError::BadRequest(m)
            | MarathonError::NotFound(m)
            | MarathonError::Conflict(m)
            | MarathonError::MethodNotAllowed(m)
            | MarathonError::Internal(m) => json!({ "message": m }),
        }
    }
}

impl IntoResponse for MarathonError {
    fn into_response(self) -> Response {
        // `Json` sets `Content-Type: application/json`, which marathon-python needs to read the body.
        (self.status(), Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_errors_by_path_in_first_seen_order() {
        let g = FieldErrors::group(vec![
            ("/b".into(), "x".into()),
            ("/a".into(), "y".into()),
            ("/b".into(), "z".into()),
            ("/b".into(), "x".into()),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].path, "/b");
        assert_eq!(g[0].errors, vec!["x", "z"]);
        assert_eq!(g[1].errors, vec!["y"]);
    }

    #[test]
    fn every_variant_has_marathons_status_and_body() {
        let details = vec![FieldErrors {
            path: "/id".into(),
            errors: vec!["error.expected.jsstring".into()],
        }];
        let cases = [
            (
                MarathonError::InvalidJson("eof".into()),
                400,
                json!({"message":"Invalid JSON","details":"eof"}),
            ),
            (
                MarathonError::EmptyBody("empty".into()),
                400,
                json!({"message":"Please specify data in JSON format","details":"empty"}),
            ),
            (
                MarathonError::InvalidFields(details.clone()),
                422,
                json!({"message":"Invalid JSON","details":[{"path":"/id","errors":["error.expected.jsstring"]}]}),
            ),
            (
                MarathonError::InvalidObject(details),
                422,
                json!({"message":"Object is not valid","details":[{"path":"/id","errors":["error.expected.jsstring"]}]}),
            ),
            (
                MarathonError::Unprocessable("cannot specify both uris and fetch fields".into()),
                422,
                json!({"message":"cannot specify both uris and fetch fields"}),
            ),
            (
                MarathonError::BadRequest("b".into()),
                400,
                json!({"message":"b"}),
            ),
            (
                MarathonError::NotFound("App '/x' does not exist".into()),
                404,
                json!({"message":"App '/x' does not exist"}),
            ),
            (
                MarathonError::Conflict("c".into()),
                409,
                json!({"message":"c"}),
            ),
            (
                MarathonError::Locked(vec!["d1".into()]),
                409,
                json!({"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/d1'.","deployments":[{"id":"d1"}]}),
            ),
            (
                MarathonError::MethodNotAllowed("m".into()),
                405,
                json!({"message":"m"}),
            ),
            (
                MarathonError::Internal("i".into()),
                500,
                json!({"message":"i"}),
            ),
        ];
        for (err, status, body) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert_eq!(err.body(), body);
        }
    }

    #[test]
    fn response_is_application_json() {
        let resp = MarathonError::NotFound("App '/x' does not exist".into()).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let ct = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{ct}");
    }
}
