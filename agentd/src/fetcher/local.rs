//! Local sources (absolute paths and `file://` URIs), read with the permissions of the user the
//! task runs as, never the agent's root: for a task with its own user the agent's binary is
//! re-executed as `__gantry_fetch_local UID GID GROUPS PATH`, which drops to that user
//! (`setgroups`, `setresgid`, `setresuid`) before it opens anything and streams the file to its
//! stdout; the agent writes that into the sandbox. Only regular files are read (a directory, a
//! device such as `/dev/zero` or a FIFO is refused); symlinks are followed with the user's rights.

use crate::containerizer::native::users::TaskUser;
use crate::containerizer::RunAs;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncReadExt;

/// The first argument that turns the agent's binary into the local-file reader.
pub const FETCH_LOCAL_ARG: &str = "__gantry_fetch_local";

/// The helper's exit codes.
const EXIT_USAGE: i32 = 2;
const EXIT_CANNOT_OPEN: i32 = 10;
const EXIT_NOT_A_FILE: i32 = 11;
const EXIT_CANNOT_SEND: i32 = 12;
const EXIT_CANNOT_DROP: i32 = 13;

/// Why a local source could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path} cannot be read as user {user}: {why}")]
    Denied {
        path: PathBuf,
        user: String,
        why: String,
    },
    #[error("{path} is not a regular file ({why}); only files can be fetched")]
    NotAFile { path: PathBuf, why: String },
    #[error("file:// URIs must name an absolute path (file:///path)")]
    NotAbsolute,
    #[error("the local-file reader {helper} failed: {why}")]
    Helper { helper: PathBuf, why: String },
    #[error("cannot write into the sandbox: {0}")]
    Write(#[source] io::Error),
}

/// The local path `uri` names (`/path`, `file:///path`, `file://localhost/path`); `None` for a
/// URI of another scheme.
pub fn path_of(uri: &str) -> Option<Result<PathBuf, LocalError>> {
    if uri.starts_with('/') {
        return Some(Ok(PathBuf::from(uri)));
    }
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    Some(if rest.starts_with('/') {
        Ok(PathBuf::from(rest))
    } else {
        Err(LocalError::NotAbsolute)
    })
}

/// Why [`open_regular`] refused.
#[derive(Debug)]
enum OpenError {
    Open(io::Error),
    NotAFile(&'static str),
}

/// Opens `path` for reading with this process's permissions; only a regular file (after
/// following links) is accepted. `O_NONBLOCK` so that a FIFO cannot hang the open.
fn open_regular(path: &Path) -> Result<File, OpenError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(OpenError::Open)?;
    let kind = f.metadata().map_err(OpenError::Open)?.file_type();
    let what = if kind.is_file() {
        return Ok(f);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(OpenError::NotAFile(what))
}

/// The name of the agent's own user, for messages.
fn agent_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => format!("'{}' (uid {uid}, the agent's own)", u.name),
        _ => format!("uid {uid} (the agent's own)"),
    }
}

fn user_label(user: &TaskUser) -> String {
    format!("'{}' (uid {})", user.name, user.uid)
}

/// Copies the local file `path` into `dest`, read as `run_as`.
pub async fn read_into(
    run_as: &RunAs,
    path: &Path,
    dest: &mut tokio::fs::File,
) -> Result<(), LocalError> {
    match run_as {
        RunAs::Agent => read_as_agent(path, dest).await,
        RunAs::User { user, helper } => read_as_user(user, helper, path, dest).await,
    }
}

/// The `process` back end: tasks run as the agent, so the agent's own rights are the task's.
async fn read_as_agent(path: &Path, dest: &mut tokio::fs::File) -> Result<(), LocalError> {
    let p = path.to_owned();
    let opened = tokio::task::spawn_blocking(move || open_regular(&p))
        .await
        .map_err(|e| LocalError::Helper {
            helper: PathBuf::from("(in the agent)"),
            why: e.to_string(),
        })?;
    let file = opened.map_err(|e| match e {
        OpenError::Open(e) => LocalError::Denied {
            path: path.to_owned(),
            user: agent_user(),
            why: e.to_string(),
        },
        OpenError::NotAFile(what) => LocalError::NotAFile {
            path: path.to_owned(),
            why: what.into(),
        },
    })?;
    let mut src = tokio::fs::File::from_std(file);
    tokio::io::copy(&mut src, dest)
        .await
        .map_err(LocalError::Write)?;
    Ok(())
}

