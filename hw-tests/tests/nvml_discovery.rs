//! On a real NVIDIA GPU: NVML discovery agrees with `nvidia-smi -q -x`; the GPUs sit in the NUMA
//! domains the agent would report, in agreement with hwloc; the device rules name the real
//! device numbers of `/dev/nvidia*`. Without a GPU each test prints why it skipped.

use gantry_gpu::{
    check_numa_locality, gpu_device_rules, numa_domains, GpuInventory, LocalityMismatch,
    NVIDIACTL_MINOR, NVIDIA_MAJOR,
};
use gantry_hw_tests::{char_device_numbers, gpu_machine_or_skip, parse_nvidia_smi_xml};
use gantry_topology::Topology;
use std::path::Path;
use std::time::Duration;

#[test]
fn nvml_discovery_agrees_with_nvidia_smi() {
    let Some(m) = gpu_machine_or_skip("nvml_discovery_agrees_with_nvidia_smi") else {
        return;
    };
    let smi = parse_nvidia_smi_xml(&m.nvidia_smi_xml).expect("parse nvidia-smi -q -x");
    println!("NVML ({}) sees {} GPU(s):", m.nvml.describe(), m.gpus.len());
    for g in &m.gpus {
        println!(
            "  {} {} {} minor {} NUMA {:?} {} MiB MIG {:?}",
            g.index, g.uuid, g.pci_bus_id, g.minor, g.numa_node, g.memory_mib, g.mig_mode
        );
    }
    // MIG devices are GPUs of their own for Gantry; `nvidia-smi -q -x` lists physical GPUs.
    let physical: Vec<_> = m.gpus.iter().filter(|g| !g.is_mig_device()).collect();
    assert_eq!(physical.len(), smi.len(), "GPU count");
    for (g, s) in physical.iter().zip(&smi) {
        assert_eq!(g.uuid, s.uuid, "UUID of GPU {}", g.index);
        assert_eq!(g.pci_bus_id, s.pci_bus_id, "PCI bus id of GPU {}", g.index);
        if let Some(minor) = s.minor {
            assert_eq!(g.minor, minor, "minor of GPU {}", g.index);
        }
        assert_eq!(g.name, s.product_name, "name of GPU {}", g.index);
    }
}

#[test]
fn gpus_land_in_the_numa_domains_hwloc_agrees_with() {
    let Some(m) = gpu_machine_or_skip("gpus_land_in_the_numa_domains_hwloc_agrees_with") else {
        return;
    };
    let topo = Topology::discover().expect("hwloc discovers this machine");
    let mismatches = check_numa_locality(&m.gpus, &topo);
    for mm in &mismatches {
        println!("hwloc vs NVML: {mm}");
    }
    // A GPU without NUMA information in sysfs (-1, single-node VMs) is not a disagreement;
    // two different known nodes, or a GPU hwloc does not see on the PCI bus, are.
    let real: Vec<&LocalityMismatch> = mismatches
        .iter()
        .filter(|mm| match mm {
            LocalityMismatch::NumaNode {
                inventory, hwloc, ..
            } => inventory.is_some() && hwloc.is_some(),
            LocalityMismatch::MissingInHwloc { .. } | LocalityMismatch::Uuid { .. } => true,
            LocalityMismatch::MissingInInventory { .. } => false,
        })
        .collect();
    assert!(real.is_empty(), "hwloc and NVML disagree: {real:?}");
    let domains = numa_domains(&topo, &m.gpus);
    for d in &domains {
        println!(
            "NUMA {}: {} CPUs, {:.0} MiB, GPUs {:?}",
            d.id,
            d.cpus.len(),
            d.mem,
            d.gpus
        );
    }
    for g in m.gpus.iter().filter(|g| g.numa_node.is_some()) {
        let holding = domains.iter().filter(|d| d.gpus.contains(&g.index)).count();
        assert_eq!(
            holding, 1,
            "GPU {} must be in exactly one NUMA domain",
            g.index
        );
    }
}

#[test]
fn device_rules_match_the_real_device_nodes() {
    let Some(m) = gpu_machine_or_skip("device_rules_match_the_real_device_nodes") else {
        return;
    };
    let proc_devices = std::fs::read_to_string("/proc/devices").expect("read /proc/devices");
    let gpus: Vec<_> = m.gpus.iter().collect();
    let rules = match gpu_device_rules(&gpus, &proc_devices) {
        Ok(r) => r,
        Err(e) => panic!("{e} (the GPU machine must have nvidia-uvm loaded)"),
    };
    for r in &rules.allow {
        let path = Path::new(&r.path);
        match char_device_numbers(path) {
            Some(numbers) => assert_eq!(
                Some(numbers),
                r.minor.map(|mi| (r.major, mi)),
                "{r} vs {}",
                r.path
            ),
            None => println!(
                "note: {} does not exist here (rule {r} is harmless)",
                r.path
            ),
        }
    }
    assert_eq!(
        char_device_numbers(Path::new("/dev/nvidiactl")),
        Some((NVIDIA_MAJOR, NVIDIACTL_MINOR))
    );
    for g in &m.gpus {
        let node = format!("/dev/nvidia{}", g.minor);
        assert_eq!(
            char_device_numbers(Path::new(&node)),
            Some((NVIDIA_MAJOR, g.minor)),
            "{node}"
        );
    }
}

#[test]
fn health_poll_runs_and_healthy_gpus_stay_healthy() {
    let Some(m) = gpu_machine_or_skip("health_poll_runs_and_healthy_gpus_stay_healthy") else {
        return;
    };
    let events = m
        .nvml
        .poll_health(Duration::from_millis(200))
        .expect("poll NVML health");
    for e in &events {
        println!("health event: {e:?} -> {}", e.reason());
    }
    let after = m.nvml.gpus().expect("gpus");
    for g in &after {
        let critical = events
            .iter()
            .any(|e| e.gpu_uuid == g.uuid && e.is_critical());
        assert_eq!(
            !g.health.is_healthy(),
            critical,
            "GPU {} health {:?}",
            g.index,
            g.health
        );
    }
}
