//! Hardware checks: the CPU/NUMA topology through hwloc (the `gantry-topology` crate) and the
//! NVIDIA GPUs through NVML, with each GPU's `/dev/nvidia*` device node.

use super::{Check, Host, Probes, RealProbes};

/// What hwloc found.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologySummary {
    pub packages: usize,
    pub numa_nodes: usize,
    pub cores: usize,
    pub gpus: usize,
}

/// A GPU as NVML reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSeen {
    pub index: u32,
    pub minor: u32,
    pub name: String,
}

impl RealProbes {
    pub(super) fn hwloc() -> Result<TopologySummary, String> {
        let t = gantry_topology::Topology::discover().map_err(|e| e.to_string())?;
        Ok(TopologySummary {
            packages: t.packages.len(),
            numa_nodes: t.numa_nodes.len(),
            cores: t.cores.len(),
            gpus: t.gpus.len(),
        })
    }

    pub(super) fn nvml_gpus() -> Result<Vec<GpuSeen>, String> {
        use gantry_gpu::GpuInventory;
        let inv = gantry_gpu::NvmlInventory::open().map_err(|e| e.to_string())?;
        let gpus = inv.gpus().map_err(|e| e.to_string())?;
        Ok(gpus
            .into_iter()
            .map(|g| GpuSeen {
                index: g.index,
                minor: g.minor,
                name: g.name,
            })
            .collect())
    }
}

pub fn topology(probes: &dyn Probes) -> Check {
    const NAME: &str = "hwloc";
    match probes.topology() {
        Ok(t) => Check::ok(
            NAME,
            format!(
                "{} packages, {} NUMA nodes, {} cores, {} GPUs located",
                t.packages, t.numa_nodes, t.cores, t.gpus
            ),
        ),
        Err(e) => Check::warn(
            NAME,
            format!(
                "hwloc discovery failed: {e}; the agent reports no NUMA domains, so GPU tasks are \
                 not placed by NUMA node"
            ),
            "install hwloc (`apt-get install libhwloc15 hwloc` on Debian, `dnf install hwloc` on \
             RHEL) and check that `lstopo` shows this machine; unset HWLOC_XMLFILE if it is set",
        ),
    }
}

pub fn gpus(host: &Host, probes: &dyn Probes) -> Check {
    const NAME: &str = "gpus";
    let gpus =
        match probes.nvml() {
            Ok(g) => g,
            Err(e) => return Check::warn(
                NAME,
                format!("no NVIDIA driver: GPUs will not be offered ({e})"),
                "nothing to do on a host without NVIDIA GPUs; otherwise install the NVIDIA driver \
                 (it brings libnvidia-ml.so.1) and run the doctor again",
            ),
        };
    if gpus.is_empty() {
        return Check::warn(
            NAME,
            "NVML is loaded but reports no GPUs: none will be offered",
            "run `nvidia-smi`: the driver must see the GPUs (check `dmesg | grep -i nvrm`)",
        );
    }
    if !host.path("/dev/nvidiactl").exists() {
        return Check::fail(
            NAME,
            "/dev/nvidiactl is missing: tasks cannot open any GPU",
            "`nvidia-modprobe` (or run `nvidia-smi` once as root) to create the device nodes",
        );
    }
    for g in &gpus {
        let node = format!("/dev/nvidia{}", g.minor);
        if !host.path(&node).exists() {
            return Check::fail(
                NAME,
                format!("GPU {} ({}): {node} is missing", g.index, g.name),
                format!(
                    "`nvidia-modprobe -c {}` (or run `nvidia-smi` once as root)",
                    g.minor
                ),
            );
        }
    }
    let list = gpus
        .iter()
        .map(|g| format!("{} {} (/dev/nvidia{})", g.index, g.name, g.minor))
        .collect::<Vec<_>>()
        .join(", ");
    if !host.path("/dev/nvidia-uvm").exists() {
        return Check::warn(
            NAME,
            format!(
                "{} GPUs: {list}; /dev/nvidia-uvm is missing (CUDA needs it)",
                gpus.len()
            ),
            "`nvidia-modprobe -u -c 0` (loads nvidia-uvm and makes its node)",
        );
    }
    Check::ok(NAME, format!("{} GPUs: {list}", gpus.len()))
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeProbes;
    use super::super::Status;
    use super::*;

    #[test]
    fn topology_ok_and_failed() {
        let mut p = FakeProbes::default();
        let c = topology(&p);
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.as_deref().unwrap_or("").contains("lstopo"));
        p.topology = Some(Ok(TopologySummary {
            packages: 2,
            numa_nodes: 2,
            cores: 32,
            gpus: 4,
        }));
        let c = topology(&p);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(
            c.detail,
            "2 packages, 2 NUMA nodes, 32 cores, 4 GPUs located"
        );
    }

    #[test]
    fn gpus_without_driver_warn_and_missing_nodes_fail_with_the_minor() {
        let t = tempfile::tempdir().expect("tempdir");
        let h = Host {
            root: t.path().to_owned(),
        };
        let c = gpus(&h, &FakeProbes::default());
        assert_eq!(c.status, Status::Warn);
        assert!(c
            .detail
            .starts_with("no NVIDIA driver: GPUs will not be offered"));

        let mut p = FakeProbes {
            nvml: Some(Ok(vec![])),
            ..Default::default()
        };
        assert_eq!(gpus(&h, &p).status, Status::Warn);

        p.nvml = Some(Ok(vec![
            GpuSeen {
                index: 0,
                minor: 0,
                name: "H200".into(),
            },
            GpuSeen {
                index: 1,
                minor: 3,
                name: "H200".into(),
            },
        ]));
        let c = gpus(&h, &p);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("nvidiactl"), "{c:?}");
        let dev = t.path().join("dev");
        std::fs::create_dir_all(&dev).expect("mkdir");
        for n in ["nvidiactl", "nvidia0"] {
            std::fs::write(dev.join(n), "").expect("w");
        }
        let c = gpus(&h, &p);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.contains("GPU 1 (H200): /dev/nvidia3 is missing"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("`nvidia-modprobe -c 3` (or run `nvidia-smi` once as root)")
        );
        std::fs::write(dev.join("nvidia3"), "").expect("w");
        assert_eq!(gpus(&h, &p).status, Status::Warn, "no nvidia-uvm");
        std::fs::write(dev.join("nvidia-uvm"), "").expect("w");
        let c = gpus(&h, &p);
        assert_eq!(c.status, Status::Ok);
        assert!(
            c.detail.starts_with("2 GPUs: 0 H200 (/dev/nvidia0)"),
            "{c:?}"
        );
    }
}
