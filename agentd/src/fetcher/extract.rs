//! Extracting tar, tar.gz, tar.bz2, tar.xz and zip archives into the sandbox (the agent does it as
//! root) without ever writing outside it: names with `..` or a leading `/` are refused, and so are
//! entries that would go through a link; links must point inside (checked per entry, then again
//! for the whole sandbox after each archive, since links chain across entries and archives); a
//! hard link must name a regular file already extracted; device nodes and FIFOs are never made;
//! setuid, setgid and sticky bits are dropped; a byte budget can bound what an archive expands to.

use super::sandbox::{self, PathError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Archive formats, by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    TarBz2,
    TarXz,
    Zip,
}

impl ArchiveKind {
    /// The kind of `name` by its extension; `None` for anything else (left as is).
    pub fn of(name: &str) -> Option<ArchiveKind> {
        let n = name.to_ascii_lowercase();
        let kinds = [
            (".tar.gz", ArchiveKind::TarGz),
            (".tgz", ArchiveKind::TarGz),
            (".tar.bz2", ArchiveKind::TarBz2),
            (".tbz2", ArchiveKind::TarBz2),
            (".tar.xz", ArchiveKind::TarXz),
            (".txz", ArchiveKind::TarXz),
            (".tar", ArchiveKind::Tar),
            (".zip", ArchiveKind::Zip),
        ];
        kinds
            .iter()
            .find(|(ext, _)| n.ends_with(ext))
            .map(|(_, k)| *k)
    }
}

/// What one archive may expand to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file content, all entries together.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// No bound.
    fn default() -> Self {
        Self {
            max_bytes: u64::MAX,
        }
    }
}

/// What an archive always leaves free on the sandbox's file system: 1 % of it, at most 1 GiB. A
/// compression bomb fails its task instead of filling the agent's disk.
pub fn disk_reserve(size: u64) -> u64 {
    (size / 100).min(1 << 30)
}

impl Limits {
    /// What may be written below `dir` now: its file system's free space less [`disk_reserve`]
    /// (no bound when the file system cannot be read).
    pub fn for_disk_of(dir: &Path) -> Self {
        let max_bytes = match nix::sys::statvfs::statvfs(dir) {
            Ok(s) => {
                let unit = s.fragment_size().max(1);
                let size = s.blocks() * unit;
                (s.blocks_available() * unit).saturating_sub(disk_reserve(size))
            }
            Err(_) => u64::MAX,
        };
        Self { max_bytes }
    }
}

