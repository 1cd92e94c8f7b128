//! What the agent reports about its hardware: the CPU/NUMA topology (hwloc, or the file in
//! `HWLOC_XMLFILE`) and the GPUs (NVML, or `--gpu-fixture PATH`), turned into NUMA domains with
//! their cores and GPUs, the GPU list with health, and the warnings found on the way; and the
//! per-task GPU readings ([`GpuMetrics`]).

mod health;
mod metrics;

pub use health::{apply_health_events, spawn_health_poller, HEALTH_POLL_INTERVAL};
pub use metrics::{spawn_gpu_sampler, GpuMetrics};

use gantry_gpu::{check_numa_locality, numa_domains_with_cores, open_inventory, GpuInventory};
use gantry_proto::{AgentInfo, GpuInfo, NumaDomain};
use gantry_topology::Topology;
use std::path::Path;
use std::sync::Arc;

/// Why the hardware could not be discovered.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The operator named a topology file (`HWLOC_XMLFILE`) that cannot be loaded.
    #[error("HWLOC_XMLFILE is set but cannot be loaded: {0}")]
    Topology(#[from] gantry_topology::TopologyError),
    /// The GPU inventory could not be opened or read (a bad `--gpu-fixture`).
    #[error("GPU inventory: {0}")]
    Gpu(#[from] gantry_gpu::GpuError),
}

/// The hardware as discovered at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovered {
    /// One per allowed NUMA node, with its PUs, cores, memory and GPU indexes.
    pub numa_domains: Vec<NumaDomain>,
    /// Every GPU with its health.
    pub gpus: Vec<GpuInfo>,
    /// Disagreements (hwloc vs NVML) and discovery problems, for the log and `/state`.
    pub warnings: Vec<String>,
    /// Where the GPUs come from, one line (`fixture ... (16 GPUs)`, `NVML ...`, `no GPUs: ...`).
    pub gpu_source: String,
}

impl Discovered {
    /// Puts the discovery into the registration info: domains, GPUs and warnings, and
    /// `resources.gpus` = the healthy GPUs unless the operator gave `gpus` in `--resources`.
    pub fn apply_to(&self, info: &mut AgentInfo, gpus_explicit: bool) {
        info.numa_domains = self.numa_domains.clone();
        info.gpus = self.gpus.clone();
        info.topology_warnings = self.warnings.clone();
        if !gpus_explicit {
            info.resources.gpus = info.healthy_gpus();
        }
    }
}

/// Discovers the topology and opens the GPU inventory (the fixture at `gpu_fixture`, else NVML,
/// else none). A live hwloc failure is a warning (the agent runs without NUMA domains); a failing
/// `HWLOC_XMLFILE` or GPU fixture is an error, since the operator asked for it.
pub fn discover(
    gpu_fixture: Option<&Path>,
) -> Result<(Arc<dyn GpuInventory>, Discovered), InventoryError> {
    let inventory: Arc<dyn GpuInventory> = Arc::from(open_inventory(gpu_fixture)?);
    let gpus = inventory.gpus()?;
    let mut warnings = Vec::new();
    let topology = match Topology::discover() {
        Ok(t) => Some(t),
        Err(e) if std::env::var_os("HWLOC_XMLFILE").is_some_and(|v| !v.is_empty()) => {
            return Err(e.into())
        }
        Err(e) => {
            let w = format!("no NUMA domains reported: hwloc discovery failed: {e}");
            tracing::warn!("{w}");
            warnings.push(w);
            None
        }
    };
    let numa_domains = match &topology {
        Some(t) => {
            if !gpus.is_empty() || !t.gpus.is_empty() {
                for m in check_numa_locality(&gpus, t) {
                    let w = m.to_string();
                    tracing::warn!(mismatch = %w, "hwloc and the GPU inventory disagree; reported as is");
                    warnings.push(w);
                }
            }
            numa_domains_with_cores(t, &gpus)
        }
        None => Vec::new(),
    };
    let discovered = Discovered {
        numa_domains,
        gpus: gpus.iter().map(GpuInfo::from).collect(),
        warnings,
        gpu_source: inventory.describe(),
    };
    tracing::info!(
        numa_domains = discovered.numa_domains.len(),
        gpus = discovered.gpus.len(),
        source = %discovered.gpu_source,
        "hardware discovered"
    );
    Ok((inventory, discovered))
}
