//! Which original API a path belongs to, and an error in that API's own shape: Marathon's
//! `{"message"}`, Chronos's `{"message","status"}`, Mesos's plain text. Used for every error that
//! no handler wrote (405, 413, 414, 415, 401, 403, 429, 503, extractor rejections), so that no
//! layer answers with an empty body or a shape the client does not parse.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The API a request path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Marathon,
    Chronos,
    /// Mesos operator endpoints and the v1 APIs (plain-text errors, as Mesos answers).
    Mesos,
    /// Gantry's own endpoints (`/gantry/...`): Marathon's shape.
    Gantry,
}

impl Surface {
    /// The surface of `path`.
    pub fn of(path: &str) -> Surface {
        if path.starts_with("/v1/scheduler") || path.starts_with("/scheduler") {
            Surface::Chronos
        } else if path.starts_with("/gantry/") {
            Surface::Gantry
        } else if path.starts_with("/master")
            || path.starts_with("/api/")
            || path.starts_with("/metrics")
            || path.starts_with("/state")
            || path.starts_with("/slave")
            || path == "/version"
            || path == "/health"
        {
            Surface::Mesos
        } else {
            Surface::Marathon
        }
    }

    /// An error response with `status` and `message`, in this surface's shape.
    pub fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Surface::Marathon | Surface::Gantry => {
                (status, axum::Json(json!({ "message": message }))).into_response()
            }
            Surface::Chronos => (
                status,
                axum::Json(json!({
                    "message": message,
                    "status": status.canonical_reason().unwrap_or(""),
                })),
            )
                .into_response(),
            Surface::Mesos => {
                let mut r = Response::new(Body::from(message.to_string()));
                *r.status_mut() = status;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
        }
    }
}

/// Marathon's (Jersey's) sentence for a bare status: `HTTP 405 Method Not Allowed`.
pub fn status_sentence(status: StatusCode) -> String {
    format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_api() {
        assert_eq!(Surface::of("/v2/apps"), Surface::Marathon);
        assert_eq!(Surface::of("/ping"), Surface::Marathon);
        assert_eq!(Surface::of("/scheduler/jobs"), Surface::Chronos);
        assert_eq!(Surface::of("/v1/scheduler/iso8601"), Surface::Chronos);
        assert_eq!(Surface::of("/master/state"), Surface::Mesos);
        assert_eq!(Surface::of("/api/v1/scheduler"), Surface::Mesos);
        assert_eq!(Surface::of("/gantry/v1/audit"), Surface::Gantry);
        assert_eq!(
            status_sentence(StatusCode::METHOD_NOT_ALLOWED),
            "HTTP 405 Method Not Allowed"
        );
    }

    #[tokio::test]
    async fn each_surface_has_its_shape() {
        let body = |r: Response| async move {
            let b = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .expect("body");
            String::from_utf8_lossy(&b).into_owned()
        };
        let m = body(Surface::Marathon.error(StatusCode::FORBIDDEN, "no")).await;
        assert_eq!(m, r#"{"message":"no"}"#);
        let c = body(Surface::Chronos.error(StatusCode::BAD_REQUEST, "bad")).await;
        let v: serde_json::Value = serde_json::from_str(&c).expect("json");
        assert_eq!(v["status"], "Bad Request");
        let t = Surface::Mesos.error(StatusCode::UNAUTHORIZED, "Unauthorized");
        assert_eq!(t.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body(t).await, "Unauthorized");
    }
}
