//! What a cgroup v2 device filter costs per launch (run as root on a host with cgroup2):
//! `cargo bench -p gantry-agentd --bench device_filter` (GANTRY_BENCH_N attaches, default 1000).
//!
//! Each round builds the filter of a 1-GPU task from this host's `/proc/devices` (the v1 plan
//! parsed into rules), assembles it, loads it (`BPF_PROG_LOAD`, through the verifier) and
//! installs it on one test cgroup (query, attach with `BPF_F_ALLOW_MULTI`, detach the previous
//! program): exactly what `v2::create` does, plus the replacement. Prints mean, p50 and p99 of
//! the whole round and of its assemble step; the test cgroup is removed afterwards.

use anyhow::{bail, Context, Result};
use gantry_agentd::containerizer::native::cgroup::devfilter::{self, DeviceFilter};
use gantry_agentd::containerizer::native::cgroup::{CgroupLayout, Limits};
use std::time::{Duration, Instant};

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len().max(1) as f64;
    let pct = |p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)));
    println!(
        "{name:<44} mean {mean:>8.1} µs   p50 {:>8.1} µs   p99 {:>8.1} µs   (n={})",
        pct(0.50).map_or(0.0, |d| us(*d)),
        pct(0.99).map_or(0.0, |d| us(*d)),
        v.len()
    );
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root: loading and attaching BPF programs needs CAP_BPF and CAP_SYS_ADMIN");
    }
    let n: usize = std::env::var("GANTRY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let layout = CgroupLayout::detect().map_err(anyhow::Error::msg)?;
    let Some(root) = layout.unified.clone() else {
        bail!("no cgroup2 hierarchy is mounted");
    };
    let dir = root.join(format!("gantry-bench-devfilter-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let proc_devices = std::fs::read_to_string("/proc/devices")?;
    let limits = Limits {
        devices: Some(gantry_gpu::gpu_device_rules_for_minors(&[3], &proc_devices)),
        host_char_majors: gantry_gpu::proc_char_majors(&proc_devices)
            .into_iter()
            .map(|(m, _)| m)
            .collect(),
        ..Default::default()
    };
    let mut total = Vec::with_capacity(n);
    let mut build = Vec::with_capacity(n);
    let mut insns = 0;
    let result = (|| -> Result<()> {
        for _ in 0..n {
            let t0 = Instant::now();
            let f = DeviceFilter::for_limits(&limits)?;
            insns = f.assemble().len();
            build.push(t0.elapsed());
            devfilter::install(&dir, &f)?;
            total.push(t0.elapsed());
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir(&dir);
    result?;
    println!("device filter of a 1-GPU task: {insns} instructions");
    report("build + assemble (rules → insns)", build);
    report("build + load + attach (replacing the last)", total);
    Ok(())
}
