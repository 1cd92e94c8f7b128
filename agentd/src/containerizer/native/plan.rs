//! From a task to its container: the cgroup limits (cpus, mem, pids, the placement's cpuset and
//! GPUs), the GPU environment, and a cgroup-safe container id.

use super::cgroup::limits::list_form;
use super::cgroup::Limits;
use gantry_proto::TaskInfo;

/// A name safe for a cgroup directory: the task id with anything but `[A-Za-z0-9._-]` as `_`.
pub fn container_id(task_id: &str) -> String {
    let s: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("c{s}")
    } else {
        s
    }
}

/// True when `/proc/devices` lists an NVIDIA char device.
pub fn host_has_nvidia(proc_devices: &str) -> bool {
    gantry_gpu::proc_char_majors(proc_devices)
        .iter()
        .any(|(_, n)| n.starts_with("nvidia"))
}

/// The limits for `task`. Device rules are applied when the task was given GPUs or the host has
/// NVIDIA devices (a task without GPUs then gets none of them). A MIG device is allowed as its
/// parent's `/dev/nvidia<minor>` plus its `/dev/nvidia-caps/nvidia-cap<N>` nodes.
pub fn limits_for(task: &TaskInfo, pids_max: Option<u64>, proc_devices: &str) -> Limits {
    let placement = task.placement.clone().unwrap_or_default();
    let minors: Vec<u32> = placement.gpus.iter().map(|g| g.minor).collect();
    // MIG devices: their parent's /dev/nvidia<minor> above, and their /dev/nvidia-caps nodes.
    let caps: Vec<u32> = placement
        .gpus
        .iter()
        .flat_map(|g| g.caps_minors.iter().copied())
        .collect();
    let restrict = !minors.is_empty() || host_has_nvidia(proc_devices);
    Limits {
        cpus: task.resources.cpus,
        mem_mib: task.resources.mem,
        pids_max,
        cpuset_cpus: (!placement.cpus.is_empty()).then(|| list_form(&placement.cpus)),
        cpuset_mems: (!placement.mems.is_empty()).then(|| list_form(&placement.mems)),
        devices: restrict.then(|| gantry_gpu::gpu_device_rules_for(&minors, &caps, proc_devices)),
        host_char_majors: gantry_gpu::proc_char_majors(proc_devices)
            .into_iter()
            .map(|(m, _)| m)
            .collect(),
    }
}

/// `NVIDIA_VISIBLE_DEVICES` (UUIDs), `CUDA_VISIBLE_DEVICES` (renumbered: the device cgroup hides
/// the other GPUs) and `CUDA_DEVICE_ORDER`, for a task given GPUs.
pub fn gpu_env(task: &TaskInfo) -> Vec<(String, String)> {
    match &task.placement {
        Some(p) if !p.gpus.is_empty() => gantry_gpu::assignment_env(&p.gpus, true),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::{GpuAssignment, NumaPlacement};

    #[test]
    fn ids_are_cgroup_safe() {
        assert_eq!(container_id("web.1a2b-3"), "web.1a2b-3");
        assert_eq!(container_id("a/b c"), "a_b_c");
        assert_eq!(container_id("..x"), "c..x");
    }

    #[test]
    #[allow(clippy::field_reassign_with_default)]
    fn placement_becomes_cpuset_and_device_rules() {
        let mut t = TaskInfo::default();
        t.resources.cpus = 0.5;
        t.resources.mem = 64.0;
        t.placement = Some(NumaPlacement {
            numa_node: Some(1),
            cpus: vec![9, 8, 10],
            mems: vec![1],
            gpus: vec![GpuAssignment {
                index: 2,
                minor: 2,
                uuid: "GPU-b".into(),
                ..Default::default()
            }],
        });
        let l = limits_for(&t, Some(10), "Character devices:\n  1 mem\n");
        assert_eq!(l.cpuset_cpus.as_deref(), Some("8-10"));
        assert_eq!(l.cpuset_mems.as_deref(), Some("1"));
        let allow: Vec<String> = l
            .devices
            .expect("rules")
            .allow
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(allow.contains(&"c 195:2 rwm".to_string()));
        assert_eq!(l.host_char_majors, vec![1]);
        let env = gpu_env(&t);
        assert!(env.contains(&("NVIDIA_VISIBLE_DEVICES".into(), "GPU-b".into())));
        // No GPUs, no NVIDIA driver: devices untouched.
        assert!(
            limits_for(&TaskInfo::default(), None, "Character devices:\n")
                .devices
                .is_none()
        );
        assert!(limits_for(
            &TaskInfo::default(),
            None,
            "Character devices:\n195 nvidia\n"
        )
        .devices
        .is_some());
    }

    #[test]
    #[allow(clippy::field_reassign_with_default)]
    fn a_mig_device_allows_its_parent_node_and_its_caps_nodes() {
        let mut t = TaskInfo::default();
        t.placement = Some(NumaPlacement {
            gpus: vec![GpuAssignment {
                index: 1002,
                minor: 0,
                uuid: "MIG-x".into(),
                caps_minors: vec![84, 85],
                ..Default::default()
            }],
            ..NumaPlacement::default()
        });
        let proc = "Character devices:\n195 nvidia\n235 nvidia-caps\n510 nvidia-uvm\n";
        let rules = limits_for(&t, None, proc).devices.expect("rules");
        let allow: Vec<String> = rules.allow.iter().map(ToString::to_string).collect();
        for want in ["c 195:0 rwm", "c 235:84 rwm", "c 235:85 rwm"] {
            assert!(allow.contains(&want.to_string()), "{want} in {allow:?}");
        }
        assert!(
            !allow.iter().any(|a| a == "c 235:1 rwm"),
            "not the config node"
        );
        let env = gpu_env(&t);
        assert!(env.contains(&("CUDA_VISIBLE_DEVICES".into(), "MIG-x".into())));
    }
}
