//! MIG (multi-instance GPU) devices as GPUs of their own: the slice a MIG device is
//! ([`MigSlice`]), its index and profile name, the `/dev/nvidia-caps/nvidia-cap<N>` minors that
//! give access to it (from `/proc/driver/nvidia-caps/mig-minors`), profile validation, and the
//! mapping from what NVML reports of a MIG device ([`MigDeviceFacts`]) to a [`Gpu`]. Pure: the
//! NVML calls live in `nvml_inventory`.

use crate::model::{Gpu, MigMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the driver lists the caps minors of every GPU instance and compute instance.
pub const MIG_MINORS_PATH: &str = "/proc/driver/nvidia-caps/mig-minors";

/// The index a MIG device gets: `(parent + 1) * 1000 + n` for MIG device `n` of the parent at
/// NVML index `parent` (GPU 0's MIG devices are 1000.., GPU 3's 4000..). NVML has no index of
/// its own for MIG devices; these never collide with GPU indexes (under 1000).
pub const MIG_INDEX_STRIDE: u32 = 1000;

/// The longest profile name accepted (`1c.3g.40gb+me` is 13 bytes).
pub const MAX_PROFILE_LEN: usize = 16;

/// What makes a MIG device a slice of its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigSlice {
    /// NVML index of the parent GPU.
    pub parent_index: u32,
    /// UUID of the parent GPU (`GPU-...`).
    pub parent_uuid: String,
    /// GPU instance id on the parent.
    pub gpu_instance: u32,
    /// Compute instance id inside the GPU instance.
    pub compute_instance: u32,
    /// Profile name, e.g. `1g.10gb`.
    pub profile: String,
    /// Streaming multiprocessors of the slice.
    pub sm_count: u32,
    /// GPU-instance slices (the `N` of `Ng`).
    pub gpu_slices: u32,
    /// Minors of its `/dev/nvidia-caps/nvidia-cap<N>` nodes: GPU instance access, then compute
    /// instance access.
    pub caps_minors: Vec<u32>,
}

/// The index of MIG device `n` of the GPU at NVML index `parent` (see [`MIG_INDEX_STRIDE`]).
pub fn mig_device_index(parent: u32, n: u32) -> u32 {
    parent
        .saturating_add(1)
        .saturating_mul(MIG_INDEX_STRIDE)
        .saturating_add(n)
}

/// The profile name NVIDIA gives a slice: `<g>g.<GB>gb`, or `<c>c.<g>g.<GB>gb` when the compute
/// instance takes fewer slices than its GPU instance; GB is the memory rounded up to whole GiB
/// (as the NVIDIA device plugin names them: 9856 MiB is `10gb`). Media-extension variants
/// (`+me`) cannot be told apart from these numbers and are named without the suffix.
pub fn profile_name(gpu_slices: u32, compute_slices: u32, memory_mib: u64) -> String {
    let gb = memory_mib.div_ceil(1024);
    if compute_slices != 0 && compute_slices < gpu_slices {
        format!("{compute_slices}c.{gpu_slices}g.{gb}gb")
    } else {
        format!("{gpu_slices}g.{gb}gb")
    }
}

/// True for a well-formed profile name: `[<c>c.]<g>g.<GB>gb` with an optional `+me` / `+gfx`
/// / `-me` suffix, digits at most 4 long, at most [`MAX_PROFILE_LEN`] bytes.
pub fn is_valid_profile(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_PROFILE_LEN {
        return false;
    }
    let base = ["+me", "+gfx", "-me"]
        .iter()
        .find_map(|suf| s.strip_suffix(suf))
        .unwrap_or(s);
    let Some(base) = base.strip_suffix("gb") else {
        return false;
    };
    let parts: Vec<&str> = base.split('.').collect();
    let num = |p: &str, unit: char| {
        p.strip_suffix(unit)
            .is_some_and(|d| !d.is_empty() && d.len() <= 4 && d.bytes().all(|b| b.is_ascii_digit()))
    };
    let gb_ok = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [g, gb] => num(g, 'g') && gb_ok(gb),
        [c, g, gb] => num(c, 'c') && num(g, 'g') && gb_ok(gb),
        _ => false,
    }
}

