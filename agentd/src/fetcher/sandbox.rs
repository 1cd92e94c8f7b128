//! Writing inside a sandbox without ever following a link: every directory on the way must be a
//! real directory (made when missing), and whatever sits at the last component is replaced, never
//! written through. Also the sweep run after each extraction: every symlink in the sandbox,
//! resolved as the kernel would (through the sandbox's own links), must stay inside it. Only the
//! agent writes in a sandbox before its task starts, so nothing can change a path between the
//! check and the write.

use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a path cannot be made inside the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("'{0}' escapes the sandbox (absolute path or '..')")]
    Escapes(PathBuf),
    #[error("'{path}' goes through the link '{link}'")]
    ThroughLink { path: PathBuf, link: PathBuf },
    #[error("'{path}' goes through '{blocker}', which is not a directory")]
    NotADirectory { path: PathBuf, blocker: PathBuf },
    #[error("'{0}' is a directory")]
    IsADirectory(PathBuf),
    #[error("'{0}' is not a regular file of the sandbox")]
    NotAFile(PathBuf),
    #[error("'{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The normal components of `rel` (`.` left out); an absolute path or `..` is refused.
pub fn components(rel: &Path) -> Result<Vec<&OsStr>, PathError> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(PathError::Escapes(rel.to_owned())),
        })
        .collect()
}