/// Why an archive was not (completely) extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    #[error("not a {kind} archive: {why}")]
    Format { kind: &'static str, why: String },
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    #[error("entry '{0}' escapes the sandbox (absolute path or '..'); refused")]
    Escapes(PathBuf),
    #[error("link '{link}' -> '{target}' points outside the sandbox; refused")]
    LinkOutside { link: PathBuf, target: PathBuf },
    #[error("hard link '{link}' -> '{target}': {why}; refused")]
    HardLink {
        link: PathBuf,
        target: PathBuf,
        why: String,
    },
    #[error("entry {0}; refused")]
    Place(#[source] PathError),
    #[error("entry '{entry}' is truncated ({got} of {want} bytes)")]
    Truncated { entry: PathBuf, got: u64, want: u64 },
    #[error("the archive expands to more than {0} bytes; refused")]
    TooLarge(u64),
    #[error("cannot extract '{entry}': {source}")]
    Io {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Lexically: does `p` stay inside its root? (relative, no `..` above the start)
fn stays_inside(p: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Checks an entry's path and, for symlinks, its target (relative to the entry's directory).
/// Lexical only: [`extract`] also resolves every link of the sandbox once the archive is out.
pub fn check_entry(path: &Path, link: Option<&Path>) -> Result<(), ExtractError> {
    if !stays_inside(path) || path.components().any(|c| c == Component::ParentDir) {
        return Err(ExtractError::Escapes(path.to_owned()));
    }
    if let Some(target) = link {
        let resolved: PathBuf = path.parent().unwrap_or(Path::new("")).join(target);
        if target.is_absolute() || !stays_inside(&resolved) {
            return Err(ExtractError::LinkOutside {
                link: path.to_owned(),
                target: target.to_owned(),
            });
        }
    }
    Ok(())
}

/// Extracts `archive` into `dest`, within `limits`. Whatever happens, no link that leads out of
/// `dest` is left there afterwards (one that does is removed and reported).
pub fn extract(
    kind: ArchiveKind,
    archive: &Path,
    dest: &Path,
    limits: Limits,
) -> Result<(), ExtractError> {
    let f = File::open(archive).map_err(ExtractError::Open)?;
    let mut out = Output::new(dest, limits);
    let result = match kind {
        ArchiveKind::Tar => untar(f, &mut out),
        ArchiveKind::TarGz => untar(flate2::read::GzDecoder::new(f), &mut out),
        ArchiveKind::TarBz2 => untar(bzip2::read::BzDecoder::new(f), &mut out),
        ArchiveKind::TarXz => untar(xz2::read::XzDecoder::new(f), &mut out),
        ArchiveKind::Zip => unzip(f, &mut out),
    };
    let result = result.and_then(|()| out.finish_dirs());
    let swept = sweep_links(dest);
    result.and(swept)
}

/// Removes the first link of `dest` that resolves outside it, and reports it.
fn sweep_links(dest: &Path) -> Result<(), ExtractError> {
    let found = sandbox::escaping_link(dest).map_err(|source| ExtractError::Io {
        entry: PathBuf::from("."),
        source,
    })?;
    match found {
        None => Ok(()),
        Some((link, target)) => {
            let _ = std::fs::remove_file(dest.join(&link));
            // Others may remain: they are reported by the next sweep; the fetch fails anyway.
            while let Ok(Some((more, _))) = sandbox::escaping_link(dest) {
                if std::fs::remove_file(dest.join(&more)).is_err() {
                    break;
                }
            }
            Err(ExtractError::LinkOutside { link, target })
        }
    }
}

/// Where entries go: the sandbox, the byte budget left, and directory modes set at the end (so
/// that a read-only directory does not stop its own entries).
struct Output<'a> {
    dest: &'a Path,
    max: u64,
    left: u64,
    dirs: Vec<(PathBuf, u32)>,
}

impl<'a> Output<'a> {
    fn new(dest: &'a Path, limits: Limits) -> Self {
        Self {
            dest,
            max: limits.max_bytes,
            left: limits.max_bytes,
            dirs: Vec::new(),
        }
    }

    fn dir(&mut self, path: &Path, mode: u32) -> Result<(), ExtractError> {
        check_entry(path, None)?;
        if sandbox::components(path)
            .map_err(ExtractError::Place)?
            .is_empty()
        {
            return Ok(()); // `./`: the sandbox itself keeps its mode
        }
        let full = sandbox::create_dir(self.dest, path).map_err(ExtractError::Place)?;
        self.dirs.push((full, mode & 0o777));
        Ok(())
    }

    /// A regular file with `data` (at most `want` bytes are expected, when known).
    fn file(
        &mut self,
        path: &Path,
        mode: u32,
        data: &mut dyn Read,
        want: Option<u64>,
    ) -> Result<(), ExtractError> {
        check_entry(path, None)?;
        let (mut f, _) =
            sandbox::create_file(self.dest, path, 0o600).map_err(ExtractError::Place)?;
        let io_err = |source| ExtractError::Io {
            entry: path.to_owned(),
            source,
        };
        let got = io::copy(&mut data.take(self.left.saturating_add(1)), &mut f).map_err(io_err)?;
        if got > self.left {
            return Err(ExtractError::TooLarge(self.max));
        }
        self.left -= got;
        if let Some(want) = want.filter(|w| got < *w) {
            return Err(ExtractError::Truncated {
                entry: path.to_owned(),
                got,
                want,
            });
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(io_err)
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), ExtractError> {
        check_entry(path, Some(target))?;
        sandbox::symlink(self.dest, path, target).map_err(ExtractError::Place)?;
        Ok(())
    }

    /// A hard link; `target` is relative to the archive's root and must be a regular file
    /// extracted before, reached through real directories.
    fn hard_link(&mut self, path: &Path, target: &Path) -> Result<(), ExtractError> {
        check_entry(path, None)?;
        let refused = |why: String| ExtractError::HardLink {
            link: path.to_owned(),
            target: target.to_owned(),
            why,
        };
        check_entry(target, None).map_err(|e| refused(e.to_string()))?;
        let src = sandbox::existing_file(self.dest, target).map_err(|e| refused(e.to_string()))?;
        let (dst, is_dir) = sandbox::place(self.dest, path).map_err(ExtractError::Place)?;
        if is_dir {
            return Err(ExtractError::Place(PathError::IsADirectory(
                path.to_owned(),
            )));
        }
        std::fs::hard_link(&src, &dst).map_err(|source| ExtractError::Io {
            entry: path.to_owned(),
            source,
        })
    }

    /// Sets the directories' modes, deepest first, opening each without following a link.
    fn finish_dirs(&mut self) -> Result<(), ExtractError> {
        for (dir, mode) in self.dirs.drain(..).rev() {
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(&dir)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(mode)));
            f.map_err(|source| ExtractError::Io {
                entry: dir.strip_prefix(self.dest).unwrap_or(&dir).to_owned(),
                source,
            })?;
        }
        Ok(())
    }
}

fn untar(r: impl Read, out: &mut Output<'_>) -> Result<(), ExtractError> {
    use tar::EntryType;
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| ExtractError::Format {
        kind: "tar",
        why: e.to_string(),
    })?;
    for entry in entries {
        let mut e = entry.map_err(|e| ExtractError::Corrupt(e.to_string()))?;
        let path = e
            .path()
            .map_err(|e| ExtractError::Corrupt(format!("bad entry name: {e}")))?
            .into_owned();
        let kind = e.header().entry_type();
        let mode = e.header().mode().unwrap_or(0o644);
        let link = || -> Result<PathBuf, ExtractError> {
            match e.link_name() {
                Ok(Some(l)) if !l.as_os_str().is_empty() => Ok(l.into_owned()),
                Ok(_) => Err(ExtractError::Corrupt(format!(
                    "link '{}' has no target",
                    path.display()
                ))),
                Err(err) => Err(ExtractError::Corrupt(format!("bad link name: {err}"))),
            }
        };
        match kind {
            EntryType::Directory => out.dir(&path, mode)?,
            EntryType::Symlink => {
                let target = link()?;
                out.symlink(&path, &target)?;
            }
            EntryType::Link => {
                let target = link()?;
                out.hard_link(&path, &target)?;
            }
            // Never made: a device node owned by the task's user would be a hole in the host.
            EntryType::Char | EntryType::Block | EntryType::Fifo => check_entry(&path, None)?,
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            // Regular files, and as POSIX says, any unknown type. A sparse entry's stored size
            // is not its length, so only plain entries are checked for truncation.
            _ => {
                let want = (kind != EntryType::GNUSparse).then(|| e.size());
                out.file(&path, mode, &mut e, want)?;
            }
        }
    }
    Ok(())
}

