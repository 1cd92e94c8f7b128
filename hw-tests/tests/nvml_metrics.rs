//! On a real NVIDIA GPU: the NVML metrics source reads every GPU the inventory lists, with figures
//! in range (utilisation 0..=100 %, memory used within the installed total, which matches the
//! inventory's, a plausible power draw and temperature) that agree with `nvidia-smi
//! --query-gpu`; and the attribution gives a task exactly its GPU's reading. Without a GPU each
//! test prints why it skipped.

use gantry_gpu::{GpuAttribution, GpuMetricsSource, GpuReading, NvmlMetrics};
use gantry_hw_tests::gpu_machine_or_skip;
use gantry_proto::{GpuAssignment, TaskId};
use std::collections::BTreeMap;
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// `nvidia-smi --query-gpu=uuid,memory.total,temperature.gpu --format=csv,noheader,nounits`:
/// UUID -> (memory total MiB, temperature °C; `None` where it prints `[N/A]`).
fn smi_query() -> BTreeMap<String, (Option<u64>, Option<f64>)> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=uuid,memory.total,temperature.gpu",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .expect("run nvidia-smi --query-gpu");
    assert!(out.status.success(), "nvidia-smi --query-gpu failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let (uuid, mem, temp) = (f.first()?, f.get(1)?, f.get(2)?);
            Some((uuid.to_string(), (mem.parse().ok(), temp.parse().ok())))
        })
        .collect()
}

fn in_range(r: &GpuReading) {
    for (name, v) in [
        ("gpu_util_percent", r.gpu_util_percent),
        ("memory_util_percent", r.memory_util_percent),
    ] {
        if let Some(v) = v {
            assert!((0.0..=100.0).contains(&v), "{} {name} {v}", r.uuid);
        }
    }
    if let (Some(used), Some(total)) = (r.memory_used_bytes, r.memory_total_bytes) {
        assert!(used <= total, "{}: used {used} > total {total}", r.uuid);
    }
    if let Some(w) = r.power_watts {
        assert!(w > 0.0 && w < 2000.0, "{}: power {w} W", r.uuid);
    }
    if let Some(t) = r.temperature_celsius {
        assert!(t > 0.0 && t < 120.0, "{}: temperature {t} °C", r.uuid);
    }
}

#[test]
fn nvml_readings_cover_every_gpu_and_agree_with_nvidia_smi() {
    let Some(m) = gpu_machine_or_skip("nvml_readings_cover_every_gpu_and_agree_with_nvidia_smi")
    else {
        return;
    };
    let src = NvmlMetrics::open().expect("NVML metrics on a machine whose NVML inventory works");
    let first = src.sample().expect("sample");
    let second = src.sample().expect("a second sample");
    for r in &second {
        println!(
            "{}: gpu {:?} % mem {:?} % used {:?} of {:?} B, {:?} W, {:?} °C, new XIDs {:?}",
            r.uuid,
            r.gpu_util_percent,
            r.memory_util_percent,
            r.memory_used_bytes,
            r.memory_total_bytes,
            r.power_watts,
            r.temperature_celsius,
            r.new_xids
        );
    }
    let smi = smi_query();
    for g in &m.gpus {
        for sample in [&first, &second] {
            let r = sample
                .iter()
                .find(|r| r.uuid == g.uuid)
                .unwrap_or_else(|| panic!("no reading of GPU {} ({})", g.index, g.uuid));
            in_range(r);
            assert!(r.gpu_util_percent.is_some(), "{}: no utilisation", g.uuid);
            assert_eq!(
                r.memory_total_bytes.map(|b| b / MIB),
                Some(g.memory_mib),
                "{}: total memory vs the inventory",
                g.uuid
            );
        }
        let r = second.iter().find(|r| r.uuid == g.uuid).expect("reading");
        if let Some((Some(mem), temp)) = smi.get(&g.uuid) {
            // nvidia-smi's memory.total is NVML's, in MiB.
            assert_eq!(
                r.memory_total_bytes.map(|b| b / MIB),
                Some(*mem),
                "{}",
                g.uuid
            );
            if let (Some(t), Some(ours)) = (temp, r.temperature_celsius) {
                assert!(
                    (t - ours).abs() <= 5.0,
                    "{}: {ours} °C vs nvidia-smi {t}",
                    g.uuid
                );
            }
        }
    }
}

#[test]
fn a_task_holding_a_real_gpu_gets_its_reading() {
    let Some(m) = gpu_machine_or_skip("a_task_holding_a_real_gpu_gets_its_reading") else {
        return;
    };
    let src = NvmlMetrics::open().expect("NVML metrics");
    let g = &m.gpus[0];
    let held = vec![GpuAssignment {
        index: g.index,
        minor: g.minor,
        uuid: g.uuid.as_str().into(),
        pci_bus_id: g.pci_bus_id.as_str().into(),
        caps_minors: Vec::new(),
    }];
    let task = TaskId::from("hw.1");
    let mut a = GpuAttribution::default();
    a.record(
        src.sample().expect("sample"),
        &[(task.clone(), held.clone())],
        1.0,
    );
    let usage = a.usage_of(&task, &held);
    println!("task hw.1 on {}: {usage:?}", g.uuid);
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].uuid, g.uuid);
    assert_eq!(
        usage[0].memory_total_bytes.map(|b| b / MIB),
        Some(g.memory_mib)
    );
}
