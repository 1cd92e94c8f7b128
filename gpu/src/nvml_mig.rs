//! MIG devices from NVML: for a GPU with MIG enabled, each MIG device handle
//! (`nvmlDeviceGetMigDeviceHandleByIndex`) read into [`MigDeviceFacts`] (UUID, attributes, GPU
//! and compute instance ids) and mapped to a [`Gpu`] by [`crate::mig::mig_gpu`] with the caps
//! minors of `/proc/driver/nvidia-caps/mig-minors`. Cannot run without a MIG-capable GPU; the
//! mapping it feeds is tested over plain data in `mig`.

use crate::error::GpuError;
use crate::mig::{mig_gpu, MigDeviceFacts, MigMinors, MIG_MINORS_PATH};
use crate::model::Gpu;
use nvml_wrapper::{Device, Nvml};
use std::os::raw::c_uint;

/// NVML_SUCCESS.
const NVML_SUCCESS: c_uint = 0;

/// Which instance id to ask NVML for.
#[derive(Clone, Copy)]
enum InstanceId {
    Gpu,
    Compute,
}

/// `nvmlDeviceGetGpuInstanceId` / `nvmlDeviceGetComputeInstanceId` of a MIG device handle;
/// nvml-wrapper 0.13 loads these symbols but has no safe wrapper for them. `None` when the
/// driver lacks the symbol or the call fails.
#[allow(unsafe_code)]
fn instance_id(nvml: &Nvml, device: &Device<'_>, which: InstanceId) -> Option<u32> {
    let lib = nvml.lib();
    let sym = match which {
        InstanceId::Gpu => lib.nvmlDeviceGetGpuInstanceId.as_ref().ok()?,
        InstanceId::Compute => lib.nvmlDeviceGetComputeInstanceId.as_ref().ok()?,
    };
    let mut id: c_uint = 0;
    // SAFETY: `sym` was resolved from the loaded libnvidia-ml with the C signature
    // `nvmlReturn_t f(nvmlDevice_t, unsigned int *)`; the handle comes from a live `Device`
    // of this same `Nvml` (NVML stays initialised for the process), and `id` is a valid,
    // writable `unsigned int` for the duration of the call.
    let rc = unsafe { sym(device.handle(), &mut id) };
    (rc == NVML_SUCCESS).then_some(id)
}

/// The caps minors the driver lists; empty (the layout formula is used) when the file is
/// missing, e.g. a driver that keeps MIG capabilities under `/proc/driver/nvidia/capabilities`.
pub(crate) fn read_mig_minors() -> MigMinors {
    match std::fs::read_to_string(MIG_MINORS_PATH) {
        Ok(text) => MigMinors::parse(&text),
        Err(e) => {
            tracing::warn!(path = MIG_MINORS_PATH, error = %e, "MIG caps minors from the driver's layout");
            MigMinors::default()
        }
    }
}

/// The MIG devices of `parent` (a GPU whose MIG mode is enabled), in MIG index order. Slots
/// NVML reports as absent (`NotFound`: no MIG device there) are skipped; other errors fail.
pub(crate) fn read_mig_devices(
    nvml: &Nvml,
    parent: &Gpu,
    device: &Device<'_>,
    minors: &MigMinors,
) -> Result<Vec<Gpu>, GpuError> {
    let err = |call: &'static str| {
        let index = parent.index;
        move |e: nvml_wrapper::error::NvmlError| GpuError::Nvml {
            call,
            index,
            detail: e.to_string(),
        }
    };
    let max = device.mig_device_count().map_err(err("mig_device_count"))?;
    let mut out = Vec::new();
    for n in 0..max {
        let mig = match device.mig_device_by_index(n) {
            Ok(m) => m,
            Err(nvml_wrapper::error::NvmlError::NotFound) => continue,
            Err(e) => return Err(err("mig_device_by_index")(e)),
        };
        let attrs = mig.attributes().map_err(err("attributes"))?;
        let facts = MigDeviceFacts {
            mig_index: n,
            uuid: mig.uuid().map_err(err("uuid"))?,
            gpu_instance: instance_id(nvml, &mig, InstanceId::Gpu).ok_or(GpuError::Nvml {
                call: "nvmlDeviceGetGpuInstanceId",
                index: parent.index,
                detail: format!("no GPU instance id for MIG device {n}"),
            })?,
            compute_instance: instance_id(nvml, &mig, InstanceId::Compute).ok_or(
                GpuError::Nvml {
                    call: "nvmlDeviceGetComputeInstanceId",
                    index: parent.index,
                    detail: format!("no compute instance id for MIG device {n}"),
                },
            )?,
            memory_mib: attrs.memory_size_mb,
            sm_count: attrs.multiprocessor_count,
            gpu_slices: attrs.gpu_instance_slice_count,
            compute_slices: attrs.compute_instance_slice_count,
        };
        out.push(mig_gpu(parent, &facts, minors));
    }
    Ok(out)
}
