//! cgroup checks: which layout the host mounts (v1, hybrid or v2) and whether the controllers the
//! native containerizer uses are there, and on a systemd host whether the agent's unit has its
//! cgroup subtree delegated (`Delegate=yes`), with the controllers and ownership of that subtree.

use super::{Check, Host, Probes};
use gantry_agentd::containerizer::native::cgroup::{CgroupLayout, HostMode};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The controllers the native containerizer enables on a cgroup v2 host.
pub const V2_CONTROLLERS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];

/// The systemd unit the agent runs as.
pub const AGENT_UNIT: &str = "gantry-agentd.service";

pub fn checks(host: &Host, probes: &dyn Probes) -> Vec<Check> {
    let mountinfo = host
        .read("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"));
    let layout = mountinfo
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|t| CgroupLayout::from_mountinfo(t));
    let read_only = match (&mountinfo, &layout) {
        (Ok(text), Ok(l)) => read_only_cgroup_mounts(text, l.mode),
        _ => Vec::new(),
    };
    let mut out = vec![writable(version(&layout), &read_only)];
    out.push(delegation(host, probes, layout.as_ref().ok()));
    out
}

/// The mount points of the cgroup file systems the agent would use (the v1 hierarchies of its
/// controllers, or the cgroup2 root on a v2 host) that are mounted read-only, as in a container
/// given the host's cgroups read-only (systemd-nspawn does): the agent could create no cgroup
/// there. Hybrid hosts' cgroup2 mount and systemd's named hierarchy are not used, so not counted.
pub fn read_only_cgroup_mounts(mountinfo: &str, mode: HostMode) -> Vec<String> {
    const V1: [&str; 7] = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids",
    ];
    mountinfo
        .lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
            let (mount, rest) = line.split_once(" - ")?;
            let r: Vec<&str> = rest.split_whitespace().collect();
            let (fstype, sup) = (*r.first()?, r.get(2).copied().unwrap_or(""));
            let f: Vec<&str> = mount.split_whitespace().collect();
            let (point, options) = (f.get(4)?, f.get(5)?);
            let used = match fstype {
                "cgroup" => sup.split(',').any(|o| V1.contains(&o)),
                "cgroup2" => mode == HostMode::Unified,
                _ => false,
            };
            (used && options.split(',').any(|o| o == "ro")).then(|| point.to_string())
        })
        .collect()
}

/// A passing layout check fails when the cgroups are mounted read-only.
fn writable(check: Check, read_only: &[String]) -> Check {
    if check.status != super::Status::Ok || read_only.is_empty() {
        return check;
    }
    Check::fail(
        check.name,
        format!(
            "{}, but mounted read-only: {}",
            check.detail,
            read_only.join(", ")
        ),
        format!(
            "remount them read-write (`mount -o remount,rw {}`); in a container, give it a \
             writable cgroup tree",
            read_only[0]
        ),
    )
}

