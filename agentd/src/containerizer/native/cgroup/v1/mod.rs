//! cgroup v1 (and the v1 side of hybrid hosts): one directory per controller, one file per
//! controller here, each applying its part of the [`Limits`].

pub mod cpu;
pub mod cpuacct;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod memory;
pub mod pids;

use super::fs;
use super::{CgroupError, CgroupLayout, CgroupStats, Controller, Limits};
use std::path::{Path, PathBuf};

/// The container's directory in every mounted controller (each mount point once).
pub fn dirs(layout: &CgroupLayout, rel: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for root in layout.v1.values() {
        let d = root.join(rel);
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The directory whose `cgroup.procs` is read for the container's processes.
pub fn tracking_dir(layout: &CgroupLayout, rel: &Path) -> PathBuf {
    layout
        .controller_root(Controller::Freezer)
        .or_else(|| layout.v1.values().next().map(PathBuf::as_path))
        .unwrap_or(Path::new("/sys/fs/cgroup/freezer"))
        .join(rel)
}

/// Creates the container's directory under each controller and applies the limits.
pub fn create(layout: &CgroupLayout, rel: &Path, limits: &Limits) -> Result<(), CgroupError> {
    let missing = layout.missing_v1();
    if !missing.is_empty() {
        return Err(CgroupError::Unsupported(format!(
            "cgroup v1 controllers not mounted: {}",
            missing.join(", ")
        )));
    }
    for (c, root) in &layout.v1 {
        let dir = root.join(rel);
        if *c == Controller::Cpuset {
            // A new cpuset cgroup starts empty; every ancestor must hold CPUs and memory nodes.
            cpuset::prepare_ancestors(root, rel)?;
        }
        fs::mkdir(&dir)?;
        match c {
            Controller::Cpu => cpu::apply(&dir, limits)?,
            Controller::Cpuacct | Controller::Freezer => {}
            Controller::Cpuset => cpuset::apply(root, &dir, limits)?,
            Controller::Memory => memory::apply(&dir, limits)?,
            Controller::Devices => devices::apply(&dir, limits)?,
            Controller::Pids => pids::apply(&dir, limits)?,
        }
    }
    Ok(())
}

/// CPU time, memory and throttling.
pub fn stats(layout: &CgroupLayout, rel: &Path) -> Result<CgroupStats, CgroupError> {
    let dir = |c| {
        layout
            .controller_root(c)
            .map(|r| r.join(rel))
            .ok_or_else(|| CgroupError::Unsupported(format!("{} is not mounted", c.name())))
    };
    let mut s = CgroupStats::default();
    cpuacct::read(&dir(Controller::Cpuacct)?, &mut s)?;
    cpu::read(&dir(Controller::Cpu)?, &mut s);
    memory::read(&dir(Controller::Memory)?, &mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, CgroupLayout) {
        let t = tempfile::tempdir().expect("tempdir");
        let layout = CgroupLayout::v1_at(t.path());
        for root in layout.v1.values() {
            std::fs::create_dir_all(root).expect("mkdir");
        }
        let cs = layout.v1[&Controller::Cpuset].clone();
        std::fs::write(cs.join("cpuset.cpus"), "0-7\n").expect("write");
        std::fs::write(cs.join("cpuset.mems"), "0-1\n").expect("write");
        (t, layout)
    }

    fn read(layout: &CgroupLayout, c: Controller, file: &str) -> String {
        std::fs::read_to_string(layout.v1[&c].join("gantry/t1").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    #[test]
    fn writes_every_controllers_files() {
        let (_t, layout) = fixture();
        let limits = Limits {
            cpus: 1.5,
            mem_mib: 64.0,
            pids_max: Some(100),
            cpuset_cpus: Some("2-3".into()),
            cpuset_mems: Some("1".into()),
            devices: None,
            host_char_majors: vec![],
        };
        create(&layout, Path::new("gantry/t1"), &limits).expect("create");
        assert_eq!(read(&layout, Controller::Cpu, "cpu.shares"), "1536");
        assert_eq!(
            read(&layout, Controller::Cpu, "cpu.cfs_period_us"),
            "100000"
        );
        assert_eq!(read(&layout, Controller::Cpu, "cpu.cfs_quota_us"), "150000");
        assert_eq!(
            read(&layout, Controller::Memory, "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(read(&layout, Controller::Pids, "pids.max"), "100");
        assert_eq!(read(&layout, Controller::Cpuset, "cpuset.cpus"), "2-3");
        assert_eq!(read(&layout, Controller::Cpuset, "cpuset.mems"), "1");
        // The intermediate `gantry` cpuset got the root's CPUs and nodes.
        let parent = layout.v1[&Controller::Cpuset].join("gantry");
        assert_eq!(
            std::fs::read_to_string(parent.join("cpuset.cpus")).expect("read"),
            "0-7"
        );
        assert_eq!(dirs(&layout, Path::new("gantry/t1")).len(), 7);
    }

    #[test]
    fn cpuset_without_a_plan_inherits_the_parent() {
        let (_t, layout) = fixture();
        create(&layout, Path::new("gantry/t1"), &Limits::default()).expect("create");
        assert_eq!(read(&layout, Controller::Cpuset, "cpuset.cpus"), "0-7");
        assert_eq!(read(&layout, Controller::Cpuset, "cpuset.mems"), "0-1");
    }

    #[test]
    fn a_missing_controller_is_named() {
        let (_t, mut layout) = fixture();
        layout.v1.remove(&Controller::Pids);
        let e = create(&layout, Path::new("gantry/t1"), &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("pids"), "{e}");
    }
}
