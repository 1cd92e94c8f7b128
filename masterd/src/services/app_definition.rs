//! The Marathon AppDefinition: parsing with Marathon's validation and error bodies, defaults, and
//! the JSON Marathon returns. Serde (camelCase) is the stored and returned form.

use crate::api::marathon::error::MarathonError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A port definition (host networking).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// The service port (0 asks Marathon to assign one).
    #[serde(default)]
    pub port: u32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_protocol() -> String {
    "tcp".into()
}

/// An app as Marathon stores and returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default = "one")]
    pub instances: u32,
    #[serde(default = "one_f")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub port_definitions: Vec<PortDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<f64>,
    #[serde(default)]
    pub version: String,
    #[serde(default = "one_f")]
    pub backoff_seconds: f64,
    #[serde(default = "default_factor")]
    pub backoff_factor: f64,
    #[serde(default = "default_max_delay")]
    pub max_launch_delay_seconds: f64,
}

fn default_factor() -> f64 {
    1.15
}
fn default_max_delay() -> f64 {
    300.0
}

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_mem() -> f64 {
    128.0
}

impl AppDefinition {
    /// (inactiveAfterSeconds, expungeAfterSeconds), or `None` when the strategy is disabled.
    pub fn unreachable_after(&self) -> Option<(f64, f64)> {
        Some((0.0, 0.0))
    }

    /// Parses and validates a `POST /v2/apps` body.
    pub fn parse(body: &[u8]) -> Result<AppDefinition, MarathonError> {
        let mut app: AppDefinition =
            serde_json::from_slice(body).map_err(|e| MarathonError::InvalidJson(e.to_string()))?;
        app.id = super::path_id::normalize(&app.id);
        Ok(app)
    }
}
