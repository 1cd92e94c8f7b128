//! The seam between the container's setup plan and the kernel: [`Syscall`] is implemented by
//! [`LinuxSyscall`] for real and by [`RecordingSyscall`] in unit tests, so the namespace and mount
//! plan is tested without root.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use std::path::Path;
use std::sync::Mutex;

/// A failed call, with what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SyscallError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

fn err(what: impl Into<String>, e: impl Into<std::io::Error>) -> SyscallError {
    SyscallError {
        what: what.into(),
        source: e.into(),
    }
}

/// The kernel calls a container's setup makes.
pub trait Syscall {
    fn write_file(&self, path: &Path, value: &str) -> Result<(), SyscallError>;
    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError>;
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SyscallError>;
    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError>;
    /// Opens `path` as an `O_PATH` directory fd and returns `/proc/self/fd/N` for it (kept open).
    fn hold_dir(&self, path: &Path) -> Result<std::path::PathBuf, SyscallError>;
    fn loopback_up(&self) -> Result<(), SyscallError>;
    fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), SyscallError>;
    fn chdir(&self, path: &Path) -> Result<(), SyscallError>;
    /// Creates an empty file at `path` (and its parents) unless something is there: a bind
    /// mount target for a file.
    fn touch(&self, path: &Path) -> Result<(), SyscallError>;
    /// `ln -sf target link`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError>;
    /// Makes `new_root` (a mount point) the root: `pivot_root(new_root, new_root)`, then the old
    /// root, stacked under it, is lazily unmounted, and the cwd is `/`.
    fn pivot_root(&self, new_root: &Path) -> Result<(), SyscallError>;
}

/// The real kernel.
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn write_file(&self, path: &Path, value: &str) -> Result<(), SyscallError> {
        std::fs::write(path, value).map_err(|e| err(format!("write {}", path.display()), e))
    }

    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError> {
        nix::sched::unshare(flags).map_err(|e| err(format!("unshare({flags:?})"), e))
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SyscallError> {
        nix::mount::mount(source, target, fstype, flags, data)
            .map_err(|e| err(format!("mount {} ({fstype:?})", target.display()), e))
    }

    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError> {
        std::fs::create_dir_all(path).map_err(|e| err(format!("mkdir {}", path.display()), e))
    }

    fn hold_dir(&self, path: &Path) -> Result<std::path::PathBuf, SyscallError> {
        use nix::fcntl::{open, OFlag};
        use std::os::fd::IntoRawFd;
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| err(format!("open {}", path.display()), e))?;
        // Deliberately leaked: the fd must outlive the bind mount that uses it (the init's life).
        Ok(std::path::PathBuf::from(format!(
            "/proc/self/fd/{}",
            fd.into_raw_fd()
        )))
    }

    fn loopback_up(&self) -> Result<(), SyscallError> {
        crate::containerizer::native::loopback::up().map_err(|e| err("bring up lo", e))
    }

    fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), SyscallError> {
        use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&gids).map_err(|e| err("setgroups", e))?;
        let g = Gid::from_raw(gid);
        setresgid(g, g, g).map_err(|e| err(format!("setgid {gid}"), e))?;
        let u = Uid::from_raw(uid);
        setresuid(u, u, u).map_err(|e| err(format!("setuid {uid}"), e))
    }

    fn chdir(&self, path: &Path) -> Result<(), SyscallError> {
        nix::unistd::chdir(path).map_err(|e| err(format!("chdir {}", path.display()), e))
    }

    fn touch(&self, path: &Path) -> Result<(), SyscallError> {
        if path.symlink_metadata().is_ok() {
            return Ok(());
        }
        if let Some(d) = path.parent() {
            self.mkdir_all(d)?;
        }
        std::fs::File::create(path)
            .map(drop)
            .map_err(|e| err(format!("create {}", path.display()), e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError> {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(target, link)
            .map_err(|e| err(format!("symlink {}", link.display()), e))
    }

    fn pivot_root(&self, new_root: &Path) -> Result<(), SyscallError> {
        let what = format!("pivot_root {}", new_root.display());
        nix::unistd::chdir(new_root).map_err(|e| err(what.clone(), e))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| err(what.clone(), e))?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| err(format!("{what}: unmount the old root"), e))?;
        nix::unistd::chdir("/").map_err(|e| err(what, e))
    }
}

/// Records calls instead of making them (unit tests).
#[derive(Default)]
pub struct RecordingSyscall {
    pub calls: Mutex<Vec<String>>,
}

impl RecordingSyscall {
    fn push(&self, s: String) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Syscall for RecordingSyscall {
    fn write_file(&self, path: &Path, value: &str) -> Result<(), SyscallError> {
        self.push(format!("write {} {value}", path.display()));
        Ok(())
    }
    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError> {
        self.push(format!("unshare {:?}", flags));
        Ok(())
    }
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SyscallError> {
        self.push(format!(
            "mount {} {} {} {:?} {}",
            source.map_or("-".into(), |s| s.display().to_string()),
            target.display(),
            fstype.unwrap_or("-"),
            flags,
            data.unwrap_or("-")
        ));
        Ok(())
    }
    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError> {
        self.push(format!("mkdir {}", path.display()));
        Ok(())
    }
    fn hold_dir(&self, path: &Path) -> Result<std::path::PathBuf, SyscallError> {
        self.push(format!("hold {}", path.display()));
        Ok(std::path::PathBuf::from("/proc/self/fd/9"))
    }
    fn loopback_up(&self) -> Result<(), SyscallError> {
        self.push("lo up".into());
        Ok(())
    }
    fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), SyscallError> {
        self.push(format!("ids {uid} {gid} {groups:?}"));
        Ok(())
    }
    fn chdir(&self, path: &Path) -> Result<(), SyscallError> {
        self.push(format!("chdir {}", path.display()));
        Ok(())
    }
    fn touch(&self, path: &Path) -> Result<(), SyscallError> {
        self.push(format!("touch {}", path.display()));
        Ok(())
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError> {
        self.push(format!("symlink {} {}", target.display(), link.display()));
        Ok(())
    }
    fn pivot_root(&self, new_root: &Path) -> Result<(), SyscallError> {
        self.push(format!("pivot_root {}", new_root.display()));
        Ok(())
    }
}
