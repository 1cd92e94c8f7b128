//! The executor shim: a tiny supervisor the agent starts per task by re-executing its own binary.
//! It leaves the agent's session (so the task outlives an agent crash), adopts orphaned grandchildren,
//! runs the task, and writes the task's wait status to a file the agent reads, even after a restart.
//! The same binary, started with `__gantry_container SPEC`, is a native container's launcher and init
//! (`containerizer::native::init`), and with `__gantry_fetch_local ...` the fetcher's reader of local
//! files as the task's user (`fetcher::local`).

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first argument that turns a Gantry binary into the executor shim.
pub const EXECUTOR_ARG: &str = "__gantry_executor";

/// The task's end, as the shim records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the task never started (its user, directory or program), in the init's or shim's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// If this process was started as the executor shim, a native container's launcher
/// (`__gantry_container`) or the fetcher's local-file reader (`__gantry_fetch_local`), runs it and
/// exits; otherwise returns. Call first thing in `main`, before any runtime or thread starts.
pub fn run_if_requested() {
    let mut args = std::env::args_os();
    let _exe = args.next();
    let Some(first) = args.next() else {
        return;
    };
    let rest: Vec<std::ffi::OsString> = args.collect();
    let container = crate::containerizer::native::init::CONTAINER_ARG;
    if first == container {
        match rest.first() {
            Some(spec) => crate::containerizer::native::init::run(Path::new(spec)),
            None => {
                eprintln!("usage: {container} SPEC_FILE");
                std::process::exit(2);
            }
        }
    }
    if first == crate::fetcher::local::FETCH_LOCAL_ARG {
        crate::fetcher::local::run_helper(&rest);
    }
    if first != EXECUTOR_ARG {
        return;
    }
    let code = match rest.split_first() {
        Some((status_file, command)) if !command.is_empty() => {
            supervise(Path::new(status_file), command)
        }
        _ => {
            eprintln!("usage: {EXECUTOR_ARG} STATUS_FILE PROGRAM [ARGS...]");
            2
        }
    };
    std::process::exit(code);
}

/// The command line the agent uses to start `program args..` under the shim.
pub fn shim_command(self_exe: &Path, status_file: &Path, argv: &[String]) -> Command {
    let mut cmd = Command::new(self_exe);
    cmd.arg(EXECUTOR_ARG).arg(status_file).args(argv);
    cmd
}

fn supervise(status_file: &Path, command: &[std::ffi::OsString]) -> i32 {
    // Own session and process group: the agent signals the group, and the agent's death (or its
    // terminal going away) does not reach the task.
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("gantry executor: setsid failed: {e}");
    }
    // Orphaned grandchildren are re-parented to us, so we can reap them.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("gantry executor: cannot become a subreaper: {e}");
    }
    let child = match Command::new(&command[0]).args(&command[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {:?}: {e}", command[0]);
            eprintln!("gantry executor: {why}");
            write_record(
                status_file,
                &ExitRecord {
                    exit_code: Some(127),
                    signal: None,
                    error: Some(why),
                },
            );
            return 127;
        }
    };

    // The shim now ignores the termination signals sent to the whole group, so it lives to record
    // the task's status (SIGKILL still ends it). Only after the spawn: the child inherits a blocked
    // mask (std does not reset it), and the task must get the default dispositions. A group signal
    // in the instant between costs only the recorded status of a task that was being killed anyway.
    let mut block = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        block.add(s);
    }
    let _ = block.thread_block();

    let task_pid = Pid::from_raw(child.id() as i32);
    let record = loop {
        match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == task_pid => {
                break ExitRecord {
                    exit_code: Some(code),
                    signal: None,
                    error: None,
                }
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == task_pid => {
                break ExitRecord {
                    exit_code: None,
                    signal: Some(sig as i32),
                    error: None,
                }
            }
            Ok(_) => continue, // a reaped grandchild
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("gantry executor: waitpid failed: {e}");
                break ExitRecord {
                    exit_code: None,
                    signal: None,
                    error: None,
                };
            }
        }
    };
    write_record(status_file, &record);
    match (record.exit_code, record.signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    }
}

/// Writes the record atomically (temp file, rename).
pub(crate) fn write_record(path: &Path, record: &ExitRecord) {
    let tmp: PathBuf = path.with_extension("tmp");
    let body = serde_json::to_vec(record).unwrap_or_default();
    // Not fsynced: the record only has to outlive a crash of the agent (the page cache does); a
    // crash of the host ends the task too, and a rebooted agent reports its tasks failed without
    // reading records. The agent fsyncs the terminal status it derives from this record.
    let res = std::fs::File::create(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(&body)
    });
    if let Err(e) = res.and_then(|_| std::fs::rename(&tmp, path)) {
        eprintln!("gantry executor: cannot write {}: {e}", path.display());
    }
}

/// Reads what the shim recorded, if it did.
pub fn read_record(path: &Path) -> Option<ExitRecord> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