/// Reads through the helper, dropped to `user`.
async fn read_as_user(
    user: &TaskUser,
    helper: &Path,
    path: &Path,
    dest: &mut tokio::fs::File,
) -> Result<(), LocalError> {
    let failed = |why: String| LocalError::Helper {
        helper: helper.to_owned(),
        why,
    };
    let groups: Vec<String> = user.groups.iter().map(u32::to_string).collect();
    let mut child = tokio::process::Command::new(helper)
        .arg(FETCH_LOCAL_ARG)
        .arg(user.uid.to_string())
        .arg(user.gid.to_string())
        .arg(groups.join(","))
        .arg(path)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    let (Some(mut out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(failed("no pipes to it".into()));
    };
    let mut said = Vec::new();
    // `out` moves into the copy, so a failed write closes the pipe and the helper ends.
    let (copied, _) = tokio::join!(
        async move { tokio::io::copy(&mut out, dest).await },
        async { err.take(4096).read_to_end(&mut said).await }
    );
    let status = child
        .wait()
        .await
        .map_err(|e| failed(format!("cannot wait for it: {e}")))?;
    let said = String::from_utf8_lossy(&said).trim().to_string();
    match status.code() {
        Some(0) => copied.map(|_| ()).map_err(LocalError::Write),
        Some(EXIT_CANNOT_OPEN) => Err(LocalError::Denied {
            path: path.to_owned(),
            user: user_label(user),
            why: said,
        }),
        Some(EXIT_NOT_A_FILE) => Err(LocalError::NotAFile {
            path: path.to_owned(),
            why: said,
        }),
        _ => Err(failed(format!("{status}: {said}"))),
    }
}

/// The helper's side: parses `UID GID GROUPS PATH`, drops to that user, streams the file to
/// stdout, and exits. Runs before any thread or runtime exists (`executor::run_if_requested`).
pub fn run_helper(args: &[OsString]) -> ! {
    let code = match helper(args) {
        Ok(()) => 0,
        Err((code, why)) => {
            eprintln!("{why}");
            code
        }
    };
    std::process::exit(code)
}

fn helper(args: &[OsString]) -> Result<(), (i32, String)> {
    let usage = || {
        (
            EXIT_USAGE,
            format!("usage: {FETCH_LOCAL_ARG} UID GID GROUPS PATH"),
        )
    };
    let [uid, gid, groups, path] = args else {
        return Err(usage());
    };
    let num = |s: &OsString| s.to_str().and_then(|s| s.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (num(uid), num(gid)) else {
        return Err(usage());
    };
    let groups: Option<Vec<u32>> = groups
        .to_str()
        .map(|g| {
            g.split(',')
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect()
        })
        .and_then(Result::ok);
    let groups = groups.ok_or_else(usage)?;
    drop_to(uid, gid, &groups)
        .map_err(|e| (EXIT_CANNOT_DROP, format!("cannot become uid {uid}: {e}")))?;
    let mut file = open_regular(Path::new(path)).map_err(|e| match e {
        OpenError::Open(e) => (EXIT_CANNOT_OPEN, e.to_string()),
        OpenError::NotAFile(what) => (EXIT_NOT_A_FILE, what.to_string()),
    })?;
    let send = |e: io::Error| (EXIT_CANNOT_SEND, format!("cannot send the file: {e}"));
    let mut out = File::from(
        std::os::fd::AsFd::as_fd(&io::stdout())
            .try_clone_to_owned()
            .map_err(send)?,
    );
    io::copy(&mut file, &mut out).map_err(send)?;
    Ok(())
}

/// Becomes `uid`/`gid` with exactly `groups`, for good: real, effective and saved ids.
fn drop_to(uid: u32, gid: u32, groups: &[u32]) -> nix::Result<()> {
    use nix::unistd::{getegid, geteuid, getgid, getuid, setgroups, setresgid, setresuid};
    use nix::unistd::{Gid, Uid};
    let gids: Vec<Gid> = groups.iter().copied().map(Gid::from_raw).collect();
    setgroups(&gids)?;
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    setresgid(g, g, g)?;
    setresuid(u, u, u)?;
    let regained =
        uid != 0 && setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok();
    if regained || getuid() != u || geteuid() != u || getgid() != g || getegid() != g {
        return Err(nix::errno::Errno::EPERM);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_of_uris() {
        let p = |u: &str| path_of(u).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(p("/etc/shadow"), Some(Ok(PathBuf::from("/etc/shadow"))));
        assert_eq!(p("file:///srv/a"), Some(Ok(PathBuf::from("/srv/a"))));
        assert_eq!(
            p("file://localhost/srv/a"),
            Some(Ok(PathBuf::from("/srv/a")))
        );
        assert!(matches!(p("file://etc/shadow"), Some(Err(_))), "relative");
        assert_eq!(p("http://h/a"), None);
        assert_eq!(p("relative/path"), None);
    }

    #[test]
    fn only_regular_files_are_opened() {
        assert!(matches!(
            open_regular(Path::new("/dev/zero")),
            Err(OpenError::NotAFile("a character device"))
        ));
        assert!(matches!(
            open_regular(Path::new("/")),
            Err(OpenError::NotAFile("a directory"))
        ));
        let t = tempfile::tempdir().expect("tempdir");
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        assert!(
            matches!(open_regular(&fifo), Err(OpenError::NotAFile("a FIFO"))),
            "refused at once, not hung waiting for a writer"
        );
        assert!(matches!(
            open_regular(&t.path().join("missing")),
            Err(OpenError::Open(_))
        ));
    }

    #[test]
    fn the_helper_refuses_bad_arguments_before_dropping_anything() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(helper(&args(&["1", "2"])).unwrap_err().0, EXIT_USAGE);
        assert_eq!(
            helper(&args(&["x", "2", "", "/etc/hostname"]))
                .unwrap_err()
                .0,
            EXIT_USAGE
        );
        assert_eq!(
            helper(&args(&["1", "2", "3,x", "/etc/hostname"]))
                .unwrap_err()
                .0,
            EXIT_USAGE
        );
    }
}
