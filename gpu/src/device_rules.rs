//! Device-cgroup rules and environment for a task's GPUs (spec §5.4, §5.5): allow the task's
//! `/dev/nvidia<minor>` (for a MIG device, its parent's, plus its `/dev/nvidia-caps` nodes) and
//! the control devices, deny every other NVIDIA device; export
//! `NVIDIA_VISIBLE_DEVICES` (UUIDs) and `CUDA_VISIBLE_DEVICES`. Pure: `/proc/devices` is an input.

use crate::model::Gpu;
use std::collections::BTreeSet;
use std::fmt;

/// Char major of `/dev/nvidia<minor>`, `/dev/nvidiactl` and `/dev/nvidia-modeset` (fixed by the driver).
pub const NVIDIA_MAJOR: u32 = 195;
/// Minor of `/dev/nvidiactl`.
pub const NVIDIACTL_MINOR: u32 = 255;
/// Minor of `/dev/nvidia-modeset`.
pub const NVIDIA_MODESET_MINOR: u32 = 254;
/// `/dev/nvidia-uvm` is minor 0 of the `nvidia-uvm` major, `/dev/nvidia-uvm-tools` minor 1
/// (as `nvidia-modprobe -u -c 0` creates them).
const UVM_MINOR: u32 = 0;
const UVM_TOOLS_MINOR: u32 = 1;
/// The `/proc/devices` name of the char major of `/dev/nvidia-caps/nvidia-cap<N>` (dynamic).
pub const NVIDIA_CAPS_MAJOR_NAME: &str = "nvidia-caps";

/// One devices-cgroup rule on a char device, `c MAJOR:MINOR ACCESS` (`*` for any minor).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceRule {
    /// Char device major.
    pub major: u32,
    /// Minor, `None` for every minor (`*`).
    pub minor: Option<u32>,
    /// Access letters: `r`, `w`, `m` (mknod).
    pub access: &'static str,
    /// The device node this rule is about, for logs (`/dev/nvidia3`).
    pub path: String,
}

impl DeviceRule {
    fn rwm(major: u32, minor: Option<u32>, path: impl Into<String>) -> Self {
        Self {
            major,
            minor,
            access: "rwm",
            path: path.into(),
        }
    }
}

impl fmt::Display for DeviceRule {
    /// The cgroup v1 `devices.allow` / `devices.deny` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(m) => write!(f, "c {}:{} {}", self.major, m, self.access),
            None => write!(f, "c {}:* {}", self.major, self.access),
        }
    }
}

/// The rules for one task. Apply `deny` first, then `allow` (cgroup v1 order); an eBPF (v2)
/// program allows exactly `allow` among NVIDIA devices and rejects the rest of `deny`'s majors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAccessRules {
    /// Every NVIDIA char device: major 195 and every `nvidia*` major in `/proc/devices`.
    pub deny: Vec<DeviceRule>,
    /// The control devices and the task's GPUs.
    pub allow: Vec<DeviceRule>,
}

/// Why rules could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceRulesError {
    /// The `nvidia-uvm` module is not loaded (no `nvidia-uvm` line in `/proc/devices`).
    #[error("nvidia-uvm is not in /proc/devices: load it with `nvidia-modprobe -u -c 0`")]
    UvmNotLoaded,
}

/// Char majors by name from `/proc/devices` text (its "Character devices:" section), in order.
pub fn proc_char_majors(proc_devices: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut in_char = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            in_char = line.eq_ignore_ascii_case("Character devices:");
            continue;
        }
        if let (true, Some((m, name))) = (in_char, line.split_once(char::is_whitespace)) {
            if let Ok(m) = m.parse() {
                out.push((m, name.trim().to_string()));
            }
        }
    }
    out
}

/// Device rules from GPU minors alone (what a task's placement carries): deny major 195 and every
/// `nvidia*` char major, then allow the control devices and the given minors. Works where the
/// NVIDIA driver is absent: `nvidia-uvm` is allowed when `/proc/devices` lists it and simply not
/// mentioned otherwise (see [`gpu_device_rules`] for the checked form).
pub fn gpu_device_rules_for_minors(minors: &[u32], proc_devices: &str) -> DeviceAccessRules {
    gpu_device_rules_for(minors, &[], proc_devices)
}

