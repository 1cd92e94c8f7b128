//! cgroup v2 (unified hosts): one directory per container with cpu.max/cpu.weight, memory.max,
//! pids.max and cpuset, frozen through `cgroup.freeze`. Device rules (the v1 ones) become an eBPF
//! device program attached to the directory ([`super::devfilter`]) before any process joins.

use super::devfilter::{self, DeviceFilter};
use super::fs;
use super::{CgroupError, CgroupLayout, CgroupStats, Limits};
use std::path::Path;
use std::time::{Duration, Instant};

/// Controllers enabled for children on the way down.
const CONTROLLERS: [&str; 4] = ["cpu", "memory", "pids", "cpuset"];

/// `cpu.weight` from v1 shares (the kernel's and runc's conversion).
pub fn weight_from_shares(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

pub fn create(layout: &CgroupLayout, rel: &Path, limits: &Limits) -> Result<(), CgroupError> {
    // Built first: a bad rule fails before anything is created.
    let filter = match limits.devices {
        Some(_) => Some(DeviceFilter::for_limits(limits)?),
        None => None,
    };
    let root = layout.unified_root();
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        let available = fs::read(&dir, "cgroup.controllers").unwrap_or_default();
        let enable: Vec<String> = CONTROLLERS
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !enable.is_empty() {
            fs::write(&dir, "cgroup.subtree_control", enable.join(" "))?;
        }
        dir = dir.join(comp);
        fs::mkdir(&dir)?;
    }
    fs::write(
        &dir,
        "cpu.weight",
        weight_from_shares(limits.cpu_shares()).to_string(),
    )?;
    if let Some(q) = limits.cfs_quota_us() {
        fs::write(
            &dir,
            "cpu.max",
            format!("{q} {}", super::limits::CFS_PERIOD_US),
        )?;
    }
    if let Some(b) = limits.memory_bytes() {
        fs::write(&dir, "memory.max", b.to_string())?;
        if dir.join("memory.swap.max").exists() {
            fs::write(&dir, "memory.swap.max", "0")?;
        }
    }
    if let Some(n) = limits.pids_max {
        fs::write(&dir, "pids.max", n.to_string())?;
    }
    if let Some(c) = &limits.cpuset_cpus {
        fs::write(&dir, "cpuset.cpus", c)?;
    }
    if let Some(m) = &limits.cpuset_mems {
        fs::write(&dir, "cpuset.mems", m)?;
    }
    if let Some(f) = filter {
        // The fd is dropped: the attachment holds the program while the cgroup exists.
        devfilter::install(&dir, &f)?;
    }
    Ok(())
}

pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    fs::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = if frozen { 1 } else { 0 };
    let deadline = Instant::now() + Duration::from_secs(2);
    while fs::read(dir, "cgroup.events")
        .ok()
        .and_then(|t| fs::keyed(&t, "frozen"))
        != Some(want)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

pub fn oom_killed(dir: &Path) -> bool {
    fs::read(dir, "memory.events").is_ok_and(|t| fs::keyed(&t, "oom_kill").unwrap_or(0) > 0)
}

pub fn stats(dir: &Path) -> Result<CgroupStats, CgroupError> {
    let cpu = fs::read(dir, "cpu.stat")?;
    let mem = fs::read(dir, "memory.stat").unwrap_or_default();
    Ok(CgroupStats {
        cpu_user_secs: fs::keyed(&cpu, "user_usec").unwrap_or(0) as f64 / 1e6,
        cpu_system_secs: fs::keyed(&cpu, "system_usec").unwrap_or(0) as f64 / 1e6,
        cpu_nr_periods: fs::keyed(&cpu, "nr_periods").unwrap_or(0),
        cpu_nr_throttled: fs::keyed(&cpu, "nr_throttled").unwrap_or(0),
        cpu_throttled_secs: fs::keyed(&cpu, "throttled_usec").unwrap_or(0) as f64 / 1e6,
        mem_rss_bytes: fs::keyed(&mem, "anon").unwrap_or(0),
        mem_total_bytes: fs::read(dir, "memory.current")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        mem_limit_bytes: fs::read(dir, "memory.max")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_unified_files_and_enables_controllers_on_the_way_down() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            t.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        let layout = CgroupLayout::v2_at(t.path());
        let limits = Limits {
            cpus: 0.5,
            mem_mib: 128.0,
            pids_max: Some(64),
            cpuset_cpus: Some("1".into()),
            ..Default::default()
        };
        create(&layout, Path::new("gantry/t1"), &limits).expect("create");
        let d = t.path().join("gantry/t1");
        let r = |f: &str| std::fs::read_to_string(d.join(f)).expect("read");
        assert_eq!(r("cpu.max"), "50000 100000");
        assert_eq!(r("cpu.weight"), weight_from_shares(512).to_string());
        assert_eq!(r("memory.max"), (128u64 << 20).to_string());
        assert_eq!(r("pids.max"), "64");
        assert_eq!(r("cpuset.cpus"), "1");
        let sub = std::fs::read_to_string(t.path().join("cgroup.subtree_control")).expect("read");
        assert_eq!(sub, "+cpu +memory +pids +cpuset");
    }

    #[test]
    fn device_rules_go_to_a_bpf_program_on_the_cgroup_directory() {
        let t = tempfile::tempdir().expect("tempdir");
        let layout = CgroupLayout::v2_at(t.path());
        let limits = Limits {
            devices: Some(gantry_gpu::DeviceAccessRules {
                deny: vec![],
                allow: vec![],
            }),
            ..Default::default()
        };
        // A fixture directory is no cgroup: the attach is what fails, naming the directory.
        let e = create(&layout, Path::new("gantry/t1"), &limits).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("device filter for") && msg.contains("gantry/t1"),
            "{msg}"
        );
        assert!(msg.contains("BPF_PROG"), "{msg}");
    }

    #[test]
    fn shares_to_weight() {
        assert_eq!(weight_from_shares(2), 1);
        assert_eq!(weight_from_shares(262_144), 10_000);
        assert_eq!(weight_from_shares(1024), 39);
    }
}
