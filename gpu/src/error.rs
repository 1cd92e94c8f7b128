//! Errors of GPU discovery and fixture loading.

use std::path::PathBuf;

/// Why GPUs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// libnvidia-ml could not be loaded or initialised (no driver on this machine).
    #[error("NVML unavailable, is the NVIDIA driver installed? ({0})")]
    NvmlUnavailable(String),
    /// An NVML call failed for one device.
    #[error("NVML {call} failed for GPU {index}: {detail}")]
    Nvml {
        /// The NVML function (as nvml-wrapper names it).
        call: &'static str,
        /// The NVML index of the device.
        index: u32,
        /// NVML's error text.
        detail: String,
    },
    /// The fixture file could not be read.
    #[error("cannot read GPU fixture {path}: {source}")]
    FixtureIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The fixture file is not a valid GPU inventory.
    #[error("invalid GPU fixture {path}: {detail}")]
    FixtureInvalid {
        /// The file (or `<string>`).
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}
