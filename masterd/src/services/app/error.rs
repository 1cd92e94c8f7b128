//! What can be wrong with an app definition, in the services domain's own terms: the request
//! body (not JSON, empty), a field's type or schema, a normalization conflict, a semantic rule.
//! `api/marathon` turns each into Marathon's status and body.

use serde::Serialize;

/// The errors found at one JSON path: one entry of a 422 body's `details` array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldErrors {
    /// JSON-pointer-like path with array indexes written `(0)`: `/container/volumes(0)/hostPath`.
    /// Errors about the whole object use `/`.
    pub path: String,
    /// Play-JSON codes (`error.expected.jsstring`) or sentences (`is greater than 1`).
    pub errors: Vec<String>,
}

impl FieldErrors {
    /// Groups `(path, error)` pairs by path, keeping the order in which paths first appear and
    /// dropping repeated errors at one path (as Marathon does).
    pub fn group(pairs: Vec<(String, String)>) -> Vec<FieldErrors> {
        let mut grouped: Vec<FieldErrors> = Vec::new();
        for (path, error) in pairs {
            match grouped.iter_mut().find(|g| g.path == path) {
                Some(g) => {
                    if !g.errors.contains(&error) {
                        g.errors.push(error);
                    }
                }
                None => grouped.push(FieldErrors {
                    path,
                    errors: vec![error],
                }),
            }
        }
        grouped
    }
}

/// An app definition that cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON (Marathon: 400 `Invalid JSON`).
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    /// The body is empty or cannot be mapped at all (400 `Please specify data in JSON format`).
    #[error("Please specify data in JSON format: {0}")]
    EmptyBody(String),
    /// Well-formed JSON whose fields have the wrong type or break a schema constraint (422
    /// `Invalid JSON` with details).
    #[error("Invalid JSON: {}", describe(.0))]
    InvalidFields(Vec<FieldErrors>),
    /// A semantic rule is broken (422 `Object is not valid` with details).
    #[error("Object is not valid: {}", describe(.0))]
    InvalidObject(Vec<FieldErrors>),
    /// A normalization conflict such as `cannot specify both uris and fetch fields` (422).
    #[error("{0}")]
    Unprocessable(String),
}

/// `path: error, error; path: error`, for messages and logs.
pub fn describe(details: &[FieldErrors]) -> String {
    details
        .iter()
        .map(|d| format!("{}: {}", d.path, d.errors.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
