//! GPU readings from a JSON file (`gantry-agentd --gpu-metrics-fixture PATH`, beside
//! `--gpu-fixture`), re-read at every sample so that a test (or a demo) changes the numbers by
//! rewriting the file. XIDs are listed per GPU as a growing history; each one added after the
//! source opened is reported once, as NVML reports an event once.

use crate::error::GpuError;
use crate::metrics::{GpuMetricsSource, GpuReading};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// One GPU of the file: the figures it reads (any may be left out) and every XID seen so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureGpuReading {
    /// The GPU's UUID (as in the GPU fixture).
    pub uuid: String,
    #[serde(default)]
    pub gpu_util_percent: Option<f64>,
    #[serde(default)]
    pub memory_util_percent: Option<f64>,
    #[serde(default)]
    pub memory_used_bytes: Option<u64>,
    #[serde(default)]
    pub memory_total_bytes: Option<u64>,
    #[serde(default)]
    pub power_watts: Option<f64>,
    #[serde(default)]
    pub temperature_celsius: Option<f64>,
    /// Every XID seen on the GPU, oldest first; append to simulate a new event.
    #[serde(default)]
    pub xids: Vec<u64>,
}

/// The document: `{ "gpus": [ { "uuid": "GPU-...", "gpu_util_percent": 87, ... } ] }`. GPUs it
/// does not list have no reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuMetricsFixture {
    /// The readings.
    pub gpus: Vec<FixtureGpuReading>,
}

