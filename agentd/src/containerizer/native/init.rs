//! The container's init, run by the executor shim (`__gantry_container SPEC`): the launcher joins
//! the cgroup and unshares the namespaces, forks the init (pid 1 of the new pid namespace) and
//! exits; the init mounts `/proc`, a private `/tmp` and the sandbox, starts the task as its user,
//! forwards signals to it, reaps every zombie, and records the task's wait status.

use super::spec::{InitSpec, MountStep};
use super::syscall::{LinuxSyscall, Syscall, SyscallError};
use crate::executor::{write_record, ExitRecord};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The first argument that starts a native container's launcher.
pub const CONTAINER_ARG: &str = "__gantry_container";

/// Signals the init forwards to the task (and blocks for itself).
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The namespace flags of the spec.
pub fn clone_flags(spec: &InitSpec) -> CloneFlags {
    let n = spec.namespaces;
    let mut f = CloneFlags::empty();
    for (on, flag) in [
        (n.pid, CloneFlags::CLONE_NEWPID),
        (n.mount, CloneFlags::CLONE_NEWNS),
        (n.uts, CloneFlags::CLONE_NEWUTS),
        (n.ipc, CloneFlags::CLONE_NEWIPC),
        (n.net, CloneFlags::CLONE_NEWNET),
    ] {
        if on {
            f |= flag;
        }
    }
    f
}

/// Launcher, in the host's namespaces: protect the init from the OOM killer, join the cgroup, then
/// unshare (the next child is pid 1 of the new pid namespace). The launcher is single-threaded, so
/// writing `0` (the calling thread) to each join file moves all of it, without the global lock a
/// whole-process move takes.
pub fn launcher_plan(sys: &dyn Syscall, spec: &InitSpec) -> Result<(), SyscallError> {
    // Best effort: some hosts (unprivileged containers) refuse lowering it.
    let _ = sys.write_file(Path::new("/proc/self/oom_score_adj"), "-1000");
    for f in &spec.cgroup_join {
        sys.write_file(f, "0")?;
    }
    sys.unshare(clone_flags(spec))
}

/// Init, inside the new namespaces: the mount plan, then the network. Returns the path to record
/// the task's status at, through a held fd on its directory (a tmpfs may cover the original).
pub fn init_plan(sys: &dyn Syscall, spec: &InitSpec) -> Result<PathBuf, SyscallError> {
    let meta = sys.hold_dir(spec.status_file.parent().unwrap_or(Path::new("/")))?;
    let status = meta.join(spec.status_file.file_name().unwrap_or_default());
    // Sources of bind mounts are held first: a tmpfs may cover them (a sandbox under /tmp).
    let mut held = Vec::new();
    for step in &spec.mounts {
        if let MountStep::Bind { source, .. } = step {
            held.push(sys.hold_dir(source)?);
        }
    }
    let mut held = held.into_iter();
    for step in &spec.mounts {
        match step {
            MountStep::MakeRootPrivate => sys.mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None,
            )?,
            MountStep::Proc => sys.mount(
                Some(Path::new("proc")),
                Path::new("/proc"),
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None,
            )?,
            MountStep::Tmpfs { target, size_bytes } => sys.mount(
                Some(Path::new("tmpfs")),
                target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&format!("mode=1777,size={size_bytes}")),
            )?,
            MountStep::Bind { target, .. } => {
                let fd_path = held.next().unwrap_or_default();
                sys.mkdir_all(target)?;
                sys.mount(
                    Some(&fd_path),
                    target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
            }
            MountStep::Overlay {
                lower,
                upper,
                work,
                target,
            } => {
                let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
                let data = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower.join(":"),
                    upper.display(),
                    work.display()
                );
                sys.mount(
                    Some(Path::new("overlay")),
                    target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(&data),
                )?
            }
            MountStep::ProcAt { target } => {
                sys.mkdir_all(target)?;
                sys.mount(
                    Some(Path::new("proc")),
                    target,
                    Some("proc"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None,
                )?
            }
            MountStep::Dev { target, nodes } => mount_dev(sys, target, nodes)?,
            MountStep::BindFile { source, target } => {
                if source.exists() {
                    sys.touch(target)?;
                    sys.mount(Some(source), target, None, MsFlags::MS_BIND, None)?;
                }
            }
            MountStep::PivotRoot { new_root } => sys.pivot_root(new_root)?,
        }
    }
    if let Some(d) = &spec.make_cwd {
        sys.mkdir_all(d)?;
    }
    if spec.namespaces.net {
        sys.loopback_up()?;
    }
    Ok(status)
}

