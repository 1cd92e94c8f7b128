//! Kernel checks: the namespaces the native containerizer unshares (pid, mount, uts, ipc, net),
//! tried for real in a child process, and overlayfs in `/proc/filesystems`.

use super::{Check, Host, Probes, RealProbes};

/// The environment variable that makes `gantry` only try one `unshare(2)` and exit (the child
/// the namespaces probe starts).
const UNSHARE_ENV: &str = "GANTRY_DOCTOR_UNSHARE";

/// The namespaces tasks get: (`/proc/self/ns` name, what the kernel option is called).
pub const NAMESPACES: [(&str, &str); 5] = [
    ("pid", "CONFIG_PID_NS"),
    ("mnt", "CONFIG_NAMESPACES"),
    ("uts", "CONFIG_UTS_NS"),
    ("ipc", "CONFIG_IPC_NS"),
    ("net", "CONFIG_NET_NS"),
];

fn flag(ns: &str) -> Option<nix::sched::CloneFlags> {
    use nix::sched::CloneFlags as F;
    Some(match ns {
        "pid" => F::CLONE_NEWPID,
        "mnt" => F::CLONE_NEWNS,
        "uts" => F::CLONE_NEWUTS,
        "ipc" => F::CLONE_NEWIPC,
        "net" => F::CLONE_NEWNET,
        _ => return None,
    })
}

/// In the probe's child: unshares the namespace named in the environment and exits (0 when the
/// kernel allowed it). Returns at once in any other process. Call first thing in `main`.
pub fn run_unshare_if_requested() {
    let Ok(ns) = std::env::var(UNSHARE_ENV) else {
        return;
    };
    let code = match flag(&ns).map(nix::sched::unshare) {
        Some(Ok(())) => 0,
        Some(Err(e)) => {
            eprintln!("unshare({ns}): {e}");
            1
        }
        None => {
            eprintln!("unknown namespace {ns}");
            2
        }
    };
    std::process::exit(code);
}

impl RealProbes {
    /// Starts this executable again with [`UNSHARE_ENV`] set: the namespace is made in a child
    /// that exits at once, so this process keeps its own.
    pub(super) fn unshare_in_child(ns: &str) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find gantry itself: {e}"))?;
        let out = std::process::Command::new(exe)
            .env(UNSHARE_ENV, ns)
            .output()
            .map_err(|e| format!("cannot start the probe: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

pub fn namespaces(host: &Host, probes: &dyn Probes) -> Check {
    const NAME: &str = "namespaces";
    for (ns, option) in NAMESPACES {
        if !host.path(&format!("/proc/self/ns/{ns}")).exists() {
            return Check::fail(
                NAME,
                format!("the kernel has no {ns} namespaces (no /proc/self/ns/{ns})"),
                format!("boot a kernel built with {option}=y (every distribution kernel is)"),
            );
        }
        if let Err(e) = probes.unshare(ns) {
            let fix = if e.contains("EPERM") {
                "run gantry-agentd (and this doctor) as root, on the host or in a privileged \
                 container (docker run --privileged)"
            } else {
                "allow unshare(2) for the agent: no seccomp profile or container runtime that \
                 forbids it (e.g. run the agent on the host)"
            };
            return Check::fail(NAME, format!("cannot create a {ns} namespace: {e}"), fix);
        }
    }
    Check::ok(NAME, "pid, mnt, uts, ipc and net namespaces can be created")
}

pub fn overlayfs(host: &Host) -> Check {
    const NAME: &str = "overlayfs";
    let text = match host.read("/proc/filesystems") {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read /proc/filesystems: {e}"),
                "mount procfs: `mount -t proc proc /proc`",
            )
        }
    };
    if text
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        Check::ok(NAME, "overlay is in /proc/filesystems")
    } else {
        Check::warn(
            NAME,
            "overlay is not in /proc/filesystems (module not loaded): container image layers \
             need it; native tasks without images run without it",
            "`modprobe overlay`, and `echo overlay > /etc/modules-load.d/gantry.conf` to load it at \
             boot",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeProbes;
    use super::super::Status;
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let t = tempfile::tempdir().expect("tempdir");
        let ns = t.path().join("proc/self/ns");
        std::fs::create_dir_all(&ns).expect("mkdir");
        for (n, _) in NAMESPACES {
            std::fs::write(ns.join(n), "").expect("write");
        }
        let h = Host {
            root: t.path().to_owned(),
        };
        (t, h)
    }

    #[test]
    fn namespaces_ok_then_each_failure_with_its_fix() {
        let (t, h) = host();
        assert_eq!(namespaces(&h, &FakeProbes::default()).status, Status::Ok);

        let mut p = FakeProbes::default();
        p.unshare_fails
            .insert("net", "unshare(net): EPERM: Operation not permitted".into());
        let c = namespaces(&h, &p);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("net namespace"), "{c:?}");
        assert!(c.fix.as_deref().unwrap_or("").contains("as root"));

        let mut p = FakeProbes::default();
        p.unshare_fails.insert(
            "ipc",
            "unshare(ipc): ENOSYS: Function not implemented".into(),
        );
        let c = namespaces(&h, &p);
        assert!(c.fix.as_deref().unwrap_or("").contains("seccomp"), "{c:?}");

        std::fs::remove_file(t.path().join("proc/self/ns/uts")).expect("rm");
        let c = namespaces(&h, &FakeProbes::default());
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.as_deref().unwrap_or("").contains("CONFIG_UTS_NS"));
    }

    #[test]
    fn overlay_present_missing_and_unreadable() {
        let (t, h) = host();
        assert_eq!(overlayfs(&h).status, Status::Fail, "no /proc/filesystems");
        std::fs::write(t.path().join("proc/filesystems"), "nodev\tproc\n\text4\n").expect("w");
        let c = overlayfs(&h);
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.as_deref().unwrap_or("").contains("modprobe overlay"));
        std::fs::write(
            t.path().join("proc/filesystems"),
            "nodev\tproc\n\text4\nnodev\toverlay\n",
        )
        .expect("w");
        assert_eq!(overlayfs(&h).status, Status::Ok);
    }
}
