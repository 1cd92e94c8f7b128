//! GPU readings from NVML: `nvmlDeviceGetUtilizationRates`, `..GetMemoryInfo`, `..GetPowerUsage`,
//! `..GetTemperature`, and XIDs from an event set of its own (NVML gives every registered set
//! each event, so the health poller's set is not robbed).

use crate::error::GpuError;
use crate::metrics::{GpuMetricsSource, GpuReading};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, EventSet, Nvml};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Milliwatts per watt (NVML reports power in mW).
const MW_PER_W: f64 = 1000.0;

/// The NVML source.
pub struct NvmlMetrics {
    nvml: &'static Nvml,
    xids: Mutex<Option<EventSet<'static>>>,
}

impl std::fmt::Debug for NvmlMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlMetrics").finish_non_exhaustive()
    }
}

impl NvmlMetrics {
    /// Loads libnvidia-ml (`libnvidia-ml.so.1`, then `libnvidia-ml.so`), initialises NVML (it
    /// counts initialisations, so this is independent of the inventory's) and registers for XID
    /// events. The handle lives as long as the process, as the inventory's does.
    pub fn open() -> Result<Self, GpuError> {
        let nvml = crate::nvml_inventory::load_nvml()?;
        let xids = match register_xids(nvml) {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::warn!("NVML XID events unavailable, GPU readings will have none: {e}");
                None
            }
        };
        Ok(Self {
            nvml,
            xids: Mutex::new(xids),
        })
    }

    /// XIDs queued on the event set, by GPU UUID, without waiting.
    fn drain_xids(&self) -> HashMap<String, Vec<u64>> {
        let mut out: HashMap<String, Vec<u64>> = HashMap::new();
        let guard = self.xids.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = guard.as_ref() {
            while let Ok(data) = set.wait(0) {
                let Some(XidError::Value(xid)) = data.event_data else {
                    continue;
                };
                if let Ok(uuid) = data.device.uuid() {
                    out.entry(uuid).or_default().push(xid);
                }
            }
        }
        out
    }
}

fn register_xids(nvml: &'static Nvml) -> Result<EventSet<'static>, NvmlError> {
    let mut set = nvml.create_event_set()?;
    for i in 0..nvml.device_count()? {
        let device = nvml.device_by_index(i)?;
        let wanted = EventTypes::CRITICAL_XID_ERROR;
        let supported = device.supported_event_types().unwrap_or(wanted) & wanted;
        set = device
            .register_events(supported, set)
            .map_err(|e| e.error)?;
    }
    Ok(set)
}

/// One device's figures; each call NVML does not support on it is left `None`.
fn read(d: &Device<'static>, uuid: String, new_xids: Vec<u64>) -> GpuReading {
    let util = d.utilization_rates().ok();
    let mem = d.memory_info().ok();
    GpuReading {
        uuid,
        gpu_util_percent: util.as_ref().map(|u| f64::from(u.gpu)),
        memory_util_percent: util.as_ref().map(|u| f64::from(u.memory)),
        memory_used_bytes: mem.as_ref().map(|m| m.used),
        memory_total_bytes: mem.as_ref().map(|m| m.total),
        power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / MW_PER_W),
        temperature_celsius: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
        new_xids,
    }
}

impl GpuMetricsSource for NvmlMetrics {
    fn sample(&self) -> Result<Vec<GpuReading>, GpuError> {
        let mut xids = self.drain_xids();
        let count = self
            .nvml
            .device_count()
            .map_err(|e| GpuError::NvmlUnavailable(e.to_string()))?;
        let mut out = Vec::new();
        for i in 0..count {
            // A GPU that cannot even be named (lost) has no reading; the health poller marks it.
            let Ok(d) = self.nvml.device_by_index(i) else {
                continue;
            };
            let Ok(uuid) = d.uuid() else {
                continue;
            };
            let new = xids.remove(&uuid).unwrap_or_default();
            out.push(read(&d, uuid, new));
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        "NVML".into()
    }
}