/// A minimal `/dev` in a rootfs: a tmpfs with the host's `nodes` bound at their names (the
/// device cgroup still decides which can be opened), the usual links, `/dev/shm` and `/dev/pts`.
fn mount_dev(sys: &dyn Syscall, target: &Path, nodes: &[PathBuf]) -> Result<(), SyscallError> {
    sys.mkdir_all(target)?;
    sys.mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=65536k"),
    )?;
    for node in nodes {
        let Ok(rel) = node.strip_prefix("/dev") else {
            continue;
        };
        let at = target.join(rel);
        sys.touch(&at)?;
        sys.mount(Some(node), &at, None, MsFlags::MS_BIND, None)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        sys.symlink(Path::new(to), &target.join(link))?;
    }
    let shm = target.join("shm");
    sys.mkdir_all(&shm)?;
    sys.mount(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )?;
    let pts = target.join("pts");
    sys.mkdir_all(&pts)?;
    sys.mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
}

/// The task's process, after fork and before exec: normal OOM score, its user, its directory.
pub fn task_plan(sys: &dyn Syscall, spec: &InitSpec) -> Result<(), SyscallError> {
    let _ = sys.write_file(Path::new("/proc/self/oom_score_adj"), "0");
    sys.set_ids(spec.uid, spec.gid, &spec.groups)?;
    sys.chdir(&spec.cwd)
}

/// Runs the launcher; never returns.
pub fn run(spec_path: &Path) -> ! {
    let spec = match InitSpec::load(spec_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gantry init: {e}");
            std::process::exit(2)
        }
    };
    let sys = LinuxSyscall;
    if let Err(e) = launcher_plan(&sys, &spec) {
        report_pid(&spec, &format!("error: {e}"));
        std::process::exit(1)
    }
    // Opened before the fork: the init shares this mount namespace and may cover the meta dir
    // with its tmpfs /tmp before the launcher writes (a work dir under /tmp).
    let pid_out = match std::fs::File::create(&spec.pid_file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "gantry init: cannot create {}: {e}",
                spec.pid_file.display()
            );
            std::process::exit(1)
        }
    };
    match fork_once() {
        Ok(ForkResult::Parent { child }) => {
            use std::io::Write;
            let mut out = pid_out;
            let code = match out.write_all(child.as_raw().to_string().as_bytes()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("gantry init: cannot write the init's pid: {e}");
                    let _ = kill(child, Signal::SIGKILL);
                    1
                }
            };
            std::process::exit(code)
        }
        Ok(ForkResult::Child) => {
            drop(pid_out);
            std::process::exit(init(&sys, &spec))
        }
        Err(e) => {
            drop(pid_out);
            report_pid(&spec, &format!("error: fork: {e}"));
            std::process::exit(1)
        }
    }
}

/// fork(2) in the launcher or the init.
#[allow(unsafe_code)]
fn fork_once() -> nix::Result<ForkResult> {
    // SAFETY: the launcher and the init are single-threaded (the shim runs before any runtime or
    // thread starts), so the child may do anything the parent could.
    unsafe { nix::unistd::fork() }
}

fn report_pid(spec: &InitSpec, what: &str) {
    let tmp = spec.pid_file.with_extension("tmp");
    if std::fs::write(&tmp, what)
        .and_then(|_| std::fs::rename(&tmp, &spec.pid_file))
        .is_err()
    {
        eprintln!("gantry init: cannot write {}", spec.pid_file.display());
    }
}

/// pid 1 of the container.
fn init(sys: &dyn Syscall, spec: &InitSpec) -> i32 {
    let _ = nix::unistd::setsid();
    let status = match init_plan(sys, spec) {
        Ok(p) => p,
        Err(e) => {
            let why = format!("container setup failed: {e}");
            eprintln!("gantry init: {why}");
            record_error(&spec.status_file, why);
            return 127;
        }
    };
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    // The task's side closes on exec (O_CLOEXEC); before that it carries why the task could not
    // start, so the agent reports the init's own words rather than an exit code.
    let (errors_in, errors_out) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            let why = format!("container setup failed: pipe: {e}");
            eprintln!("gantry init: {why}");
            record_error(&status, why);
            return 127;
        }
    };
    let task = match fork_once() {
        Ok(ForkResult::Child) => {
            let _ = mask.thread_unblock();
            drop(errors_in);
            exec_task(sys, spec, errors_out)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let why = format!("fork: {e}");
            eprintln!("gantry init: {why}");
            record_error(&status, why);
            return 127;
        }
    };
    drop(errors_out);
    let start_error = read_start_error(errors_in);
    loop {
        match mask.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some((code, sig)) = reap(task) {
                    write_record(
                        &status,
                        &ExitRecord {
                            exit_code: code,
                            signal: sig,
                            error: start_error,
                        },
                    );
                    return code.unwrap_or_else(|| 128 + sig.unwrap_or(0));
                }
            }
            Ok(sig) => {
                let _ = kill(task, sig);
            }
            Err(_) => {}
        }
    }
}

