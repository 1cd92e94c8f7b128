//! The Marathon app definition (spec §2, §3.1): the model Gantry stores and returns, and the parse
//! pipeline that turns a request body into it with Marathon's errors — type phase (422 `Invalid
//! JSON`), normalization (422 `{"message"}`), semantic validation (422 `Object is not valid`).

mod checks;
mod constraints;
mod container;
mod error;
mod json_output;
mod json_reader;
pub mod limits;
mod model;
mod normalize;
mod read;
mod strategies;
mod validate;

pub use checks::{CommandCheck, HealthCheck, HealthCheckProtocol, ReadinessCheck};
pub use constraints::{Constraint, ConstraintOperator};
pub use container::{Container, ContainerKind, DockerContainer, DockerParameter, PortMapping};
pub use error::{describe, AppError, FieldErrors};
pub use model::{AppDefinition, FetchUri, Network, NetworkMode, PortDefinition};
pub(crate) use normalize::gpu_profile_issue;
pub use read::parse_body;
pub use strategies::{KillSelection, UnreachableStrategy, UpgradeStrategy, VersionInfo};

use serde_json::Value;

impl AppDefinition {
    /// Parses and validates a `POST /v2/apps` body; relative ids resolve against `/`.
    pub fn parse(body: &[u8]) -> Result<AppDefinition, AppError> {
        Self::from_json(&parse_body(body)?, "/")
    }

    /// Parses and validates an app given as JSON (a group's `apps` entry, or a stored app merged
    /// with an update); a relative `id` resolves against the group `base`.
    ///
    /// Errors, in Marathon's order: wrong types or schema constraints (422 `Invalid JSON`, every
    /// error), conflicting deprecated fields (422 `{"message"}`), then semantic rules (422 `Object
    /// is not valid`, every error).
    pub fn from_json(value: &Value, base: &str) -> Result<AppDefinition, AppError> {
        let input = read::read_app(value)?;
        let normalized = normalize::normalize(input, base)?;
        let mut problems = normalized.issues;
        problems.extend(validate::validate(&normalized.app));
        if problems.is_empty() {
            Ok(normalized.app)
        } else {
            Err(AppError::InvalidObject(FieldErrors::group(problems)))
        }
    }

    /// Checks the semantic rules on an app built or changed in code; every problem as
    /// `(path, message)`, empty when valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        validate::validate(self)
    }
}
