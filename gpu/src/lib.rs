//! NVIDIA GPUs: discovery through NVML behind the [`GpuInventory`] trait, a JSON fixture inventory,
//! health from XID/ECC events, the cross-check against hwloc, NUMA domains for the agent report,
//! MIG devices as GPUs of their own with their `/dev/nvidia-caps` nodes, device-cgroup rules and
//! visible-devices environment, GPU selection on one node, and the conversions to and from the
//! wire types of `gantry-proto`; per-GPU readings (NVML or a fixture) and their attribution to
//! the tasks holding the GPUs.

mod device_rules;
mod domains;
mod error;
mod fixture_inventory;
mod health;
mod inventory;
mod locality_check;
mod metrics;
mod metrics_attribution;
mod metrics_fixture;
mod metrics_nvml;
mod mig;
mod model;
mod nvml_inventory;
mod nvml_mig;
mod selection;
mod wire;

pub use device_rules::{
    gpu_device_rules, gpu_device_rules_for, gpu_device_rules_for_minors, proc_char_majors,
    visible_devices_env, DeviceAccessRules, DeviceRule, DeviceRulesError, NVIDIACTL_MINOR,
    NVIDIA_CAPS_MAJOR_NAME, NVIDIA_MAJOR, NVIDIA_MODESET_MINOR,
};
pub use domains::numa_domains;
pub use error::GpuError;
pub use fixture_inventory::{FixtureInventory, GpuFixture};
pub use health::{is_critical_xid, HealthEvent, HealthEventKind, HealthTracker};
pub use inventory::{open_inventory, GpuInventory, NoGpus};
pub use locality_check::{check_numa_locality, LocalityMismatch};
pub use metrics::{open_metrics_source, GpuMetricsSource, GpuReading, NoGpuMetrics};
pub use metrics_attribution::{GpuAttribution, GpuHolder};
pub use metrics_fixture::{FixtureGpuReading, FixtureMetrics, GpuMetricsFixture};
pub use metrics_nvml::NvmlMetrics;
pub use mig::{
    formula_minor, is_valid_profile, mig_device_index, mig_gpu, profile_name, validate_mig, CapKey,
    MigDeviceFacts, MigMinors, MigSlice, MAX_PROFILE_LEN, MIG_INDEX_STRIDE, MIG_MINORS_PATH,
};
pub use model::{Gpu, GpuHealth, MigMode};
pub use nvml_inventory::NvmlInventory;
pub use selection::{select_gpus, GpuSelection, NumaPolicy};
pub use wire::{assignment_env, numa_domains_with_cores, GpuInfoError};