/// The layout and its controllers.
pub fn version(layout: &Result<CgroupLayout, String>) -> Check {
    const NAME: &str = "cgroups";
    let layout =
        match layout {
            Ok(l) => l,
            Err(e) => return Check::fail(
                NAME,
                e.clone(),
                "mount cgroups: `mount -t cgroup2 none /sys/fs/cgroup` (v2), or boot a systemd \
                 distribution that mounts them",
            ),
        };
    match layout.mode {
        HostMode::Legacy | HostMode::Hybrid => {
            let missing = layout.missing_v1();
            if missing.is_empty() {
                Check::ok(
                    NAME,
                    format!(
                        "{}; controllers cpu cpuacct cpuset memory devices freezer pids",
                        layout.describe()
                    ),
                )
            } else {
                let first = missing[0];
                Check::fail(
                    NAME,
                    format!(
                        "{}: v1 controllers not mounted: {}",
                        layout.describe(),
                        missing.join(", ")
                    ),
                    format!(
                        "mount each, e.g. `mkdir -p /sys/fs/cgroup/{first} && mount -t cgroup -o \
                         {first} cgroup /sys/fs/cgroup/{first}`, or boot with \
                         systemd.unified_cgroup_hierarchy=1 for cgroup v2"
                    ),
                )
            }
        }
        HostMode::Unified => {
            let root = layout.unified_root();
            let have = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let missing: Vec<&str> = V2_CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !have.split_whitespace().any(|h| h == *c))
                .collect();
            if missing.is_empty() {
                Check::ok(
                    NAME,
                    format!(
                        "{}; controllers {} (devices: eBPF device programs)",
                        layout.describe(),
                        V2_CONTROLLERS.join(" ")
                    ),
                )
            } else {
                Check::fail(
                    NAME,
                    format!(
                        "{}: controllers not available: {}",
                        layout.describe(),
                        missing.join(", ")
                    ),
                    format!(
                        "enable them in the kernel (e.g. cgroup_enable=memory on the kernel \
                         command line) and for the subtree: `echo '{}' > {}/cgroup.subtree_control`",
                        missing
                            .iter()
                            .map(|c| format!("+{c}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        root.display()
                    ),
                )
            }
        }
    }
}

/// `Delegate=` of the agent's unit on a systemd host, and what the delegated subtree holds.
pub fn delegation(host: &Host, probes: &dyn Probes, layout: Option<&CgroupLayout>) -> Check {
    const NAME: &str = "delegation";
    let own = host
        .read("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("0::"))
                .map(|l| l.trim_start_matches("0::").to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    if !host.path("/run/systemd/system").is_dir() {
        return Check::ok(
            NAME,
            format!(
                "not a systemd host (no /run/systemd/system): nothing delegates; the agent makes \
                 its cgroups under <hierarchy>/gantry (this process is in cgroup2 {own})"
            ),
        );
    }
    let fix_unit = format!(
        "`systemctl edit {AGENT_UNIT}` and set [Service] Delegate=yes and KillMode=process, then \
         `systemctl restart {AGENT_UNIT}`"
    );
    let shown = probes.command(
        "systemctl",
        &[
            "show",
            "--property=LoadState,Delegate,ControlGroup",
            AGENT_UNIT,
        ],
    );
    let text = match shown {
        None => {
            return Check::warn(
                NAME,
                "a systemd host without systemctl on PATH: cannot read the unit's Delegate=",
                "put systemctl on PATH (it is in the systemd package) and run the doctor again",
            )
        }
        Some(Err(e)) => {
            return Check::warn(
                NAME,
                format!("systemctl show {AGENT_UNIT} failed: {e}"),
                "run the doctor as root on the host itself (not in a container)",
            )
        }
        Some(Ok(t)) => t,
    };
    let prop = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    if prop("LoadState") == "not-found" {
        return Check::warn(
            NAME,
            format!("{AGENT_UNIT} is not installed: cannot tell whether Delegate= is in effect"),
            format!("install the unit with Delegate=yes and KillMode=process ({fix_unit})"),
        );
    }
    if prop("Delegate") != "yes" {
        return Check::fail(
            NAME,
            format!(
                "{AGENT_UNIT} has Delegate={}: systemd owns the agent's cgroup and may move or \
                 kill processes in the cgroups the agent makes",
                prop("Delegate")
            ),
            fix_unit,
        );
    }
    let group = prop("ControlGroup");
    let unified = layout.filter(|l| l.mode == HostMode::Unified);
    let (Some(l), false) = (unified, group.is_empty()) else {
        return Check::ok(
            NAME,
            format!("{AGENT_UNIT} has Delegate=yes (subtree {group:?} not inspected)"),
        );
    };
    subtree(NAME, &l.unified_root().join(group.trim_start_matches('/')))
}

/// The delegated v2 subtree: its controllers and that root owns it.
fn subtree(name: &'static str, dir: &Path) -> Check {
    let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !have.split_whitespace().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            name,
            format!(
                "Delegate=yes, but {} lacks controllers {}",
                dir.display(),
                missing.join(", ")
            ),
            format!(
                "set `Delegate={}` in [Service] of {AGENT_UNIT} (`systemctl edit {AGENT_UNIT}`)",
                V2_CONTROLLERS.join(" ")
            ),
        );
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.uid() == 0 => Check::ok(
            name,
            format!(
                "Delegate=yes; {} has {} and is owned by root",
                dir.display(),
                V2_CONTROLLERS.join(" ")
            ),
        ),
        Ok(m) => Check::fail(
            name,
            format!(
                "{} is owned by uid {}, not root (the agent runs as root)",
                dir.display(),
                m.uid()
            ),
            format!(
                "set User=root in {AGENT_UNIT}, or `chown -R root {}`",
                dir.display()
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!("cannot read {}: {e}", dir.display()),
            format!("`systemctl start {AGENT_UNIT}` and run the doctor again"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeProbes;
    use super::super::Status;
    use super::*;

    fn host_with(mountinfo: &str) -> (tempfile::TempDir, Host) {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(t.path().join("proc/self")).expect("mkdir");
        let text = mountinfo.replace("ROOT", &t.path().display().to_string());
        std::fs::write(t.path().join("proc/self/mountinfo"), text).expect("write");
        std::fs::write(t.path().join("proc/self/cgroup"), "0::/user.slice\n").expect("write");
        let h = Host {
            root: t.path().to_owned(),
        };
        (t, h)
    }

    const V1_ALL: &str = "\
31 30 0:27 / ROOT/cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / ROOT/cg/cpuset rw - cgroup cgroup rw,cpuset
34 30 0:30 / ROOT/cg/memory rw - cgroup cgroup rw,memory
35 30 0:31 / ROOT/cg/devices rw - cgroup cgroup rw,devices
36 30 0:32 / ROOT/cg/freezer rw - cgroup cgroup rw,freezer
37 30 0:33 / ROOT/cg/pids rw - cgroup cgroup rw,pids
";

    #[test]
    fn v1_with_every_controller_is_ok_and_a_missing_one_fails_with_the_mount_command() {
        let (_t, h) = host_with(V1_ALL);
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.detail.starts_with("cgroup v1"), "{c:?}");

        let no_memory: String = V1_ALL
            .lines()
            .filter(|l| !l.contains("memory"))
            .map(|l| format!("{l}\n"))
            .collect();
        let (_t, h) = host_with(&no_memory);
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("not mounted: memory"), "{c:?}");
        let fix = c.fix.as_deref().unwrap_or("");
        assert!(fix.contains("mount -t cgroup -o memory"), "{fix}");
    }

    #[test]
    fn read_only_cgroup_mounts_fail_with_the_remount() {
        let ro = V1_ALL.replace("ROOT/cg/memory rw", "ROOT/cg/memory ro,nosuid");
        let (t, h) = host_with(&ro);
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Fail, "{c:?}");
        let memory = format!("{}/cg/memory", t.path().display());
        assert!(c.detail.ends_with(&format!("read-only: {memory}")), "{c:?}");
        assert!(
            c.fix
                .as_deref()
                .unwrap_or("")
                .contains(&format!("mount -o remount,rw {memory}")),
            "{c:?}"
        );
        // Read-only mounts the agent does not use do not matter: another file system, systemd's
        // named hierarchy, a hybrid host's cgroup2 (nspawn leaves those read-only).
        let other = format!(
            "{V1_ALL}40 30 0:40 / ROOT/boot ro - ext4 /dev/sda1 ro\n\
             41 30 0:41 / ROOT/cg/systemd ro - cgroup cgroup ro,xattr,name=systemd\n\
             42 30 0:42 / ROOT/cg/unified ro - cgroup2 cgroup2 ro\n"
        );
        let (_t, h) = host_with(&other);
        assert_eq!(checks(&h, &FakeProbes::default())[0].status, Status::Ok);
    }

    #[test]
    fn hybrid_is_named_and_no_cgroups_at_all_fails() {
        let hybrid = format!("{V1_ALL}39 30 0:35 / ROOT/cg/unified rw - cgroup2 cgroup2 rw\n");
        let (_t, h) = host_with(&hybrid);
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.starts_with("cgroup hybrid"), "{c:?}");

        let (_t, h) = host_with("1 0 0:1 / / rw - ext4 /dev/sda rw\n");
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.as_deref().unwrap_or("").contains("mount -t cgroup2"));
    }

    #[test]
    fn v2_needs_its_controllers() {
        let (t, h) = host_with("39 30 0:35 / ROOT/cg2 rw - cgroup2 cgroup2 rw\n");
        let cg = t.path().join("cg2");
        std::fs::create_dir_all(&cg).expect("mkdir");
        std::fs::write(cg.join("cgroup.controllers"), "cpuset cpu io memory pids\n").expect("w");
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.detail.starts_with("cgroup v2"));
        std::fs::write(cg.join("cgroup.controllers"), "cpu io pids\n").expect("w");
        let c = &checks(&h, &FakeProbes::default())[0];
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("cpuset, memory"), "{c:?}");
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("echo '+cpuset +memory' >"));
    }

    fn systemd_host() -> (tempfile::TempDir, Host) {
        let (t, h) = host_with("39 30 0:35 / ROOT/cg2 rw - cgroup2 cgroup2 rw\n");
        std::fs::create_dir_all(t.path().join("run/systemd/system")).expect("mkdir");
        let unit = t.path().join("cg2/system.slice/gantry-agentd.service");
        std::fs::create_dir_all(&unit).expect("mkdir");
        std::fs::write(
            t.path().join("cg2/cgroup.controllers"),
            "cpuset cpu memory pids\n",
        )
        .expect("w");
        (t, h)
    }

    fn probes_showing(text: &str) -> FakeProbes {
        let mut p = FakeProbes::default();
        p.commands.insert("systemctl", Ok(text.to_string()));
        p
    }

    #[test]
    fn without_systemd_nothing_delegates() {
        let (_t, h) = host_with(V1_ALL);
        let c = &checks(&h, &FakeProbes::default())[1];
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("not a systemd host"), "{c:?}");
        assert!(c.detail.contains("/user.slice"), "{c:?}");
    }

    #[test]
    fn a_unit_without_delegate_fails_and_a_missing_unit_warns() {
        let (_t, h) = systemd_host();
        let p = probes_showing("LoadState=loaded\nDelegate=no\nControlGroup=\n");
        let c = &checks(&h, &p)[1];
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.fix.as_deref().unwrap_or("").contains("Delegate=yes"));

        let p = probes_showing("LoadState=not-found\nDelegate=no\nControlGroup=\n");
        let c = &checks(&h, &p)[1];
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.contains("not installed"));

        let c = &checks(&h, &FakeProbes::default())[1];
        assert_eq!(c.status, Status::Warn, "no systemctl: {c:?}");
    }

    #[test]
    fn a_delegated_subtree_needs_the_controllers() {
        let (t, h) = systemd_host();
        let shown = "LoadState=loaded\nDelegate=yes\n\
                     ControlGroup=/system.slice/gantry-agentd.service\n";
        let unit = t.path().join("cg2/system.slice/gantry-agentd.service");
        std::fs::write(unit.join("cgroup.controllers"), "cpu memory\n").expect("w");
        let c = &checks(&h, &probes_showing(shown))[1];
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("lacks controllers cpuset, pids"), "{c:?}");
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("Delegate=cpu cpuset"));

        std::fs::write(unit.join("cgroup.controllers"), "cpuset cpu memory pids\n").expect("w");
        let c = &checks(&h, &probes_showing(shown))[1];
        let root = nix::unistd::geteuid().is_root();
        assert_eq!(
            c.status,
            if root { Status::Ok } else { Status::Fail },
            "{c:?}"
        );
    }
}