/// Where `rel` goes under `root`: the directories above it made (real ones: a link or a file on
/// the way is refused), and a file or link already at its place removed (a link is removed, not
/// followed). Returns the path and whether a directory is already there (then it is kept). An
/// empty `rel` (`.`) is `root` itself.
pub fn place(root: &Path, rel: &Path) -> Result<(PathBuf, bool), PathError> {
    let parts = components(rel)?;
    let mut here = root.to_path_buf();
    let Some((last, dirs)) = parts.split_last() else {
        return Ok((here, true));
    };
    let mut walked = PathBuf::new();
    for d in dirs {
        here.push(d);
        walked.push(d);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(PathError::ThroughLink {
                    path: rel.to_owned(),
                    link: walked,
                })
            }
            Ok(_) => {
                return Err(PathError::NotADirectory {
                    path: rel.to_owned(),
                    blocker: walked,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .mode(0o755)
                .create(&here)
                .map_err(|source| PathError::Io {
                    path: walked.clone(),
                    source,
                })?,
            Err(source) => {
                return Err(PathError::Io {
                    path: walked,
                    source,
                })
            }
        }
    }
    here.push(last);
    match std::fs::symlink_metadata(&here) {
        Ok(m) if m.is_dir() => Ok((here, true)),
        Ok(_) => {
            std::fs::remove_file(&here).map_err(|source| PathError::Io {
                path: rel.to_owned(),
                source,
            })?;
            Ok((here, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((here, false)),
        Err(source) => Err(PathError::Io {
            path: rel.to_owned(),
            source,
        }),
    }
}

/// A new regular file at `rel` (replacing a file or link there), opened for writing with
/// `O_NOFOLLOW` and `O_EXCL`, created with `mode` (less the umask).
pub fn create_file(root: &Path, rel: &Path, mode: u32) -> Result<(File, PathBuf), PathError> {
    let (path, is_dir) = place(root, rel)?;
    if is_dir {
        return Err(PathError::IsADirectory(rel.to_owned()));
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| PathError::Io {
            path: rel.to_owned(),
            source,
        })?;
    Ok((file, path))
}

/// A directory at `rel` (an existing one is kept; a file or link there is replaced).
pub fn create_dir(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let (path, is_dir) = place(root, rel)?;
    if !is_dir {
        DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|source| PathError::Io {
                path: rel.to_owned(),
                source,
            })?;
    }
    Ok(path)
}

/// A symlink at `rel` pointing to `target` (not checked here: see [`escaping_link`]).
pub fn symlink(root: &Path, rel: &Path, target: &Path) -> Result<PathBuf, PathError> {
    let (path, is_dir) = place(root, rel)?;
    if is_dir {
        return Err(PathError::IsADirectory(rel.to_owned()));
    }
    std::os::unix::fs::symlink(target, &path).map_err(|source| PathError::Io {
        path: rel.to_owned(),
        source,
    })?;
    Ok(path)
}

/// The path of the regular file `rel` under `root`, reached through real directories only (for
/// the source of a hard link: it is then certainly inside the sandbox).
pub fn existing_file(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let parts = components(rel)?;
    let mut here = root.to_path_buf();
    let mut walked = PathBuf::new();
    for (i, p) in parts.iter().enumerate() {
        here.push(p);
        walked.push(p);
        let m = std::fs::symlink_metadata(&here).map_err(|source| PathError::Io {
            path: walked.clone(),
            source,
        })?;
        let last = i + 1 == parts.len();
        if m.file_type().is_symlink() {
            return Err(PathError::ThroughLink {
                path: rel.to_owned(),
                link: walked,
            });
        }
        if last && !m.is_file() || !last && !m.is_dir() {
            return Err(PathError::NotAFile(rel.to_owned()));
        }
    }
    if parts.is_empty() {
        return Err(PathError::NotAFile(rel.to_owned()));
    }
    Ok(here)
}

/// The kernel's limit on links followed in one lookup.
const MAX_LINK_HOPS: u32 = 40;

/// The first symlink under `root` (as a path relative to it, with its target) that, resolved as
/// the kernel would through the other links in `root`, leaves `root` or loops; `None` when every
/// link stays inside. Links are not followed while walking the tree.
pub fn escaping_link(root: &Path) -> io::Result<Option<(PathBuf, PathBuf)>> {
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let child = rel.join(entry.file_name());
            if kind.is_dir() {
                dirs.push(child);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(root.join(&child))?;
                let mut at: Vec<OsString> = rel.iter().map(OsStr::to_owned).collect();
                let mut hops = 1;
                if resolve(root, &mut at, &target, &mut hops).is_none() {
                    return Ok(Some((child, target)));
                }
            }
        }
    }
    Ok(None)
}

/// Resolves `target` from the directory `at` (components under `root`, updated to the result),
/// following the links it meets; `None` when the resolution goes above `root`, is absolute, or
/// loops. A component that does not exist (or is a file) is taken as it is written.
fn resolve(root: &Path, at: &mut Vec<OsString>, target: &Path, hops: &mut u32) -> Option<()> {
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return None,
            Component::CurDir => {}
            Component::ParentDir => {
                at.pop()?;
            }
            Component::Normal(n) => {
                at.push(n.to_owned());
                let here: PathBuf = std::iter::once(root.as_os_str())
                    .chain(at.iter().map(OsString::as_os_str))
                    .collect();
                let is_link = std::fs::symlink_metadata(&here)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    *hops += 1;
                    if *hops > MAX_LINK_HOPS {
                        return None;
                    }
                    let next = std::fs::read_link(&here).ok()?;
                    at.pop();
                    resolve(root, at, &next, hops)?;
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink as ln;

    #[test]
    fn places_through_real_directories_only() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        let (_, p) = create_file(&root, Path::new("./a/b/c"), 0o644).expect("nested file");
        assert_eq!(p, root.join("a/b/c"));
        ln(t.path(), root.join("out")).expect("ln");
        let e = create_file(&root, Path::new("out/x"), 0o644).unwrap_err();
        assert!(matches!(e, PathError::ThroughLink { .. }), "{e}");
        assert!(!t.path().join("x").exists());
        // A link at the last component is replaced, not written through.
        ln(t.path().join("victim"), root.join("v")).expect("ln");
        create_file(&root, Path::new("v"), 0o644).expect("replaces the link");
        assert!(!t.path().join("victim").exists());
        assert!(root.join("v").symlink_metadata().expect("v").is_file());
        assert!(matches!(
            create_file(&root, Path::new("a/b/c/d"), 0o644).unwrap_err(),
            PathError::NotADirectory { .. }
        ));
        assert!(matches!(
            create_file(&root, Path::new("../x"), 0o644).unwrap_err(),
            PathError::Escapes(_)
        ));
        assert!(matches!(
            create_file(&root, Path::new("a"), 0o644).unwrap_err(),
            PathError::IsADirectory(_)
        ));
        assert!(existing_file(&root, Path::new("a/b/c")).is_ok());
        assert!(existing_file(&root, Path::new("out/x")).is_err());
        assert!(existing_file(&root, Path::new("a/b")).is_err());
    }

    #[test]
    fn links_are_resolved_through_each_other() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        ln("b", root.join("a/l")).expect("ln");
        ln("../a/l/../b", root.join("a/inside")).expect("ln");
        assert_eq!(escaping_link(&root).expect("walk"), None);
        // `up` is `a` itself, so `up/..` is the root and `up/../..` is above it.
        ln("..", root.join("a/b/up")).expect("ln");
        assert_eq!(escaping_link(&root).expect("walk"), None);
        ln("a/b/up/../..", root.join("sneaky")).expect("ln");
        let (link, target) = escaping_link(&root).expect("walk").expect("an escape");
        assert_eq!(link, PathBuf::from("sneaky"));
        assert_eq!(target, PathBuf::from("a/b/up/../.."));
        std::fs::remove_file(root.join("sneaky")).expect("rm");
        ln("loop2", root.join("loop1")).expect("ln");
        ln("loop1", root.join("loop2")).expect("ln");
        assert!(escaping_link(&root).expect("walk").is_some(), "loops count");
        std::fs::remove_file(root.join("loop1")).expect("rm");
        std::fs::remove_file(root.join("loop2")).expect("rm");
        ln("/etc", root.join("abs")).expect("ln");
        assert!(escaping_link(&root).expect("walk").is_some());
    }
}