/// One capability node named in `mig-minors`: the GPU's device minor, the GPU instance, and the
/// compute instance (`None` for the GPU instance's own access node).
pub type CapKey = (u32, u32, Option<u32>);

/// The caps minors of every GPU instance and compute instance, from the text of
/// [`MIG_MINORS_PATH`] (lines `gpu<minor>/gi<G>/access <N>` and `gpu<minor>/gi<G>/ci<C>/access
/// <N>`; `config` and `monitor` lines and anything unparsable are skipped). `gpu<minor>` is the
/// GPU's device minor (`/dev/nvidia<minor>`), not its NVML index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigMinors {
    minors: BTreeMap<CapKey, u32>,
}

impl MigMinors {
    /// Parses `mig-minors` text.
    pub fn parse(text: &str) -> Self {
        let mut minors = BTreeMap::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(path), Some(n), None) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Some(key), Ok(n)) = (cap_key(path), n.parse::<u32>()) else {
                continue;
            };
            minors.insert(key, n);
        }
        Self { minors }
    }

    /// The minor of one node, from the file when it lists it, else from the layout every driver
    /// so far writes (see [`formula_minor`]).
    pub fn minor(&self, key: CapKey) -> u32 {
        self.minors
            .get(&key)
            .copied()
            .unwrap_or_else(|| formula_minor(key))
    }

    /// True when nothing was parsed (no file, or an empty one).
    pub fn is_empty(&self) -> bool {
        self.minors.is_empty()
    }

    /// `[GPU instance access, compute instance access]` minors of a slice.
    pub fn slice_minors(&self, gpu_minor: u32, gi: u32, ci: u32) -> Vec<u32> {
        vec![
            self.minor((gpu_minor, gi, None)),
            self.minor((gpu_minor, gi, Some(ci))),
        ]
    }
}

fn cap_key(path: &str) -> Option<CapKey> {
    let rest = path.strip_prefix("gpu")?;
    let (gpu, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("gi")?;
    let (gi, rest) = rest.split_once('/')?;
    let (gpu, gi) = (gpu.parse().ok()?, gi.parse().ok()?);
    if rest == "access" {
        return Some((gpu, gi, None));
    }
    let ci = rest
        .strip_prefix("ci")?
        .strip_suffix("/access")?
        .parse()
        .ok()?;
    Some((gpu, gi, Some(ci)))
}

/// The layout of `mig-minors` as the driver writes it: minors 1 and 2 are `config` and
/// `monitor`; then per GPU minor 15 GPU instances of 9 nodes each (the instance's access, then
/// its 8 compute instances): `3 + gpu * 135 + gi * 9 (+ 1 + ci)`. Used only for nodes the file
/// does not list.
pub fn formula_minor((gpu, gi, ci): CapKey) -> u32 {
    let base = 3 + gpu * 135 + gi * 9;
    match ci {
        None => base,
        Some(c) => base + 1 + c,
    }
}

/// What NVML reports of one MIG device (plain data, so the mapping is testable without a GPU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigDeviceFacts {
    /// `n` in `nvmlDeviceGetMigDeviceHandleByIndex(parent, n)`.
    pub mig_index: u32,
    /// `MIG-...`.
    pub uuid: String,
    /// `nvmlDeviceGetGpuInstanceId`.
    pub gpu_instance: u32,
    /// `nvmlDeviceGetComputeInstanceId`.
    pub compute_instance: u32,
    /// `nvmlDeviceGetAttributes`: memory, MiB.
    pub memory_mib: u64,
    /// Attributes: multiprocessor count.
    pub sm_count: u32,
    /// Attributes: GPU instance slice count.
    pub gpu_slices: u32,
    /// Attributes: compute instance slice count.
    pub compute_slices: u32,
}

