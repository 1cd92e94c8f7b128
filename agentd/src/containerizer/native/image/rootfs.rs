//! The mount plan of a task in an image: private propagation, the overlay rootfs, `/proc`, a
//! private `/tmp`, a minimal `/dev` (plus the task's GPU nodes), the host's `/etc/hosts` and
//! `/etc/resolv.conf`, the sandbox at `/mnt/mesos/sandbox`, then `pivot_root` into it.

use super::Prepared;
use crate::containerizer::native::spec::MountStep;
use std::path::{Path, PathBuf};

/// Where the sandbox is inside an image (`$MESOS_SANDBOX`), as in Mesos.
pub const SANDBOX_IN_IMAGE: &str = "/mnt/mesos/sandbox";

/// Device nodes every container in an image gets.
const BASE_NODES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The host device nodes of a task given GPUs of these minors: each `/dev/nvidia<minor>`, the
/// control and UVM nodes, and the MIG capability nodes (those that exist).
pub fn gpu_nodes(minors: &[u32], caps: &[u32]) -> Vec<PathBuf> {
    if minors.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<PathBuf> = minors
        .iter()
        .map(|m| PathBuf::from(format!("/dev/nvidia{m}")))
        .collect();
    for n in [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia-modeset",
    ] {
        out.push(PathBuf::from(n));
    }
    out.extend(
        caps.iter()
            .map(|c| PathBuf::from(format!("/dev/nvidia-caps/nvidia-cap{c}"))),
    );
    out.into_iter().filter(|p| p.exists()).collect()
}

/// `path` (absolute, in the image) under the rootfs mount point.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The plan; `gpu` lists the extra device nodes.
pub fn mount_plan(
    p: &Prepared,
    sandbox: &Path,
    tmp_bytes: u64,
    gpu: Vec<PathBuf>,
) -> Vec<MountStep> {
    let root = &p.merged;
    let mut nodes: Vec<PathBuf> = BASE_NODES.iter().map(PathBuf::from).collect();
    nodes.extend(gpu);
    vec![
        MountStep::MakeRootPrivate,
        MountStep::Overlay {
            lower: p.lower.clone(),
            upper: p.upper.clone(),
            work: p.work.clone(),
            target: root.clone(),
        },
        MountStep::ProcAt {
            target: inside(root, "/proc"),
        },
        MountStep::Tmpfs {
            target: inside(root, "/tmp"),
            size_bytes: tmp_bytes,
        },
        MountStep::Dev {
            target: inside(root, "/dev"),
            nodes,
        },
        MountStep::BindFile {
            source: PathBuf::from("/etc/hosts"),
            target: inside(root, "/etc/hosts"),
        },
        MountStep::BindFile {
            source: PathBuf::from("/etc/resolv.conf"),
            target: inside(root, "/etc/resolv.conf"),
        },
        MountStep::Bind {
            source: sandbox.to_owned(),
            target: inside(root, SANDBOX_IN_IMAGE),
        },
        MountStep::PivotRoot {
            new_root: root.clone(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_and_proc_are_inside_the_rootfs_and_pivot_is_last() {
        let p = Prepared {
            lower: vec![PathBuf::from("/s/layers/b"), PathBuf::from("/s/layers/a")],
            upper: PathBuf::from("/s/rootfs/c/upper"),
            work: PathBuf::from("/s/rootfs/c/work"),
            merged: PathBuf::from("/s/rootfs/c/merged"),
            config: Default::default(),
        };
        let plan = mount_plan(&p, Path::new("/w/sandbox"), 1 << 20, Vec::new());
        assert_eq!(plan[0], MountStep::MakeRootPrivate);
        assert!(matches!(&plan[1], MountStep::Overlay { lower, .. } if lower.len() == 2));
        assert!(plan.contains(&MountStep::Bind {
            source: PathBuf::from("/w/sandbox"),
            target: PathBuf::from("/s/rootfs/c/merged/mnt/mesos/sandbox"),
        }));
        assert_eq!(
            plan.last(),
            Some(&MountStep::PivotRoot {
                new_root: PathBuf::from("/s/rootfs/c/merged")
            })
        );
        assert!(gpu_nodes(&[], &[]).is_empty());
    }
}
