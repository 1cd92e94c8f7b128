//! The NVML inventory: GPUs as the driver reports them (nvml-wrapper loads libnvidia-ml at run
//! time), and health from NVML critical-XID / ECC events and the uncorrected ECC counters.

use crate::error::GpuError;
use crate::health::{HealthEvent, HealthEventKind, HealthTracker};
use crate::inventory::GpuInventory;
use crate::model::{Gpu, GpuHealth, MigMode};
use gantry_topology::PciBusId;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, EventSet, Nvml};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The most NVLinks a GPU has (NVML_NVLINK_MAX_LINKS).
const MAX_NVLINKS: u32 = 18;
/// CPU affinity words asked from NVML: 64 x 64 bits covers 4096 CPUs.
const AFFINITY_WORDS: usize = 64;
/// MIG mode value for "enabled" (NVML_DEVICE_MIG_ENABLE).
const MIG_ENABLED: u32 = 1;

/// Inventory backed by NVML.
pub struct NvmlInventory {
    nvml: &'static Nvml,
    driver_version: String,
    events: Mutex<Option<EventSet<'static>>>,
    health: Mutex<HealthTracker>,
}

impl std::fmt::Debug for NvmlInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlInventory")
            .field("driver_version", &self.driver_version)
            .finish_non_exhaustive()
    }
}

fn nvml_err(call: &'static str, index: u32) -> impl Fn(NvmlError) -> GpuError {
    move |e| GpuError::Nvml {
        call,
        index,
        detail: e.to_string(),
    }
}

/// Loads libnvidia-ml (`libnvidia-ml.so.1`, then `libnvidia-ml.so`) and initialises NVML. The
/// handle is leaked on purpose: NVML stays initialised for the life of the process, so that event
/// sets can live next to it. NVML counts initialisations, so the inventory and the metrics source
/// each open their own.
pub(crate) fn load_nvml() -> Result<&'static Nvml, GpuError> {
    let mut failures = Vec::new();
    let mut loaded = None;
    for lib in ["libnvidia-ml.so.1", "libnvidia-ml.so"] {
        match Nvml::builder().lib_path(OsStr::new(lib)).init() {
            Ok(nvml) => {
                loaded = Some(nvml);
                break;
            }
            Err(e) => failures.push(format!("{lib}: {e}")),
        }
    }
    let nvml = loaded.ok_or_else(|| GpuError::NvmlUnavailable(failures.join("; ")))?;
    Ok(Box::leak(Box::new(nvml)))
}

impl NvmlInventory {
    /// Loads libnvidia-ml (`libnvidia-ml.so.1`, then `libnvidia-ml.so`) and initialises NVML.
    ///
    /// NVML stays initialised for the life of the process (the handle is leaked on purpose so
    /// that the event set can live next to it); open the inventory once per process.
    pub fn open() -> Result<Self, GpuError> {
        let nvml = load_nvml()?;
        let driver_version = nvml
            .sys_driver_version()
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let events = match register_events(nvml) {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::warn!("NVML health events unavailable, polling ECC counters only: {e}");
                None
            }
        };
        Ok(Self {
            nvml,
            driver_version,
            events: Mutex::new(events),
            health: Mutex::new(HealthTracker::default()),
        })
    }

    /// The driver version NVML reports.
    pub fn driver_version(&self) -> &str {
        &self.driver_version
    }

    fn devices(&self) -> Result<Vec<Device<'static>>, GpuError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| GpuError::NvmlUnavailable(e.to_string()))?;
        (0..count)
            .map(|i| {
                self.nvml
                    .device_by_index(i)
                    .map_err(nvml_err("device_by_index", i))
            })
            .collect()
    }
}

