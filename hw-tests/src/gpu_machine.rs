//! Whether this machine can run the GPU tests; when it cannot, the test prints why and returns.

use gantry_gpu::{Gpu, GpuInventory, NvmlInventory};

/// What a GPU test gets on a machine with a working driver.
pub struct GpuMachine {
    /// The NVML inventory.
    pub nvml: NvmlInventory,
    /// Its GPUs (at least one).
    pub gpus: Vec<Gpu>,
    /// The raw `nvidia-smi -q -x` report.
    pub nvidia_smi_xml: String,
}

/// Opens NVML and runs `nvidia-smi -q -x`; on a machine without them prints
/// `SKIPPED <test>: <why>` and returns `None`.
pub fn gpu_machine_or_skip(test: &str) -> Option<GpuMachine> {
    let skip = |why: String| {
        println!("SKIPPED {test}: {why}");
        None
    };
    let nvml = match NvmlInventory::open() {
        Ok(n) => n,
        Err(e) => return skip(format!("no NVIDIA driver on this machine: {e}")),
    };
    let gpus = match nvml.gpus() {
        Ok(g) if !g.is_empty() => g,
        Ok(_) => return skip("NVML loaded but reports no GPUs".into()),
        Err(e) => return skip(format!("NVML cannot list GPUs: {e}")),
    };
    match crate::run_nvidia_smi_xml() {
        Ok(xml) => Some(GpuMachine {
            nvml,
            gpus,
            nvidia_smi_xml: xml,
        }),
        Err(e) => skip(format!("NVML works but nvidia-smi does not: {e}")),
    }
}
