//! One layer blob (a tar, gzip-compressed or not) unpacked into a directory that overlayfs takes
//! as a lower dir: a whiteout `.wh.NAME` becomes the 0/0 character device overlayfs reads as
//! "deleted", an opaque-dir marker `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr. Entries
//! are unpacked with the tar crate's `unpack_in`, which refuses paths leaving the directory.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the layer: {0}")]
    Io(#[from] std::io::Error),
    #[error("a layer entry has an unsafe path: {0}")]
    UnsafePath(String),
    #[error("{path}: {why}")]
    Whiteout { path: String, why: String },
}

/// A relative path with no `..`, `/` or prefix component.
fn safe_rel(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks `blob` into `dir` (which exists and is empty).
pub fn unpack_layer(blob: &Path, dir: &Path) -> Result<(), UnpackError> {
    let mut f = File::open(blob)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    f.rewind()?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel =
            safe_rel(&raw).ok_or_else(|| UnpackError::UnsafePath(raw.display().to_string()))?;
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == OPAQUE {
            let d = dir.join(&parent);
            std::fs::create_dir_all(&d)?;
            set_opaque(&d).map_err(|why| UnpackError::Whiteout {
                path: rel.display().to_string(),
                why,
            })?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            let d = dir.join(&parent);
            std::fs::create_dir_all(&d)?;
            mknod_whiteout(&d.join(hidden)).map_err(|why| UnpackError::Whiteout {
                path: rel.display().to_string(),
                why,
            })?;
            continue;
        }
        if !entry.unpack_in(dir)? {
            return Err(UnpackError::UnsafePath(raw.display().to_string()));
        }
    }
    Ok(())
}

fn mknod_whiteout(path: &Path) -> Result<(), String> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let _ = std::fs::remove_file(path);
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| format!("mknod whiteout: {e}"))
}

#[allow(unsafe_code)]
fn set_opaque(dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and live across the call; the value is 1 byte.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "setxattr opaque: {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, p, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn files_unpack_and_a_whiteout_becomes_a_char_device() {
        let t = tempfile::tempdir().expect("tmp");
        let blob = t.path().join("l.tar");
        std::fs::write(
            &blob,
            layer(&[("etc/marker", b"hi"), ("etc/.wh.gone", b"")]),
        )
        .expect("write");
        let out = t.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        match unpack_layer(&blob, &out) {
            Ok(()) => {
                assert_eq!(std::fs::read(out.join("etc/marker")).expect("read"), b"hi");
                use std::os::unix::fs::FileTypeExt;
                let m = std::fs::symlink_metadata(out.join("etc/gone")).expect("whiteout");
                assert!(m.file_type().is_char_device());
            }
            // Not root: mknod is refused; the plain file still unpacked.
            Err(UnpackError::Whiteout { .. }) => {
                assert!(!nix::unistd::geteuid().is_root())
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn paths_leaving_the_directory_are_refused() {
        assert!(safe_rel(Path::new("../x")).is_none());
        assert!(safe_rel(Path::new("/etc/x")).is_none());
        assert_eq!(safe_rel(Path::new("./a/b")), Some(PathBuf::from("a/b")));
    }
}
