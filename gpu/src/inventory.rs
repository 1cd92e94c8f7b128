//! The [`GpuInventory`] trait, the empty inventory of a machine without GPUs, and the choice
//! between fixture and NVML that the agent makes at start.

use crate::error::GpuError;
use crate::fixture_inventory::FixtureInventory;
use crate::health::HealthEvent;
use crate::model::Gpu;
use crate::nvml_inventory::NvmlInventory;
use std::path::Path;
use std::time::Duration;

/// A source of GPUs and their health.
pub trait GpuInventory: Send + Sync {
    /// The GPUs, in NVML index order, with their current health.
    fn gpus(&self) -> Result<Vec<Gpu>, GpuError>;

    /// Collects health events that arrived since the last call, waiting at most `wait` for the
    /// first one, and applies them to the health that [`GpuInventory::gpus`] reports. The agent
    /// calls this periodically and reports the GPUs again when any event came back.
    fn poll_health(&self, wait: Duration) -> Result<Vec<HealthEvent>, GpuError>;

    /// One line for logs and `/state`: where the GPUs come from.
    fn describe(&self) -> String;
}

/// The inventory of a machine without NVIDIA GPUs (or without their driver): no GPUs.
#[derive(Clone, Debug)]
pub struct NoGpus {
    /// Why there are none, e.g. the NVML load error.
    pub reason: String,
}

impl GpuInventory for NoGpus {
    fn gpus(&self) -> Result<Vec<Gpu>, GpuError> {
        Ok(Vec::new())
    }

    fn poll_health(&self, _wait: Duration) -> Result<Vec<HealthEvent>, GpuError> {
        Ok(Vec::new())
    }

    fn describe(&self) -> String {
        format!("no GPUs: {}", self.reason)
    }
}

/// Opens the agent's inventory: the JSON fixture when a path is given (an unreadable fixture is
/// an error: the operator asked for it), else NVML; when NVML cannot be loaded this logs one
/// warning and returns [`NoGpus`], so an agent without a driver starts and reports no GPUs.
pub fn open_inventory(fixture: Option<&Path>) -> Result<Box<dyn GpuInventory>, GpuError> {
    if let Some(path) = fixture {
        let inv = FixtureInventory::from_file(path)?;
        tracing::info!(fixture = %path.display(), gpus = inv.len(), "GPU inventory from fixture");
        return Ok(Box::new(inv));
    }
    match NvmlInventory::open() {
        Ok(inv) => {
            tracing::info!(source = %inv.describe(), "GPU inventory from NVML");
            Ok(Box::new(inv))
        }
        Err(e) => {
            tracing::warn!("no GPUs will be offered: {e}");
            Ok(Box::new(NoGpus {
                reason: e.to_string(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_gpus_reports_nothing_and_says_why() {
        let inv = NoGpus {
            reason: "NVML unavailable".into(),
        };
        assert!(inv.gpus().map(|g| g.is_empty()).unwrap_or(false));
        assert!(inv
            .poll_health(Duration::ZERO)
            .map(|e| e.is_empty())
            .unwrap_or(false));
        assert_eq!(inv.describe(), "no GPUs: NVML unavailable");
    }

    #[test]
    fn a_missing_fixture_is_an_error_not_an_empty_inventory() {
        let r = open_inventory(Some(Path::new("/nonexistent/gpus.json")));
        assert!(matches!(r, Err(GpuError::FixtureIo { .. })));
    }
}