/// Reaps every exited child; returns the task's (exit code, signal) when it is among them.
fn reap(task: Pid) -> Option<(Option<i32>, Option<i32>)> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == task => found = Some((Some(code), None)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == task => {
                found = Some((None, Some(sig as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}

/// Records that the task never started (exit code 127, as a shell says for a command it cannot run).
fn record_error(path: &Path, why: String) {
    write_record(
        path,
        &ExitRecord {
            exit_code: Some(127),
            signal: None,
            error: Some(why),
        },
    );
}

/// What the task's process wrote before exec failed; `None` once exec closed the pipe unwritten.
fn read_start_error(pipe: OwnedFd) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    let _ = std::fs::File::from(pipe)
        .take(4096)
        .read_to_string(&mut text);
    (!text.is_empty()).then_some(text)
}

/// The task's process: its plan, then exec. On failure the reason goes to stderr (the sandbox's
/// log) and to the init through `errors`, and the process exits 127.
fn exec_task(sys: &dyn Syscall, spec: &InitSpec, errors: OwnedFd) -> ! {
    let why = match task_plan(sys, spec) {
        Err(e) => format!("cannot start the task: {e}"),
        Ok(()) => {
            let argv: Vec<std::ffi::CString> = spec
                .argv
                .iter()
                .filter_map(|a| std::ffi::CString::new(a.as_bytes()).ok())
                .collect();
            match argv.first() {
                Some(prog) => {
                    let e = nix::unistd::execvp(prog, &argv).err();
                    let e = e.map_or_else(String::new, |e| e.desc().to_string());
                    format!("cannot execute {:?}: {e}", spec.argv[0])
                }
                None => "the task has no command".to_string(),
            }
        }
    };
    eprintln!("gantry init: {why}");
    use std::io::Write;
    let _ = std::fs::File::from(errors).write_all(why.as_bytes());
    std::process::exit(127)
}

#[cfg(test)]
mod tests {
    use super::super::spec::Namespaces;
    use super::super::syscall::RecordingSyscall;
    use super::*;
    use std::path::PathBuf;

    fn spec(net: bool) -> InitSpec {
        InitSpec {
            container_id: "c1".into(),
            argv: vec!["/bin/true".into()],
            cwd: PathBuf::from("/tmp/w/sandbox"),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
            namespaces: Namespaces {
                pid: true,
                mount: true,
                uts: true,
                ipc: true,
                net,
            },
            cgroup_join: vec![PathBuf::from("/cg/memory/gantry/c1/tasks")],
            mounts: InitSpec::mount_plan(
                Path::new("/tmp/w/sandbox"),
                Path::new("/tmp/w/sandbox"),
                1 << 20,
            ),
            status_file: PathBuf::from("/m/status"),
            pid_file: PathBuf::from("/m/pid"),
            make_cwd: None,
        }
    }

    #[test]
    fn launcher_joins_the_cgroup_before_unsharing() {
        let sys = RecordingSyscall::default();
        launcher_plan(&sys, &spec(false)).expect("plan");
        let calls = sys.take();
        assert_eq!(calls[0], "write /proc/self/oom_score_adj -1000");
        assert_eq!(calls[1], "write /cg/memory/gantry/c1/tasks 0");
        assert!(calls[2].starts_with("unshare"), "{calls:?}");
        for ns in [
            "CLONE_NEWPID",
            "CLONE_NEWNS",
            "CLONE_NEWUTS",
            "CLONE_NEWIPC",
        ] {
            assert!(calls[2].contains(ns), "{ns} in {}", calls[2]);
        }
        assert!(
            !calls[2].contains("CLONE_NEWNET"),
            "host network by default"
        );
        let sys = RecordingSyscall::default();
        launcher_plan(&sys, &spec(true)).expect("plan");
        assert!(sys.take()[2].contains("CLONE_NEWNET"));
    }

    #[test]
    fn mounts_keep_a_sandbox_under_tmp_reachable() {
        let sys = RecordingSyscall::default();
        let status = init_plan(&sys, &spec(true)).expect("plan");
        assert_eq!(status, Path::new("/proc/self/fd/9/status"));
        let mut calls = sys.take();
        assert_eq!(
            calls.remove(0),
            "hold /m",
            "the status file's directory is held first"
        );
        assert_eq!(
            calls[0], "hold /tmp/w/sandbox",
            "held before /tmp is covered"
        );
        assert!(
            calls[1].starts_with("mount - / -") && calls[1].contains("MS_PRIVATE"),
            "{}",
            calls[1]
        );
        assert!(
            calls[2].starts_with("mount proc /proc proc"),
            "{}",
            calls[2]
        );
        assert!(
            calls[3].starts_with("mount tmpfs /tmp tmpfs")
                && calls[3].ends_with("mode=1777,size=1048576")
        );
        assert_eq!(calls[4], "mkdir /tmp/w/sandbox");
        assert!(
            calls[5].starts_with("mount /proc/self/fd/9 /tmp/w/sandbox -")
                && calls[5].contains("MS_BIND")
        );
        assert_eq!(calls[6], "lo up");
    }

    #[test]
    fn the_task_drops_to_its_user_last() {
        let sys = RecordingSyscall::default();
        task_plan(&sys, &spec(false)).expect("plan");
        assert_eq!(
            sys.take(),
            vec![
                "write /proc/self/oom_score_adj 0",
                "ids 65534 65534 [65534]",
                "chdir /tmp/w/sandbox"
            ]
        );
    }
}