/// The longest link target a zip entry may hold (Linux's `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;

fn unzip(f: File, out: &mut Output<'_>) -> Result<(), ExtractError> {
    let mut z = zip::ZipArchive::new(f).map_err(|e| ExtractError::Format {
        kind: "zip",
        why: e.to_string(),
    })?;
    for i in 0..z.len() {
        let mut file = z
            .by_index(i)
            .map_err(|e| ExtractError::Corrupt(e.to_string()))?;
        let name = PathBuf::from(file.name());
        if file.is_symlink() {
            let mut target = Vec::new();
            (&mut file)
                .take(MAX_LINK_TARGET + 1)
                .read_to_end(&mut target)
                .map_err(|source| ExtractError::Io {
                    entry: name.clone(),
                    source,
                })?;
            if target.len() as u64 > MAX_LINK_TARGET || target.is_empty() {
                return Err(ExtractError::Corrupt(format!(
                    "link '{}' has an empty or over-long target",
                    name.display()
                )));
            }
            let target = PathBuf::from(std::ffi::OsString::from_vec(target));
            out.symlink(&name, &target)?;
        } else if file.is_dir() {
            out.dir(&name, file.unix_mode().unwrap_or(0o755))?;
        } else {
            let mode = file.unix_mode().unwrap_or(0o644);
            let want = file.size();
            out.file(&name, mode, &mut file, Some(want))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(ArchiveKind::of("a.tar.gz"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::of("a.TGZ"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::of("a.tar.xz"), Some(ArchiveKind::TarXz));
        assert_eq!(ArchiveKind::of("a.zip"), Some(ArchiveKind::Zip));
        assert_eq!(ArchiveKind::of("a.bin"), None);
    }

    #[test]
    fn escapes_are_refused() {
        assert!(check_entry(Path::new("a/b"), None).is_ok());
        assert!(check_entry(Path::new("../x"), None).is_err());
        assert!(check_entry(Path::new("a/../../x"), None).is_err());
        assert!(check_entry(Path::new("/etc/passwd"), None).is_err());
        assert!(check_entry(Path::new("a/l"), Some(Path::new("../b"))).is_ok());
        assert!(check_entry(Path::new("a/l"), Some(Path::new("../../b"))).is_err());
        assert!(check_entry(Path::new("l"), Some(Path::new("/etc"))).is_err());
    }

    /// A tar of raw headers, so that `..`, absolute names and any link can be written.
    fn tar_with(entries: &[(&str, tar::EntryType, &str, &[u8], u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data, mode) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_entry_type(*kind);
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn run(
        entries: &[(&str, tar::EntryType, &str, &[u8], u32)],
    ) -> (tempfile::TempDir, PathBuf, Result<(), ExtractError>) {
        let t = tempfile::tempdir().expect("tempdir");
        // A file beside the root that no entry may reach.
        std::fs::write(t.path().join("secret"), "s").expect("write");
        let archive = t.path().join("a.tar");
        std::fs::write(&archive, tar_with(entries)).expect("write");
        let out = t.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        let r = extract(ArchiveKind::Tar, &archive, &out, Limits::default());
        (t, out, r)
    }

    use tar::EntryType::{Block, Directory, Link, Regular, Symlink};

    #[test]
    fn tar_extracts_and_refuses_traversal() {
        let (_t, out, r) = run(&[
            ("bin/", Directory, "", b"", 0o755),
            ("bin/run.sh", Regular, "", b"#!/bin/sh\n", 0o4755),
            ("bin/same", Link, "bin/run.sh", b"", 0o644),
            ("bin/sh", Symlink, "run.sh", b"", 0o777),
        ]);
        r.expect("extract");
        let m = std::fs::metadata(out.join("bin/run.sh")).expect("run.sh");
        assert_eq!(m.permissions().mode() & 0o7777, 0o755, "no setuid bit");
        assert_eq!(
            std::fs::read(out.join("bin/same")).expect("link"),
            b"#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::read(out.join("bin/sh")).expect("symlink"),
            b"#!/bin/sh\n"
        );
        let (t, _, r) = run(&[("../evil", Regular, "", b"x", 0o644)]);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("escapes the sandbox"), "{e}");
        assert!(!t.path().join("evil").exists());
    }

    #[test]
    fn chained_links_cannot_lead_a_write_or_a_hard_link_out() {
        // `a/l` is the root; `a/l/b` (really `b`) would be the root's parent.
        let (t, _, r) = run(&[
            ("a/", Directory, "", b"", 0o755),
            ("a/l", Symlink, "..", b"", 0o777),
            ("a/l/b", Symlink, "..", b"", 0o777),
        ]);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("goes through the link 'a/l'"), "{e}");
        assert!(!t.path().join("b").exists());
        // `up` looks inside (`a/l/..` is `.` on paper) but is the root's parent.
        let (t, out, r) = run(&[
            ("a/", Directory, "", b"", 0o755),
            ("a/l", Symlink, "..", b"", 0o777),
            ("up", Symlink, "a/l/..", b"", 0o777),
        ]);
        let e = r.unwrap_err();
        assert!(
            e.to_string()
                .contains("link 'up' -> 'a/l/..' points outside"),
            "{e}"
        );
        assert!(
            std::fs::symlink_metadata(out.join("up")).is_err(),
            "removed"
        );
        // Before the sweep, a hard link through `up` would reach the file beside the root.
        drop(t);
        let (_t, out, r) = run(&[
            ("a/", Directory, "", b"", 0o755),
            ("a/l", Symlink, "..", b"", 0o777),
            ("up", Symlink, "a/l/..", b"", 0o777),
            ("h", Link, "up/secret", b"", 0o644),
        ]);
        let e = r.unwrap_err();
        assert!(
            e.to_string().contains("hard link 'h' -> 'up/secret'"),
            "{e}"
        );
        assert!(std::fs::symlink_metadata(out.join("h")).is_err());
    }

    #[test]
    fn devices_are_never_made_and_budgets_hold() {
        let (_t, out, r) = run(&[("disk", Block, "", b"", 0o666)]);
        r.expect("skipped, not an error");
        assert!(std::fs::symlink_metadata(out.join("disk")).is_err());
        let t = tempfile::tempdir().expect("tempdir");
        let archive = t.path().join("a.tar");
        std::fs::write(
            &archive,
            tar_with(&[("big", Regular, "", &[7u8; 2000], 0o644)]),
        )
        .expect("write");
        let e = extract(
            ArchiveKind::Tar,
            &archive,
            t.path(),
            Limits { max_bytes: 1000 },
        )
        .unwrap_err();
        assert!(matches!(e, ExtractError::TooLarge(1000)), "{e}");
    }

    #[test]
    fn the_disk_bound_keeps_the_headroom_free() {
        assert_eq!(disk_reserve(1000), 10);
        assert_eq!(disk_reserve(1 << 50), 1 << 30, "at most 1 GiB");
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(Limits::for_disk_of(dir.path()).max_bytes < u64::MAX);
        assert_eq!(
            Limits::for_disk_of(Path::new("/no/such/dir")).max_bytes,
            u64::MAX
        );
    }
}