/// The [`Gpu`] a MIG device of `parent` is: the parent's locality and device node, its own
/// UUID, memory, index ([`mig_device_index`]), profile and caps minors. No NVLink peers: NCCL
/// does not use NVLink between MIG devices.
pub fn mig_gpu(parent: &Gpu, facts: &MigDeviceFacts, minors: &MigMinors) -> Gpu {
    let profile = profile_name(facts.gpu_slices, facts.compute_slices, facts.memory_mib);
    Gpu {
        index: mig_device_index(parent.index, facts.mig_index),
        minor: parent.minor,
        uuid: facts.uuid.clone(),
        name: format!("{} MIG {profile}", parent.name),
        memory_mib: facts.memory_mib,
        pci_bus_id: parent.pci_bus_id.clone(),
        numa_node: parent.numa_node,
        cpu_affinity: parent.cpu_affinity.clone(),
        nvlink_peers: Vec::new(),
        pcie_switch: parent.pcie_switch.clone(),
        mig_mode: MigMode::Enabled,
        health: parent.health.clone(),
        mig: Some(MigSlice {
            parent_index: parent.index,
            parent_uuid: parent.uuid.clone(),
            gpu_instance: facts.gpu_instance,
            compute_instance: facts.compute_instance,
            profile,
            sm_count: facts.sm_count,
            gpu_slices: facts.gpu_slices,
            caps_minors: minors.slice_minors(
                parent.minor,
                facts.gpu_instance,
                facts.compute_instance,
            ),
        }),
    }
}

