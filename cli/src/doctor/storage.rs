//! Checks of this host's places: the listen port is free (or held by the daemon itself, running
//! here, as after a package install), the state or work dir is writable, and the task user can
//! reach the sandboxes (the agent's own check, `reach.rs`).

use super::{Check, Probes};
use gantry_agentd::containerizer::native::reach::check_reachable;
use gantry_agentd::containerizer::native::spec::PRIVATE_TMP;
use std::net::SocketAddr;
use std::path::Path;

pub fn port_free(probes: &dyn Probes, addr: SocketAddr, daemon: &str) -> Check {
    const NAME: &str = "port";
    match probes.bind(addr) {
        Ok(()) => Check::ok(NAME, format!("{addr} is free for {daemon}")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match probes.listener(addr) {
            Some((pid, name)) if name == daemon => Check::ok(
                NAME,
                format!("{addr} is held by {daemon} itself (pid {pid}), running here"),
            ),
            _ => Check::fail(
                NAME,
                format!("{addr} is in use (by {daemon} itself if it already runs here)"),
                format!(
                "see who holds it: `ss -ltnp 'sport = :{}'`; stop that, or start {daemon} with \
                 another --listen ADDR (and give the doctor the same --listen)",
                    addr.port()
                ),
            ),
        },
        Err(e) => Check::fail(
            NAME,
            format!("cannot listen on {addr}: {e}"),
            "give --listen an address of this host (e.g. 0.0.0.0:PORT)",
        ),
    }
}

/// The process that listens on TCP `port` (IPv4 or IPv6), from `<proc>/net/tcp{,6}` and the
/// sockets among `<proc>/PID/fd`: its pid and `comm`. `None` when nobody does or it cannot be read
/// (another user's process, without root).
pub fn listener_of(proc: &Path, port: u16) -> Option<(u32, String)> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(proc.join(table)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && f.get(3) == Some(&LISTEN) {
                if let Some(inode) = f.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir(proc).ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(|l| inodes.iter().any(|i| i == l)))
                .unwrap_or(false)
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some((pid, comm.trim().to_owned()));
        }
    }
    None
}

/// Creates and removes a file in `dir`.
fn try_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".gantry-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"gantry doctor\n")?;
    std::fs::remove_file(&probe)
}

