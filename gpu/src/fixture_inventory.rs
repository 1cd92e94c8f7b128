//! A GPU inventory read from a JSON file, for machines without GPUs (tests, simulated agents,
//! `gantry-agentd --gpu-fixture PATH`). Health events can be injected to simulate failures.

use crate::error::GpuError;
use crate::health::{HealthEvent, HealthTracker};
use crate::inventory::GpuInventory;
use crate::model::Gpu;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The JSON document: `{ "driver_version": "...", "gpus": [ ... ] }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuFixture {
    /// What the machine the fixture describes reported as driver version.
    #[serde(default)]
    pub driver_version: Option<String>,
    /// The GPUs.
    pub gpus: Vec<Gpu>,
}

impl GpuFixture {
    /// Checks that indexes and UUIDs are unique, minors and PCI ids too among GPUs that are not
    /// MIG devices (a MIG device shares its parent's), NVLink peers exist, and MIG devices name
    /// their parent consistently (`crate::mig::validate_mig`).
    pub fn validate(&self) -> Result<(), String> {
        let mut idx = BTreeSet::new();
        let mut minors = BTreeSet::new();
        let mut uuids = BTreeSet::new();
        let mut pci = BTreeSet::new();
        for g in &self.gpus {
            if !idx.insert(g.index) {
                return Err(format!("duplicate GPU index {}", g.index));
            }
            if g.mig.is_some() {
                continue;
            }
            if !minors.insert(g.minor) {
                return Err(format!("duplicate minor {}", g.minor));
            }
            if !uuids.insert(g.uuid.as_str()) {
                return Err(format!("duplicate UUID {}", g.uuid));
            }
            if !pci.insert(g.pci_bus_id.clone()) {
                return Err(format!("duplicate PCI bus id {}", g.pci_bus_id));
            }
        }
        for g in &self.gpus {
            if let Some(p) = g
                .nvlink_peers
                .iter()
                .find(|p| !idx.contains(p) || **p == g.index)
            {
                return Err(format!("GPU {} has invalid NVLink peer {p}", g.index));
            }
        }
        crate::mig::validate_mig(&self.gpus)
    }
}

/// Inventory backed by a [`GpuFixture`].
#[derive(Debug)]
pub struct FixtureInventory {
    origin: PathBuf,
    fixture: GpuFixture,
    pending: Mutex<Vec<HealthEvent>>,
    health: Mutex<HealthTracker>,
}

impl FixtureInventory {
    /// Reads and validates a fixture file.
    pub fn from_file(path: &Path) -> Result<Self, GpuError> {
        let text = std::fs::read_to_string(path).map_err(|source| GpuError::FixtureIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates fixture JSON; `origin` names it in errors and [`GpuInventory::describe`].
    pub fn from_json(json: &str, origin: &Path) -> Result<Self, GpuError> {
        let invalid = |detail: String| GpuError::FixtureInvalid {
            path: origin.to_path_buf(),
            detail,
        };
        let fixture: GpuFixture = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        fixture.validate().map_err(invalid)?;
        Ok(Self {
            origin: origin.to_path_buf(),
            fixture,
            pending: Mutex::new(Vec::new()),
            health: Mutex::new(HealthTracker::default()),
        })
    }

    /// Number of GPUs.
    pub fn len(&self) -> usize {
        self.fixture.gpus.len()
    }

    /// True when the fixture lists no GPU.
    pub fn is_empty(&self) -> bool {
        self.fixture.gpus.is_empty()
    }

    /// Queues an event for the next [`GpuInventory::poll_health`] (simulates an NVML event).
    pub fn inject_event(&self, event: HealthEvent) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

impl GpuInventory for FixtureInventory {
    fn gpus(&self) -> Result<Vec<Gpu>, GpuError> {
        let mut gpus = self.fixture.gpus.clone();
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .annotate(&mut gpus);
        Ok(gpus)
    }

    fn poll_health(&self, _wait: Duration) -> Result<Vec<HealthEvent>, GpuError> {
        let events =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        for e in &events {
            health.apply(e);
        }
        Ok(events)
    }

    fn describe(&self) -> String {
        format!(
            "fixture {} ({} GPUs)",
            self.origin.display(),
            self.fixture.gpus.len()
        )
    }
}
