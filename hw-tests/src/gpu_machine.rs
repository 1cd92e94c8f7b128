//! Whether this machine can run the GPU tests; when it cannot, the test says why and returns. A
//! passing test's output is hidden by cargo, so a skip is written straight to stderr (not captured)
//! and appended to the file named by `GANTRY_SKIPPED_FILE`, which `scripts/test` lists at the end.

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

/// The environment variable naming the file each skip is appended to.
pub const SKIPPED_FILE_VAR: &str = "GANTRY_SKIPPED_FILE";

/// Reports a skipped test where it cannot be missed: stderr itself (cargo's capture covers only
/// the print macros) and the skip file, one `SKIPPED <test>: <why>` line each.
pub fn report_skip(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os(SKIPPED_FILE_VAR) {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// Opens NVML and runs `nvidia-smi -q -x`; on a machine without them reports
/// `SKIPPED <test>: <why>` ([`report_skip`]) and returns `None`.
pub fn gpu_machine_or_skip(test: &str) -> Option<GpuMachine> {
    let skip = |why: String| {
        report_skip(test, &why);
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
