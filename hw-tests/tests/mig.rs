//! On a real GPU with MIG enabled: NVML lists each MIG device as a GPU of its own (UUID `MIG-`,
//! its parent's minor and PCI address, a well-formed profile), `nvidia-smi -L` names the same
//! UUIDs, its `/dev/nvidia-caps/nvidia-cap<N>` nodes exist with the `nvidia-caps` major and the
//! minors Gantry derived, and the device rules of a task given the slice allow exactly those
//! caps nodes and the parent. Skips, saying so, without a GPU or without MIG enabled.

use gantry_gpu::{gpu_device_rules_for, is_valid_profile, MigMode, NVIDIA_CAPS_MAJOR_NAME};
use gantry_hw_tests::{char_device_numbers, gpu_machine_or_skip, report_skip};
use std::path::Path;
use std::process::Command;

#[test]
fn mig_devices_are_gpus_with_their_caps_nodes() {
    const TEST: &str = "mig_devices_are_gpus_with_their_caps_nodes";
    let Some(m) = gpu_machine_or_skip(TEST) else {
        return;
    };
    let parents: Vec<_> = m
        .gpus
        .iter()
        .filter(|g| !g.is_mig_device() && g.mig_mode == MigMode::Enabled)
        .collect();
    if parents.is_empty() {
        report_skip(
            TEST,
            "no GPU has MIG enabled (nvidia-smi -i N -mig 1, then create instances)",
        );
        return;
    }
    let slices: Vec<_> = m.gpus.iter().filter(|g| g.is_mig_device()).collect();
    if slices.is_empty() {
        report_skip(
            TEST,
            "MIG is enabled but no GPU/compute instance exists (nvidia-smi mig -cgi 19 -C)",
        );
        return;
    }
    let proc_devices = std::fs::read_to_string("/proc/devices").expect("read /proc/devices");
    let caps_major = gantry_gpu::proc_char_majors(&proc_devices)
        .into_iter()
        .find(|(_, n)| n == NVIDIA_CAPS_MAJOR_NAME)
        .map(|(m, _)| m)
        .expect("nvidia-caps in /proc/devices on a MIG machine");
    let listed = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .expect("run nvidia-smi -L");
    for g in &slices {
        let s = g.mig.as_ref().expect("a MIG device has its slice");
        println!(
            "  MIG {} index {} on GPU {} GI {} CI {} profile {} {} MiB {} SMs caps {:?}",
            g.uuid,
            g.index,
            s.parent_index,
            s.gpu_instance,
            s.compute_instance,
            s.profile,
            g.memory_mib,
            s.sm_count,
            s.caps_minors
        );
        assert!(g.uuid.starts_with("MIG-"), "{}", g.uuid);
        assert!(listed.contains(&g.uuid), "nvidia-smi -L lists {}", g.uuid);
        assert!(is_valid_profile(&s.profile), "profile {:?}", s.profile);
        let parent = parents
            .iter()
            .find(|p| p.index == s.parent_index)
            .expect("the parent is listed");
        assert_eq!((g.minor, &g.pci_bus_id), (parent.minor, &parent.pci_bus_id));
        assert!(g.memory_mib > 0 && g.memory_mib < parent.memory_mib);
        for &c in &s.caps_minors {
            let node = format!("/dev/nvidia-caps/nvidia-cap{c}");
            assert_eq!(
                char_device_numbers(Path::new(&node)),
                Some((caps_major, c)),
                "{node} (created by nvidia-modprobe -f -c <minor>?)"
            );
        }
        let rules = gpu_device_rules_for(&[g.minor], &s.caps_minors, &proc_devices);
        let caps_allowed: Vec<u32> = rules
            .allow
            .iter()
            .filter(|r| r.major == caps_major)
            .filter_map(|r| r.minor)
            .collect();
        let mut want = s.caps_minors.clone();
        want.sort_unstable();
        want.dedup();
        assert_eq!(caps_allowed, want);
    }
}