/// [`gpu_device_rules_for_minors`] with MIG: also allow `/dev/nvidia-caps/nvidia-cap<N>` for
/// each of `caps_minors` (the GPU- and compute-instance access nodes of the task's MIG devices),
/// on the `nvidia-caps` major of `/proc/devices`. The other caps nodes (`config` 1, `monitor` 2,
/// other slices) stay denied with the rest of that major. Without an `nvidia-caps` line (no
/// driver, or a driver that keeps MIG caps in `/proc`) no caps rule is written.
pub fn gpu_device_rules_for(
    minors: &[u32],
    caps_minors: &[u32],
    proc_devices: &str,
) -> DeviceAccessRules {
    let majors = proc_char_majors(proc_devices);
    let mut deny_majors: BTreeSet<u32> = majors
        .iter()
        .filter(|(_, name)| name.starts_with("nvidia"))
        .map(|(m, _)| *m)
        .collect();
    deny_majors.insert(NVIDIA_MAJOR);
    let deny = deny_majors
        .into_iter()
        .map(|m| {
            let name = majors
                .iter()
                .find(|(v, _)| *v == m)
                .map_or("nvidia", |(_, n)| n.as_str());
            DeviceRule::rwm(m, None, format!("every {name} device"))
        })
        .collect();
    let mut allow = vec![DeviceRule::rwm(
        NVIDIA_MAJOR,
        Some(NVIDIACTL_MINOR),
        "/dev/nvidiactl",
    )];
    if let Some((uvm, _)) = majors.iter().find(|(_, n)| n == "nvidia-uvm") {
        allow.push(DeviceRule::rwm(*uvm, Some(UVM_MINOR), "/dev/nvidia-uvm"));
        allow.push(DeviceRule::rwm(
            *uvm,
            Some(UVM_TOOLS_MINOR),
            "/dev/nvidia-uvm-tools",
        ));
    }
    allow.push(DeviceRule::rwm(
        NVIDIA_MAJOR,
        Some(NVIDIA_MODESET_MINOR),
        "/dev/nvidia-modeset",
    ));
    let set: BTreeSet<u32> = minors.iter().copied().collect();
    allow.extend(
        set.into_iter()
            .map(|m| DeviceRule::rwm(NVIDIA_MAJOR, Some(m), format!("/dev/nvidia{m}"))),
    );
    if let Some((caps, _)) = majors.iter().find(|(_, n)| n == NVIDIA_CAPS_MAJOR_NAME) {
        let set: BTreeSet<u32> = caps_minors.iter().copied().collect();
        allow.extend(
            set.into_iter().map(|m| {
                DeviceRule::rwm(*caps, Some(m), format!("/dev/nvidia-caps/nvidia-cap{m}"))
            }),
        );
    }
    DeviceAccessRules { deny, allow }
}

/// Builds the device rules for a task given `allocated` GPUs (the same GPU twice is allowed
/// once). `proc_devices` is the text of `/proc/devices`. Control devices (`nvidiactl`,
/// `nvidia-uvm`, `nvidia-uvm-tools`, `nvidia-modeset`) are allowed even for zero GPUs, as Mesos
/// does, so `nvidia-smi` runs in every task.
pub fn gpu_device_rules(
    allocated: &[&Gpu],
    proc_devices: &str,
) -> Result<DeviceAccessRules, DeviceRulesError> {
    if !proc_char_majors(proc_devices)
        .iter()
        .any(|(_, n)| n == "nvidia-uvm")
    {
        return Err(DeviceRulesError::UvmNotLoaded);
    }
    let minors: Vec<u32> = allocated.iter().map(|g| g.minor).collect();
    Ok(gpu_device_rules_for_minors(&minors, proc_devices))
}