/// Checks the MIG devices of an inventory: each names an existing parent with MIG enabled, by
/// index and UUID, shares its minor and PCI address, has a valid profile, a `MIG-` UUID, an index
/// of its own, and (GPU instance, compute instance) and caps minors no other slice has.
pub fn validate_mig(gpus: &[Gpu]) -> Result<(), String> {
    let mut instances = std::collections::BTreeSet::new();
    let mut caps = std::collections::BTreeSet::new();
    for g in gpus {
        let Some(m) = &g.mig else { continue };
        let parent = gpus
            .iter()
            .find(|p| p.mig.is_none() && p.index == m.parent_index)
            .ok_or_else(|| {
                format!(
                    "MIG device {} names parent GPU {} that is not listed",
                    g.uuid, m.parent_index
                )
            })?;
        if parent.mig_mode != MigMode::Enabled {
            return Err(format!(
                "MIG device {} is on GPU {} whose MIG mode is not enabled",
                g.uuid, parent.index
            ));
        }
        if parent.uuid != m.parent_uuid
            || parent.minor != g.minor
            || parent.pci_bus_id != g.pci_bus_id
        {
            return Err(format!(
                "MIG device {} disagrees with its parent GPU {} on UUID, minor or PCI address",
                g.uuid, parent.index
            ));
        }
        if !g.uuid.starts_with("MIG-") {
            return Err(format!(
                "MIG device UUID {} does not start with MIG-",
                g.uuid
            ));
        }
        if !is_valid_profile(&m.profile) {
            return Err(format!(
                "MIG device {} has an invalid profile {:?}",
                g.uuid, m.profile
            ));
        }
        if !instances.insert((m.parent_index, m.gpu_instance, m.compute_instance)) {
            return Err(format!(
                "two MIG devices on GPU {} are GPU instance {} / compute instance {}",
                m.parent_index, m.gpu_instance, m.compute_instance
            ));
        }
        for c in &m.caps_minors {
            if !caps.insert(*c) {
                return Err(format!("caps minor {c} is given to two MIG devices"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GpuHealth;
    use gantry_topology::PciBusId;

    const MIG_MINORS: &str = "config 1\nmonitor 2\ngpu0/gi0/access 3\ngpu0/gi0/ci0/access 4\n\
        gpu0/gi0/ci1/access 5\ngpu0/gi1/access 12\ngpu0/gi1/ci0/access 13\n\
        gpu1/gi2/access 156\ngpu1/gi2/ci0/access 157\nbogus line here\ngpu2/gix/access 9\n";

    fn parent() -> Gpu {
        Gpu {
            index: 1,
            minor: 1,
            uuid: "GPU-p".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            memory_mib: 81559,
            pci_bus_id: PciBusId::parse("0000:2a:00.0").expect("pci"),
            numa_node: Some(0),
            cpu_affinity: vec![0, 1],
            nvlink_peers: vec![0],
            pcie_switch: None,
            mig_mode: MigMode::Enabled,
            health: GpuHealth::Healthy,
            mig: None,
        }
    }

    #[test]
    fn mig_minors_parse_and_the_formula_agrees_with_the_driver_layout() {
        let m = MigMinors::parse(MIG_MINORS);
        assert_eq!(m.minor((0, 0, None)), 3);
        assert_eq!(m.minor((0, 0, Some(1))), 5);
        assert_eq!(m.minor((0, 1, None)), 12);
        assert_eq!(m.minor((1, 2, Some(0))), 157);
        for key in [(0, 0, None), (0, 0, Some(1)), (0, 1, Some(0)), (1, 2, None)] {
            assert_eq!(formula_minor(key), m.minor(key), "{key:?}");
        }
        // Not listed: the formula. Unparsable lines are skipped, not errors.
        assert_eq!(m.minor((2, 14, Some(7))), 3 + 270 + 126 + 8);
        assert!(MigMinors::parse("").is_empty());
        assert!(!m.is_empty());
    }

    #[test]
    fn profile_names_follow_nvidia() {
        assert_eq!(profile_name(1, 1, 9856), "1g.10gb");
        assert_eq!(profile_name(3, 3, 40448), "3g.40gb");
        assert_eq!(profile_name(7, 7, 81559), "7g.80gb");
        assert_eq!(profile_name(3, 1, 40448), "1c.3g.40gb");
        for ok in [
            "1g.10gb",
            "3g.40gb",
            "1g.10gb+me",
            "1c.3g.40gb",
            "7g.80gb",
            "1g.12gb-me",
        ] {
            assert!(is_valid_profile(ok), "{ok}");
        }
        for bad in [
            "",
            "1g",
            "10gb",
            "g.10gb",
            "1x.10gb",
            "1g.10GB",
            "1g.10gb+xx",
            "1g.gb",
            "12345g.1gb",
            "1g.10gb.2",
        ] {
            assert!(!is_valid_profile(bad), "{bad}");
        }
    }

    #[test]
    fn a_mig_device_is_a_gpu_with_its_parents_node_and_its_own_caps() {
        let facts = MigDeviceFacts {
            mig_index: 2,
            uuid: "MIG-abc".into(),
            gpu_instance: 2,
            compute_instance: 0,
            memory_mib: 9856,
            sm_count: 16,
            gpu_slices: 1,
            compute_slices: 1,
        };
        let g = mig_gpu(&parent(), &facts, &MigMinors::parse(MIG_MINORS));
        assert_eq!(g.index, 2002);
        assert_eq!((g.minor, g.memory_mib), (1, 9856));
        assert_eq!(g.pci_bus_id, parent().pci_bus_id);
        assert!(g.nvlink_peers.is_empty());
        assert!(!g.is_whole() && g.is_mig_device());
        let m = g.mig.as_ref().expect("slice");
        assert_eq!(m.profile, "1g.10gb");
        assert_eq!(m.caps_minors, vec![156, 157]);
        assert_eq!(m.parent_uuid, "GPU-p");
        let mut all = vec![parent(), g.clone()];
        assert_eq!(validate_mig(&all), Ok(()));
        all.push(Gpu {
            uuid: "MIG-dup".into(),
            index: 2003,
            ..g.clone()
        });
        assert!(validate_mig(&all).is_err_and(|e| e.contains("GPU instance 2")));
        all.pop();
        all[0].mig_mode = MigMode::Disabled;
        assert!(validate_mig(&all).is_err_and(|e| e.contains("not enabled")));
    }
}
