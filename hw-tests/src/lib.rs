//! Support for the tests that need a real NVIDIA GPU: parsing `nvidia-smi -q -x`, reading device
//! numbers of `/dev/nvidia*`, and deciding (loudly) whether this machine can run them.

mod device_numbers;
mod gpu_machine;
mod nvidia_smi;

pub use device_numbers::{char_device_numbers, major_minor};
pub use gpu_machine::{gpu_machine_or_skip, report_skip, GpuMachine, SKIPPED_FILE_VAR};
pub use nvidia_smi::{parse_nvidia_smi_xml, run_nvidia_smi_xml, NvidiaSmiError, SmiGpu};