impl GpuMetricsFixture {
    /// Checks UUIDs are unique, percentages lie in 0..=100 and the other figures are finite and
    /// not negative.
    pub fn validate(&self) -> Result<(), String> {
        let mut uuids = BTreeSet::new();
        for g in &self.gpus {
            if !uuids.insert(g.uuid.as_str()) {
                return Err(format!("duplicate UUID {}", g.uuid));
            }
            for (name, v, max) in [
                ("gpu_util_percent", g.gpu_util_percent, 100.0),
                ("memory_util_percent", g.memory_util_percent, 100.0),
                ("power_watts", g.power_watts, f64::MAX),
                ("temperature_celsius", g.temperature_celsius, f64::MAX),
            ] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && (0.0..=max).contains(v))) {
                    return Err(format!("{}: {name} {v} is out of range", g.uuid));
                }
            }
            if let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) {
                if used > total {
                    return Err(format!(
                        "{}: memory_used_bytes {used} exceeds memory_total_bytes {total}",
                        g.uuid
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads and validates a file.
    pub fn from_file(path: &Path) -> Result<Self, GpuError> {
        let text = std::fs::read_to_string(path).map_err(|source| GpuError::FixtureIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates JSON; `origin` names it in errors.
    pub fn from_json(json: &str, origin: &Path) -> Result<Self, GpuError> {
        let invalid = |detail: String| GpuError::FixtureInvalid {
            path: origin.to_path_buf(),
            detail,
        };
        let f: Self = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        f.validate().map_err(invalid)?;
        Ok(f)
    }
}

/// The fixture source: the file's path and how many XIDs of each GPU were already reported.
#[derive(Debug)]
pub struct FixtureMetrics {
    path: PathBuf,
    xids_seen: Mutex<HashMap<String, usize>>,
}

impl FixtureMetrics {
    /// Opens the file (it must exist and be valid now); the XIDs it lists already are history,
    /// not reported.
    pub fn open(path: &Path) -> Result<Self, GpuError> {
        let f = GpuMetricsFixture::from_file(path)?;
        let seen = f
            .gpus
            .iter()
            .map(|g| (g.uuid.clone(), g.xids.len()))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            xids_seen: Mutex::new(seen),
        })
    }
}

impl GpuMetricsSource for FixtureMetrics {
    /// Reads the file again. XIDs past those already reported are new; a history that shrank
    /// (the file was replaced) is taken as it is, with nothing new.
    fn sample(&self) -> Result<Vec<GpuReading>, GpuError> {
        let f = GpuMetricsFixture::from_file(&self.path)?;
        let mut seen = self
            .xids_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(f.gpus
            .into_iter()
            .map(|g| {
                let before = seen.insert(g.uuid.clone(), g.xids.len()).unwrap_or(0);
                let new_xids = g
                    .xids
                    .get(before..)
                    .map(<[u64]>::to_vec)
                    .unwrap_or_default();
                GpuReading {
                    uuid: g.uuid,
                    gpu_util_percent: g.gpu_util_percent,
                    memory_util_percent: g.memory_util_percent,
                    memory_used_bytes: g.memory_used_bytes,
                    memory_total_bytes: g.memory_total_bytes,
                    power_watts: g.power_watts,
                    temperature_celsius: g.temperature_celsius,
                    new_xids,
                }
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("GPU metrics fixture {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("metrics.json");
        std::fs::write(&p, json).expect("write fixture");
        p
    }

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn readings_come_from_the_file_and_follow_its_changes() {
        let t = temp();
        let d = t.path();
        let p = write(
            d,
            r#"{"gpus": [{"uuid": "GPU-a", "gpu_util_percent": 87, "memory_used_bytes": 1024,
                "memory_total_bytes": 4096, "power_watts": 251.5, "temperature_celsius": 64}]}"#,
        );
        let src = FixtureMetrics::open(&p).expect("open");
        let r = src.sample().expect("sample");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].uuid, "GPU-a");
        assert_eq!(r[0].gpu_util_percent, Some(87.0));
        assert_eq!(r[0].memory_util_percent, None, "left out, not zero");
        assert_eq!(r[0].memory_used_bytes, Some(1024));
        assert_eq!(r[0].power_watts, Some(251.5));
        assert_eq!(r[0].temperature_celsius, Some(64.0));
        write(
            d,
            r#"{"gpus": [{"uuid": "GPU-a", "gpu_util_percent": 12.5}]}"#,
        );
        let r = src.sample().expect("sample");
        assert_eq!(r[0].gpu_util_percent, Some(12.5));
        assert_eq!(r[0].power_watts, None);
        assert!(src.describe().contains("metrics.json"));
    }

    #[test]
    fn xids_added_after_opening_are_reported_once() {
        let t = temp();
        let d = t.path();
        let p = write(d, r#"{"gpus": [{"uuid": "GPU-a", "xids": [79]}]}"#);
        let src = FixtureMetrics::open(&p).expect("open");
        assert_eq!(src.sample().expect("sample")[0].new_xids, Vec::<u64>::new());
        write(
            d,
            r#"{"gpus": [{"uuid": "GPU-a", "xids": [79, 13, 43]}, {"uuid": "GPU-b", "xids": [31]}]}"#,
        );
        let r = src.sample().expect("sample");
        assert_eq!(r[0].new_xids, vec![13, 43]);
        assert_eq!(r[1].new_xids, vec![31], "a GPU first listed now: all new");
        let again = src.sample().expect("sample");
        assert!(again.iter().all(|g| g.new_xids.is_empty()), "{again:?}");
        write(d, r#"{"gpus": [{"uuid": "GPU-a", "xids": [48]}]}"#);
        assert!(
            src.sample().expect("sample")[0].new_xids.is_empty(),
            "a shrunk history reports nothing"
        );
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        let origin = Path::new("m.json");
        for (json, why) in [
            (
                r#"{"gpus": [{"uuid": "a"}, {"uuid": "a"}]}"#,
                "duplicate UUID",
            ),
            (
                r#"{"gpus": [{"uuid": "a", "gpu_util_percent": 101}]}"#,
                "out of range",
            ),
            (
                r#"{"gpus": [{"uuid": "a", "power_watts": -1}]}"#,
                "out of range",
            ),
            (
                r#"{"gpus": [{"uuid": "a", "memory_used_bytes": 2, "memory_total_bytes": 1}]}"#,
                "exceeds",
            ),
            (
                r#"{"gpus": [{"uuid": "a", "gpu_util": 1}]}"#,
                "unknown field",
            ),
        ] {
            let e = GpuMetricsFixture::from_json(json, origin).expect_err(json);
            assert!(e.to_string().contains(why), "{json}: {e}");
        }
    }

    #[test]
    fn a_file_that_turns_bad_fails_the_sample() {
        let t = temp();
        let d = t.path();
        let p = write(d, r#"{"gpus": []}"#);
        let src = FixtureMetrics::open(&p).expect("open");
        write(d, "{not json");
        assert!(matches!(src.sample(), Err(GpuError::FixtureInvalid { .. })));
    }

    #[test]
    fn the_dgx2_metrics_fixture_is_valid_and_names_fixture_gpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let m = GpuMetricsFixture::from_file(&dir.join("dgx2-16gpu.metrics.json"))
            .expect("metrics fixture");
        let gpus =
            crate::FixtureInventory::from_file(&dir.join("dgx2-16gpu.json")).expect("GPU fixture");
        let known: BTreeSet<String> = crate::GpuInventory::gpus(&gpus)
            .expect("gpus")
            .into_iter()
            .map(|g| g.uuid)
            .collect();
        assert_eq!(m.gpus.len(), 16);
        assert!(m.gpus.iter().all(|g| known.contains(&g.uuid)));
    }
}
