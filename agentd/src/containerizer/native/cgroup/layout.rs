//! Which cgroup hierarchies the host has: legacy v1 (one mount per controller), hybrid (v1
//! controllers plus a controller-less cgroup2 mount, like this CI machine) or unified v2. Read from
//! `/proc/self/mountinfo`; tests build a layout rooted at a fixture directory instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The v1 controllers Gantry uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 7] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Devices,
        Controller::Freezer,
        Controller::Pids,
    ];

    /// The controller's name in mount options and `/proc/cgroups`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Pids => "pids",
        }
    }
}

/// How the host mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMode {
    /// v1 controllers only.
    Legacy,
    /// v1 controllers, plus a cgroup2 mount without them (systemd's "hybrid"): Gantry uses v1.
    Hybrid,
    /// cgroup2 only, controllers on the unified hierarchy.
    Unified,
}

/// Where each hierarchy is mounted.
#[derive(Clone, Debug, PartialEq)]
pub struct CgroupLayout {
    pub mode: HostMode,
    /// v1 controller → mount point (several controllers may share one, e.g. `cpu,cpuacct`).
    pub v1: BTreeMap<Controller, PathBuf>,
    /// The cgroup2 mount point, if any.
    pub unified: Option<PathBuf>,
}

impl CgroupLayout {
    /// Reads this host's layout.
    pub fn detect() -> Result<CgroupLayout, String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        Self::from_mountinfo(&text)
    }

    /// Parses mountinfo text. Errors when no usable hierarchy is mounted.
    pub fn from_mountinfo(text: &str) -> Result<CgroupLayout, String> {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            // `id parent major:minor root mountpoint opts [optional...] - fstype source superopts`
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or("");
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or("");
            let super_opts = r.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" => unified = Some(PathBuf::from(mount_point)),
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if let Some(c) = Controller::ALL.iter().find(|c| c.name() == opt) {
                            v1.entry(*c).or_insert_with(|| PathBuf::from(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = if !v1.is_empty() {
            if unified.is_some() {
                HostMode::Hybrid
            } else {
                HostMode::Legacy
            }
        } else if let Some(u) = &unified {
            let controllers =
                std::fs::read_to_string(u.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().count() == 0 {
                return Err(format!(
                    "the cgroup2 hierarchy at {} has no controllers and no v1 controller is mounted",
                    u.display()
                ));
            }
            HostMode::Unified
        } else {
            return Err(
                "no cgroup hierarchy is mounted (neither v1 controllers nor cgroup2)".into(),
            );
        };
        Ok(CgroupLayout { mode, v1, unified })
    }

    /// A v1 layout with every controller at `root/<controller>` (fixtures and tests).
    pub fn v1_at(root: &Path) -> CgroupLayout {
        CgroupLayout {
            mode: HostMode::Legacy,
            v1: Controller::ALL
                .iter()
                .map(|c| (*c, root.join(c.name())))
                .collect(),
            unified: None,
        }
    }

    /// A unified layout at `root` (fixtures and tests).
    pub fn v2_at(root: &Path) -> CgroupLayout {
        CgroupLayout {
            mode: HostMode::Unified,
            v1: BTreeMap::new(),
            unified: Some(root.to_owned()),
        }
    }

    /// The mount point of a v1 controller.
    pub fn controller_root(&self, c: Controller) -> Option<&Path> {
        self.v1.get(&c).map(PathBuf::as_path)
    }

    /// The cgroup2 mount point (`/sys/fs/cgroup` when unified).
    pub fn unified_root(&self) -> &Path {
        self.unified
            .as_deref()
            .unwrap_or(Path::new("/sys/fs/cgroup"))
    }

    /// v1 controllers Gantry needs that are not mounted.
    pub fn missing_v1(&self) -> Vec<&'static str> {
        Controller::ALL
            .iter()
            .filter(|c| !self.v1.contains_key(c))
            .map(|c| c.name())
            .collect()
    }

    /// A sentence for the log.
    pub fn describe(&self) -> String {
        match self.mode {
            HostMode::Legacy => "cgroup v1".into(),
            HostMode::Hybrid => format!(
                "cgroup hybrid (v1 controllers; cgroup2 at {} without controllers, unused)",
                self.unified_root().display()
            ),
            HostMode::Unified => format!("cgroup v2 at {}", self.unified_root().display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:32 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
38 30 0:34 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
39 30 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn this_ci_machine_is_hybrid_and_uses_v1() {
        let l = CgroupLayout::from_mountinfo(HYBRID).expect("layout");
        assert_eq!(l.mode, HostMode::Hybrid);
        assert!(l.missing_v1().is_empty());
        assert_eq!(
            l.controller_root(Controller::Memory),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(l.unified_root(), Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn comounted_controllers_share_a_mount() {
        let l = CgroupLayout::from_mountinfo(
            "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        )
        .expect("layout");
        assert_eq!(l.mode, HostMode::Legacy);
        assert_eq!(
            l.controller_root(Controller::Cpu),
            l.controller_root(Controller::Cpuacct)
        );
        assert!(l.missing_v1().contains(&"memory"));
    }

    #[test]
    fn no_cgroups_is_an_error_that_says_so() {
        let e = CgroupLayout::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw\n").unwrap_err();
        assert!(e.contains("no cgroup hierarchy"), "{e}");
    }
}