/// The task's GPU environment, sorted by PCI bus id (the order CUDA enumerates with
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID`):
/// - `NVIDIA_VISIBLE_DEVICES`: the UUIDs, comma-separated (`void` for none);
/// - `CUDA_VISIBLE_DEVICES`: when `confined` (the devices cgroup hides every other GPU, so the
///   task enumerates only its own), renumbered `0..N-1` as Slurm does; when not confined, the
///   UUIDs, so the task cannot land on GPUs it was not given. Empty string for no GPUs;
/// - `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so index `i` is the `i`-th UUID above.
///
/// MIG devices (UUID `MIG-...`) are always named by UUID in `CUDA_VISIBLE_DEVICES`, confined
/// or not: CUDA enumerates MIG devices by their UUID, and NVIDIA documents exactly this form.
pub fn visible_devices_env(allocated: &[&Gpu], confined: bool) -> Vec<(String, String)> {
    let mut gpus: Vec<&Gpu> = allocated.to_vec();
    gpus.sort_by(|a, b| a.pci_bus_id.cmp(&b.pci_bus_id));
    gpus.dedup_by(|a, b| a.uuid == b.uuid);
    let uuids: Vec<&str> = gpus.iter().map(|g| g.uuid.as_str()).collect();
    let nvidia = if uuids.is_empty() {
        "void".to_string()
    } else {
        uuids.join(",")
    };
    let mig = uuids.iter().any(|u| u.starts_with("MIG-"));
    let cuda = if confined && !mig {
        (0..gpus.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        uuids.join(",")
    };
    vec![
        ("CUDA_DEVICE_ORDER".to_string(), "PCI_BUS_ID".to_string()),
        ("CUDA_VISIBLE_DEVICES".to_string(), cuda),
        ("NVIDIA_VISIBLE_DEVICES".to_string(), nvidia),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuHealth, MigMode};
    use gantry_topology::PciBusId;
    use std::collections::BTreeMap;

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  4 /dev/vc/0\n195 nvidia-frontend\n\
        195 nvidia\n234 nvidia-nvswitch\n235 nvidia-caps\n237 nvidia-nvlink\n510 nvidia-uvm\n\n\
        Block devices:\n  7 loop\n259 blkext\n511 nvidia-fake-block\n";

    fn gpu(index: u32, minor: u32, pci: &str) -> Gpu {
        Gpu {
            index,
            minor,
            uuid: format!("GPU-{index:04}"),
            name: "test".into(),
            memory_mib: 1,
            pci_bus_id: PciBusId::parse(pci).expect("test pci id"),
            numa_node: Some(0),
            cpu_affinity: vec![],
            nvlink_peers: vec![],
            pcie_switch: None,
            mig_mode: MigMode::Unsupported,
            health: GpuHealth::Healthy,
            mig: None,
        }
    }

    fn lines(rules: &[DeviceRule]) -> Vec<String> {
        rules.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn allows_task_gpus_and_control_devices_with_uvm_major_from_proc_devices() {
        let g2 = gpu(2, 2, "0000:39:00.0");
        let g5 = gpu(5, 5, "0000:59:00.0");
        let rules = gpu_device_rules(&[&g5, &g2, &g2], PROC_DEVICES).expect("rules");
        assert_eq!(
            lines(&rules.allow),
            vec![
                "c 195:255 rwm",
                "c 510:0 rwm",
                "c 510:1 rwm",
                "c 195:254 rwm",
                "c 195:2 rwm",
                "c 195:5 rwm",
            ]
        );
        assert_eq!(rules.allow[2].path, "/dev/nvidia-uvm-tools");
        assert_eq!(rules.allow[5].path, "/dev/nvidia5");
    }

    #[test]
    fn denies_every_nvidia_char_major_and_nothing_else() {
        let rules = gpu_device_rules(&[], PROC_DEVICES).expect("rules");
        assert_eq!(
            lines(&rules.deny),
            vec![
                "c 195:* rwm",
                "c 234:* rwm",
                "c 235:* rwm",
                "c 237:* rwm",
                "c 510:* rwm"
            ]
        );
        // Zero GPUs: only control devices, no /dev/nvidiaN.
        assert_eq!(rules.allow.len(), 4);
        assert!(rules
            .allow
            .iter()
            .all(|r| r.minor != Some(0) || r.major != NVIDIA_MAJOR));
    }

    #[test]
    fn missing_uvm_says_how_to_load_it() {
        let err = gpu_device_rules(&[], "Character devices:\n195 nvidia\n");
        assert_eq!(err, Err(DeviceRulesError::UvmNotLoaded));
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("nvidia-modprobe -u -c 0"));
    }

    #[test]
    fn env_renumbers_in_pci_order_when_confined() {
        let a = gpu(7, 7, "0000:5e:00.0");
        let b = gpu(3, 3, "0000:3b:00.0");
        let env: BTreeMap<String, String> =
            visible_devices_env(&[&a, &b], true).into_iter().collect();
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "0,1");
        assert_eq!(env["NVIDIA_VISIBLE_DEVICES"], "GPU-0003,GPU-0007");
        assert_eq!(env["CUDA_DEVICE_ORDER"], "PCI_BUS_ID");
    }

    #[test]
    fn env_uses_uuids_when_not_confined_and_void_for_none() {
        let a = gpu(7, 7, "0000:5e:00.0");
        let env: BTreeMap<String, String> = visible_devices_env(&[&a], false).into_iter().collect();
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "GPU-0007");
        let none: BTreeMap<String, String> = visible_devices_env(&[], true).into_iter().collect();
        assert_eq!(none["CUDA_VISIBLE_DEVICES"], "");
        assert_eq!(none["NVIDIA_VISIBLE_DEVICES"], "void");
    }

    #[test]
    fn a_mig_device_gets_its_parent_node_and_its_caps_nodes_only() {
        let r = gpu_device_rules_for(&[0], &[85, 84, 84], PROC_DEVICES);
        let allow = lines(&r.allow);
        assert!(allow.contains(&"c 195:0 rwm".to_string()));
        assert_eq!(
            allow
                .iter()
                .filter(|l| l.starts_with("c 235:"))
                .collect::<Vec<_>>(),
            vec!["c 235:84 rwm", "c 235:85 rwm"]
        );
        assert!(r
            .allow
            .iter()
            .any(|a| a.path == "/dev/nvidia-caps/nvidia-cap85"));
        assert!(lines(&r.deny).contains(&"c 235:* rwm".to_string()));
        // No nvidia-caps major on the host: no caps rule, the GPU rule stays.
        let r = gpu_device_rules_for(&[0], &[84], "Character devices:\n195 nvidia\n");
        assert!(lines(&r.allow).iter().all(|l| !l.contains(":84 ")));
        let mut m = gpu(1000, 0, "0000:1b:00.0");
        m.uuid = "MIG-aaaa".into();
        let env: BTreeMap<String, String> = visible_devices_env(&[&m], true).into_iter().collect();
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "MIG-aaaa");
        assert_eq!(env["NVIDIA_VISIBLE_DEVICES"], "MIG-aaaa");
    }

    #[test]
    fn works_without_a_driver_and_with_one() {
        let r = gpu_device_rules_for_minors(&[0, 0], "Character devices:\n  1 mem\n");
        let deny: Vec<String> = r.deny.iter().map(ToString::to_string).collect();
        let allow: Vec<String> = r.allow.iter().map(ToString::to_string).collect();
        assert_eq!(deny, vec!["c 195:* rwm"]);
        assert_eq!(allow, vec!["c 195:255 rwm", "c 195:254 rwm", "c 195:0 rwm"]);
        let r =
            gpu_device_rules_for_minors(&[3], "Character devices:\n195 nvidia\n510 nvidia-uvm\n");
        let deny: Vec<String> = r.deny.iter().map(ToString::to_string).collect();
        assert_eq!(deny, vec!["c 195:* rwm", "c 510:* rwm"]);
        assert!(r.allow.iter().any(|a| a.to_string() == "c 510:0 rwm"));
        assert!(r.allow.iter().any(|a| a.to_string() == "c 195:3 rwm"));
    }
}
