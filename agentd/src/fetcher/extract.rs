//! Extracting tar, tar.gz, tar.bz2, tar.xz and zip archives into the sandbox. Every entry is
//! checked first: absolute paths, `..` components, and symlinks or hard links that point outside
//! the sandbox are refused, and the whole fetch fails saying which entry.

use std::fs::File;
use std::io::Read;
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

/// Checks an entry's path and, for links, its target (relative to the entry's directory).
pub fn check_entry(path: &Path, link: Option<&Path>) -> Result<(), String> {
    if !stays_inside(path) || path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "entry '{}' escapes the sandbox (absolute path or '..'); refused",
            path.display()
        ));
    }
    if let Some(target) = link {
        let resolved: PathBuf = path.parent().unwrap_or(Path::new("")).join(target);
        if target.is_absolute() || !stays_inside(&resolved) {
            return Err(format!(
                "link '{}' -> '{}' points outside the sandbox; refused",
                path.display(),
                target.display()
            ));
        }
    }
    Ok(())
}

/// Extracts `archive` into `dest`.
pub fn extract(kind: ArchiveKind, archive: &Path, dest: &Path) -> Result<(), String> {
    let f = File::open(archive).map_err(|e| format!("cannot open: {e}"))?;
    match kind {
        ArchiveKind::Tar => untar(f, dest),
        ArchiveKind::TarGz => untar(flate2::read::GzDecoder::new(f), dest),
        ArchiveKind::TarBz2 => untar(bzip2::read::BzDecoder::new(f), dest),
        ArchiveKind::TarXz => untar(xz2::read::XzDecoder::new(f), dest),
        ArchiveKind::Zip => unzip(f, dest),
    }
}

fn untar(r: impl Read, dest: &Path) -> Result<(), String> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut e = entry.map_err(|e| format!("corrupt archive: {e}"))?;
        let path = e
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let link = e
            .link_name()
            .map_err(|e| format!("bad link name: {e}"))?
            .map(|l| l.into_owned());
        let is_link = matches!(
            e.header().entry_type(),
            tar::EntryType::Symlink | tar::EntryType::Link
        );
        let hard = e.header().entry_type() == tar::EntryType::Link;
        match (is_link, link) {
            // A hard link's target is relative to the archive root, not to the entry.
            (true, Some(l)) if hard => {
                check_entry(&path, None).and_then(|_| check_entry(&l, None))?
            }
            (true, Some(l)) => check_entry(&path, Some(&l))?,
            _ => check_entry(&path, None)?,
        }
        let unpacked = e
            .unpack_in(dest)
            .map_err(|err| format!("cannot extract '{}': {err}", path.display()))?;
        if !unpacked {
            return Err(format!(
                "entry '{}' escapes the sandbox; refused",
                path.display()
            ));
        }
    }
    Ok(())
}

fn unzip(f: File, dest: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("not a zip archive: {e}"))?;
    for i in 0..z.len() {
        let mut file = z.by_index(i).map_err(|e| format!("corrupt archive: {e}"))?;
        let name = PathBuf::from(file.name());
        let out = dest.join(&name);
        if file.is_symlink() {
            let mut target = String::new();
            file.read_to_string(&mut target)
                .map_err(|e| format!("bad link '{}': {e}", name.display()))?;
            check_entry(&name, Some(Path::new(&target)))?;
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
            }
            std::os::unix::fs::symlink(&target, &out)
                .map_err(|e| format!("cannot link '{}': {e}", name.display()))?;
            continue;
        }
        check_entry(&name, None)?;
        if file.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        let mut w =
            File::create(&out).map_err(|e| format!("cannot create '{}': {e}", name.display()))?;
        std::io::copy(&mut file, &mut w)
            .map_err(|e| format!("cannot extract '{}': {e}", name.display()))?;
        if let Some(mode) = file.unix_mode() {
            let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o7777));
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

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            // Raw names, so that `..` can be written (the builder refuses it).
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn tar_extracts_and_refuses_traversal() {
        let t = tempfile::tempdir().expect("tempdir");
        let good = t.path().join("good.tar");
        std::fs::write(&good, tar_with(&[("bin/run.sh", b"#!/bin/sh\n")])).expect("write");
        let out = t.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        extract(ArchiveKind::Tar, &good, &out).expect("extract");
        assert!(out.join("bin/run.sh").is_file());
        let bad = t.path().join("bad.tar");
        std::fs::write(&bad, tar_with(&[("../evil", b"x")])).expect("write");
        let e = extract(ArchiveKind::Tar, &bad, &out).unwrap_err();
        assert!(e.contains("escapes the sandbox"), "{e}");
        assert!(!t.path().join("evil").exists());
    }
}