fn register_events(nvml: &'static Nvml) -> Result<EventSet<'static>, NvmlError> {
    let mut set = nvml.create_event_set()?;
    let count = nvml.device_count()?;
    for i in 0..count {
        let device = nvml.device_by_index(i)?;
        let wanted = EventTypes::CRITICAL_XID_ERROR | EventTypes::DOUBLE_BIT_ECC_ERROR;
        let supported = device.supported_event_types().unwrap_or(wanted) & wanted;
        set = device
            .register_events(supported, set)
            .map_err(|e| e.error)?;
    }
    Ok(set)
}

/// Reads one device; optional facts NVML does not support on this GPU are left empty.
fn read_gpu(index: u32, d: &Device<'static>) -> Result<(Gpu, Vec<PciBusId>), GpuError> {
    let pci = d.pci_info().map_err(nvml_err("pci_info", index))?;
    let pci_bus_id = PciBusId::parse(&pci.bus_id).ok_or_else(|| GpuError::Nvml {
        call: "pci_info",
        index,
        detail: format!("unparsable PCI bus id {:?}", pci.bus_id),
    })?;
    let numa_node = d
        .numa_node_id()
        .ok()
        .or_else(|| sysfs_numa_node(&pci_bus_id));
    let cpu_affinity = d
        .cpu_affinity(AFFINITY_WORDS)
        .map(|words| affinity_cpus(&words))
        .unwrap_or_default();
    let mig_mode = match d.mig_mode() {
        Ok(m) if m.current == MIG_ENABLED => MigMode::Enabled,
        Ok(_) => MigMode::Disabled,
        Err(_) => MigMode::Unsupported,
    };
    let mut remotes = Vec::new();
    for link in 0..MAX_NVLINKS {
        let l = d.link_wrapper_for(link);
        if l.is_active().unwrap_or(false) {
            if let Some(remote) = l
                .remote_pci_info()
                .ok()
                .and_then(|p| PciBusId::parse(&p.bus_id))
            {
                remotes.push(remote);
            }
        }
    }
    let gpu = Gpu {
        index,
        minor: d.minor_number().map_err(nvml_err("minor_number", index))?,
        uuid: d.uuid().map_err(nvml_err("uuid", index))?,
        name: d.name().map_err(nvml_err("name", index))?,
        memory_mib: d
            .memory_info()
            .map_err(nvml_err("memory_info", index))?
            .total
            / (1024 * 1024),
        pci_bus_id,
        numa_node,
        cpu_affinity,
        nvlink_peers: Vec::new(),
        pcie_switch: None,
        mig_mode,
        health: GpuHealth::Healthy,
        mig: None,
    };
    Ok((gpu, remotes))
}

/// CPU indexes from NVML's affinity bitmask (word `w`, bit `b` is CPU `w * BITS + b`).
fn affinity_cpus(words: &[std::os::raw::c_ulong]) -> Vec<u32> {
    let bits = std::os::raw::c_ulong::BITS;
    let mut cpus = Vec::new();
    for (w, word) in (0u32..).zip(words) {
        for b in 0..bits {
            if (word >> b) & 1 == 1 {
                cpus.push(w * bits + b);
            }
        }
    }
    cpus
}

/// `/sys/bus/pci/devices/<id>/numa_node`, for drivers whose NVML lacks `nvmlDeviceGetNumaNodeId`.
fn sysfs_numa_node(pci: &PciBusId) -> Option<u32> {
    let path = format!("/sys/bus/pci/devices/{pci}/numa_node");
    let text = std::fs::read_to_string(path).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

/// NVLink peers from each GPU's link endpoints: a link to another GPU makes them peers; GPUs
/// with links to a non-GPU endpoint (NVSwitch) are all peers of each other.
pub(crate) fn resolve_nvlink_peers(gpus: &mut [Gpu], remotes: &[Vec<PciBusId>]) {
    let by_pci: BTreeMap<PciBusId, u32> = gpus
        .iter()
        .map(|g| (g.pci_bus_id.clone(), g.index))
        .collect();
    let switched: BTreeSet<u32> = gpus
        .iter()
        .zip(remotes)
        .filter(|(_, r)| r.iter().any(|p| !by_pci.contains_key(p)))
        .map(|(g, _)| g.index)
        .collect();
    for (g, r) in gpus.iter_mut().zip(remotes) {
        let mut peers: BTreeSet<u32> = r.iter().filter_map(|p| by_pci.get(p).copied()).collect();
        if switched.contains(&g.index) {
            peers.extend(switched.iter().copied());
        }
        peers.remove(&g.index);
        g.nvlink_peers = peers.into_iter().collect();
    }
}

impl GpuInventory for NvmlInventory {
    /// The GPUs, then the MIG devices of every GPU whose MIG mode is enabled.
    fn gpus(&self) -> Result<Vec<Gpu>, GpuError> {
        let mut gpus = Vec::new();
        let mut remotes = Vec::new();
        for (i, d) in (0u32..).zip(self.devices()?) {
            let (gpu, r) = read_gpu(i, &d)?;
            gpus.push(gpu);
            remotes.push(r);
        }
        resolve_nvlink_peers(&mut gpus, &remotes);
        // MIG devices after every GPU (indexes from `mig_device_index`), each its own GPU.
        let parents: Vec<usize> = (0..gpus.len())
            .filter(|&i| gpus[i].mig_mode == MigMode::Enabled)
            .collect();
        if !parents.is_empty() {
            let minors = crate::nvml_mig::read_mig_minors();
            let devices = self.devices()?;
            for p in parents {
                let parent = gpus[p].clone();
                if let Some(d) = devices.get(p) {
                    let migs = crate::nvml_mig::read_mig_devices(self.nvml, &parent, d, &minors)?;
                    gpus.extend(migs);
                }
            }
        }
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .annotate(&mut gpus);
        Ok(gpus)
    }

    fn poll_health(&self, wait: Duration) -> Result<Vec<HealthEvent>, GpuError> {
        let mut events = Vec::new();
        if let Some(set) = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let mut timeout_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
            while let Ok(data) = set.wait(timeout_ms) {
                timeout_ms = 0; // drain what is queued without waiting again
                let Ok(gpu_uuid) = data.device.uuid() else {
                    continue;
                };
                let kind = if data.event_type.contains(EventTypes::CRITICAL_XID_ERROR) {
                    match data.event_data {
                        Some(XidError::Value(xid)) => HealthEventKind::Xid { xid },
                        _ => HealthEventKind::GpuLost,
                    }
                } else {
                    HealthEventKind::DoubleBitEcc
                };
                events.push(HealthEvent { gpu_uuid, kind });
            }
        }
        for (i, d) in (0u32..).zip(self.devices()?) {
            let uuid = d.uuid().map_err(nvml_err("uuid", i))?;
            match d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile) {
                Ok(count) if count > 0 => events.push(HealthEvent {
                    gpu_uuid: uuid,
                    kind: HealthEventKind::UncorrectedEcc { count },
                }),
                Err(NvmlError::GpuLost) => events.push(HealthEvent {
                    gpu_uuid: uuid,
                    kind: HealthEventKind::GpuLost,
                }),
                _ => {}
            }
        }
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        for e in &events {
            if health.apply(e) {
                tracing::warn!(gpu = %e.gpu_uuid, reason = %e.reason(), "GPU marked unhealthy");
            }
        }
        Ok(events)
    }

    fn describe(&self) -> String {
        format!("NVML, driver {}", self.driver_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, pci: &str) -> Gpu {
        Gpu {
            index,
            minor: index,
            uuid: format!("GPU-{index}"),
            name: "test".into(),
            memory_mib: 1,
            pci_bus_id: PciBusId::parse(pci).expect("test pci id"),
            numa_node: None,
            cpu_affinity: vec![],
            nvlink_peers: vec![],
            pcie_switch: None,
            mig_mode: MigMode::Unsupported,
            health: GpuHealth::Healthy,
            mig: None,
        }
    }

    fn p(s: &str) -> PciBusId {
        PciBusId::parse(s).expect("test pci id")
    }

    #[test]
    fn affinity_bitmask_becomes_cpu_list() {
        let bits = std::os::raw::c_ulong::BITS;
        assert_eq!(affinity_cpus(&[0b1011, 0b1]), vec![0, 1, 3, bits]);
        assert_eq!(affinity_cpus(&[0, 0]), Vec::<u32>::new());
    }

    #[test]
    fn direct_links_and_nvswitch_links_become_peers() {
        let mut gpus = vec![
            gpu(0, "0000:01:00.0"),
            gpu(1, "0000:02:00.0"),
            gpu(2, "0000:03:00.0"),
            gpu(3, "0000:04:00.0"),
            gpu(4, "0000:05:00.0"),
        ];
        let remotes = vec![
            vec![p("0000:02:00.0")], // 0 <-> 1 directly
            vec![p("0000:01:00.0")],
            vec![p("0000:61:00.0")], // 2, 3 through an NVSwitch
            vec![p("0000:61:00.0"), p("0000:62:00.0")],
            vec![], // 4 has no NVLink
        ];
        resolve_nvlink_peers(&mut gpus, &remotes);
        let peers: Vec<Vec<u32>> = gpus.iter().map(|g| g.nvlink_peers.clone()).collect();
        assert_eq!(peers, vec![vec![1], vec![0], vec![3], vec![2], vec![]]);
    }

    #[test]
    fn open_without_a_driver_is_a_clear_error() {
        // On a machine with the driver this opens; without, the error names the library.
        match NvmlInventory::open() {
            Ok(inv) => assert!(!inv.driver_version().is_empty()),
            Err(e) => {
                assert!(matches!(e, GpuError::NvmlUnavailable(_)));
                assert!(e.to_string().contains("libnvidia-ml.so.1"), "{e}");
            }
        }
    }
}
