//! Per-GPU readings (utilisation, memory, power, temperature, XIDs) behind the
//! [`GpuMetricsSource`] trait, and the agent's choice of source: a fixture file with
//! `--gpu-fixture`, else NVML, else none.

use crate::error::GpuError;
use crate::metrics_fixture::FixtureMetrics;
use crate::metrics_nvml::NvmlMetrics;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One GPU read now. A figure the GPU does not report (NVML `NotSupported`) is `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    /// The GPU's UUID.
    pub uuid: String,
    /// Percent of the last sample period a kernel ran.
    pub gpu_util_percent: Option<f64>,
    /// Percent of the last sample period device memory was read or written.
    pub memory_util_percent: Option<f64>,
    /// Device memory allocated, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Device memory installed, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Power draw, watts.
    pub power_watts: Option<f64>,
    /// Die temperature, degrees Celsius.
    pub temperature_celsius: Option<f64>,
    /// XIDs that arrived since the previous sample, oldest first (application XIDs included:
    /// those are the ones a task causes).
    pub new_xids: Vec<u64>,
}

/// A source of GPU readings. The agent calls [`GpuMetricsSource::sample`] from one thread, at a
/// fixed interval; XIDs are reported once each, by the first sample after they arrived.
pub trait GpuMetricsSource: Send + Sync {
    /// Reads every GPU it can; a GPU that cannot be read at all (lost) is left out.
    fn sample(&self) -> Result<Vec<GpuReading>, GpuError>;

    /// One line for logs: where the readings come from.
    fn describe(&self) -> String;
}

/// The source of a machine without readings: nothing, and why.
#[derive(Clone, Debug)]
pub struct NoGpuMetrics {
    /// Why there are none.
    pub reason: String,
}

impl GpuMetricsSource for NoGpuMetrics {
    fn sample(&self) -> Result<Vec<GpuReading>, GpuError> {
        Ok(Vec::new())
    }

    fn describe(&self) -> String {
        format!("no GPU readings: {}", self.reason)
    }
}

/// Opens the agent's source of readings. An agent whose GPUs come from a fixture
/// (`gpu_fixture`) reads them from the metrics fixture `metrics_fixture` (checked now: the
/// operator asked for it), or has none without one: a fixture machine's NVML, if any, describes
/// other GPUs. Otherwise NVML; when NVML cannot be loaded, none (the inventory already warned).
pub fn open_metrics_source(
    gpu_fixture: Option<&Path>,
    metrics_fixture: Option<&Path>,
) -> Result<Box<dyn GpuMetricsSource>, GpuError> {
    match (gpu_fixture, metrics_fixture) {
        (Some(_), Some(path)) => Ok(Box::new(FixtureMetrics::open(path)?)),
        (Some(gpus), None) => Ok(Box::new(NoGpuMetrics {
            reason: format!(
                "the GPUs come from the fixture {} and no GPU metrics fixture was given",
                gpus.display()
            ),
        })),
        (None, Some(path)) => Err(GpuError::FixtureInvalid {
            path: path.to_path_buf(),
            detail: "a GPU metrics fixture needs a GPU fixture (--gpu-fixture): NVML's GPUs \
                     are read from NVML"
                .into(),
        }),
        (None, None) => match NvmlMetrics::open() {
            Ok(m) => Ok(Box::new(m)),
            Err(e) => Ok(Box::new(NoGpuMetrics {
                reason: e.to_string(),
            })),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_fixture_without_metrics_has_no_readings_and_says_why() {
        let src = open_metrics_source(Some(Path::new("/f/gpus.json")), None).expect("opens");
        assert_eq!(src.sample().ok(), Some(Vec::new()));
        assert!(
            src.describe().contains("/f/gpus.json"),
            "{}",
            src.describe()
        );
    }

    #[test]
    fn a_metrics_fixture_alone_is_refused() {
        let r = open_metrics_source(None, Some(Path::new("/f/metrics.json")));
        assert!(
            matches!(&r, Err(GpuError::FixtureInvalid { detail, .. }) if detail.contains("--gpu-fixture"))
        );
    }

    #[test]
    fn a_missing_metrics_fixture_is_an_error() {
        let r = open_metrics_source(
            Some(Path::new("/f/gpus.json")),
            Some(Path::new("/nonexistent/metrics.json")),
        );
        assert!(matches!(r, Err(GpuError::FixtureIo { .. })));
    }

    #[test]
    fn without_a_driver_nvml_gives_no_readings() {
        // With a driver this is NVML; without, no readings and the reason names the library.
        let src = open_metrics_source(None, None).expect("never an error");
        let d = src.describe();
        assert!(
            d.starts_with("NVML") || d.contains("libnvidia-ml.so.1"),
            "{d}"
        );
    }
}