pub fn dir_writable(what: &'static str, dir: &Path, flag: &str) -> Check {
    let name = what;
    let fix = format!(
        "`mkdir -p {d} && chown root {d}` (run the daemon as the directory's owner), or pass \
         {flag} DIR",
        d = dir.display()
    );
    if dir.is_dir() {
        return match try_write(dir) {
            Ok(()) => Check::ok(name, format!("{} is writable", dir.display())),
            Err(e) => Check::fail(name, format!("cannot write in {}: {e}", dir.display()), fix),
        };
    }
    if dir.exists() {
        return Check::fail(
            name,
            format!("{} exists and is not a directory", dir.display()),
            format!("remove it, or pass {flag} DIR"),
        );
    }
    let Some(parent) = dir.ancestors().skip(1).find(|a| a.is_dir()) else {
        return Check::fail(name, format!("no parent of {} exists", dir.display()), fix);
    };
    match try_write(parent) {
        Ok(()) => Check::ok(
            name,
            format!(
                "{} does not exist yet; {} is writable, so the daemon creates it",
                dir.display(),
                parent.display()
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!(
                "{} does not exist and {} is not writable: {e}",
                dir.display(),
                parent.display()
            ),
            fix,
        ),
    }
}

pub fn sandboxes_reachable(probes: &dyn Probes, work_dir: &Path, user: &str) -> Check {
    const NAME: &str = "sandboxes";
    let Some(u) = probes.user(user) else {
        return Check::fail(
            NAME,
            format!("the task user '{user}' does not exist"),
            format!("`useradd --system --no-create-home {user}`, or pass --default-user USER"),
        );
    };
    let sandboxes = work_dir.join("sandboxes");
    match check_reachable(&sandboxes, &u, Path::new(PRIVATE_TMP)) {
        Ok(()) => Check::ok(
            NAME,
            format!(
                "tasks run as '{}' (uid {}) and can reach {}",
                u.name,
                u.uid,
                sandboxes.display()
            ),
        ),
        Err(blocked) => Check::fail(
            NAME,
            format!(
                "tasks run as '{}' (uid {}), who cannot reach {}: {} is mode {:04o}, owned by uid {}",
                u.name,
                u.uid,
                sandboxes.display(),
                blocked.blocked_at.display(),
                blocked.mode,
                blocked.owner
            ),
            format!(
                "`chmod o+x {}`, or put the work dir where task users can enter (--work-dir \
                 /var/lib/gantry/agent)",
                blocked.blocked_at.display()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeProbes;
    use super::super::Status;
    use super::*;
    use gantry_agentd::containerizer::native::users::TaskUser;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ports_free_taken_and_unbindable() {
        let addr: SocketAddr = "127.0.0.1:5051".parse().expect("addr");
        assert_eq!(
            port_free(&FakeProbes::default(), addr, "gantry-agentd").status,
            Status::Ok
        );
        let p = FakeProbes {
            port_taken: true,
            ..Default::default()
        };
        let c = port_free(&p, addr, "gantry-agentd");
        assert_eq!(c.status, Status::Fail);
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("ss -ltnp 'sport = :5051'"));
        let held = FakeProbes {
            port_taken: true,
            listener: Some((42, "gantry-agentd".into())),
            ..Default::default()
        };
        let c = port_free(&held, addr, "gantry-agentd");
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.detail.contains("itself (pid 42)"), "{c:?}");
        let other = FakeProbes {
            listener: Some((7, "nginx".into())),
            ..held
        };
        assert_eq!(
            port_free(&other, addr, "gantry-agentd").status,
            Status::Fail
        );
    }

    #[test]
    fn the_listener_of_a_port_is_found_in_proc() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let (pid, _comm) = listener_of(Path::new("/proc"), port).expect("this process listens");
        assert_eq!(pid, std::process::id());
        drop(l);
        assert_eq!(listener_of(Path::new("/proc"), port), None);
    }

    #[test]
    fn dirs_existing_creatable_and_blocked() {
        let t = tempfile::tempdir().expect("tempdir");
        let c = dir_writable("work dir", t.path(), "--work-dir");
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let later = t.path().join("a/b");
        let c = dir_writable("work dir", &later, "--work-dir");
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("does not exist yet"), "{c:?}");
        let file = t.path().join("f");
        std::fs::write(&file, "").expect("w");
        let c = dir_writable("work dir", &file, "--work-dir");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("not a directory"));
        // Root writes through any mode bits; an unwritable dir is a read-only mount for root.
        if !nix::unistd::geteuid().is_root() {
            let ro = t.path().join("ro");
            std::fs::create_dir(&ro).expect("mkdir");
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).expect("chmod");
            let c = dir_writable("work dir", &ro, "--work-dir");
            assert_eq!(c.status, Status::Fail);
            assert!(c.fix.as_deref().unwrap_or("").contains("--work-dir DIR"));
        }
        let c = dir_writable("state dir", Path::new("/proc/sys/kernel"), "--state-dir");
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.fix.as_deref().unwrap_or("").contains("--state-dir DIR"));
    }

    #[test]
    fn sandboxes_unreachable_names_the_directory_and_a_missing_user_fails() {
        let nobody = TaskUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![],
        };
        let c = sandboxes_reachable(&FakeProbes::default(), Path::new("/x"), "nobody");
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.as_deref().unwrap_or("").contains("useradd"));

        // Outside /tmp (below it the container's init makes the path): the crate's target dir.
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
        std::fs::create_dir_all(&base).expect("mkdir");
        let t = tempfile::tempdir_in(&base).expect("tempdir");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let work = t.path().join("agent");
        std::fs::create_dir_all(work.join("sandboxes")).expect("mkdir");
        let p = FakeProbes {
            users: vec![nobody],
            ..Default::default()
        };
        let blocked = std::fs::canonicalize(t.path()).expect("canonical");
        let c = sandboxes_reachable(&p, &work, "nobody");
        let reachable_above = blocked
            .ancestors()
            .skip(1)
            .all(|a| std::fs::metadata(a).map_or(true, |m| m.permissions().mode() & 0o001 != 0));
        assert!(
            reachable_above,
            "the test needs {} searchable by others",
            base.display()
        );
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("mode 0700"), "{c:?}");
        let fix = format!("`chmod o+x {}`", blocked.display());
        assert!(c.fix.as_deref().unwrap_or("").starts_with(&fix), "{c:?}");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
        assert_eq!(sandboxes_reachable(&p, &work, "nobody").status, Status::Ok);
    }
}
