//! Property tests ("fuzzing that keeps running", on stable Rust) of the fetcher's archive
//! extraction: generated hostile tar, tar.gz and zip archives (names with `..` or a leading `/`,
//! symlinks and hard links pointing out, alone or chained, device nodes, setuid modes, huge
//! declared sizes), the same with random byte edits and truncations, and random bytes of every
//! kind. Whatever the input, `extract` must not panic, must return Ok or an error, must leave every
//! byte outside the destination as it was (the whole temp tree is compared), and must leave
//! inside it only files, directories and links that resolve inside. Well-formed archives
//! extract exactly.

use gantry_agentd::fetcher::extract::{extract, ArchiveKind, Limits};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A generous budget for hostile inputs: nothing here is meant to be large.
const BUDGET: Limits = Limits { max_bytes: 1 << 20 };

/// Where one case runs: `root/box/dest` is the destination, with files at both levels above it
/// that no entry may reach.
struct Rig {
    root: tempfile::TempDir,
    dest: PathBuf,
}

impl Rig {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let boxed = root.path().join("box");
        let dest = boxed.join("dest");
        std::fs::create_dir_all(&dest).expect("mkdir");
        for dir in [root.path(), &boxed] {
            std::fs::write(dir.join("secret"), "secret").expect("write");
            std::fs::create_dir_all(dir.join("outside")).expect("mkdir");
            std::fs::write(dir.join("outside/secret"), "secret").expect("write");
        }
        Rig { root, dest }
    }

    /// Placeholder in generated names for the absolute path of a file outside.
    fn absolute_secret(&self) -> String {
        self.root.path().join("box/secret").display().to_string()
    }

    /// Writes `bytes` as the archive, extracts it, and checks every invariant.
    fn run(&self, kind: ArchiveKind, bytes: &[u8], limits: Limits) -> Result<(), TestCaseError> {
        let archive = self.root.path().join("archive");
        std::fs::write(&archive, bytes).expect("write archive");
        let before = snapshot(self.root.path(), &self.dest);
        let result = extract(kind, &archive, &self.dest, limits);
        if let Err(e) = &result {
            prop_assert!(!e.to_string().is_empty());
        }
        let after = snapshot(self.root.path(), &self.dest);
        prop_assert_eq!(before, after, "something outside the destination changed");
        check_inside(&self.dest)
    }
}

/// Every path under `root` except `skip` and what is under it: type, size, mode, inode links, content
/// or link target. Links are not followed.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p == skip {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).expect("lstat");
        let what = if m.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&p).expect("readlink"))
        } else if m.is_file() {
            format!("file {:?}", std::fs::read(&p).expect("read"))
        } else if m.is_dir() {
            for e in std::fs::read_dir(&p).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
            "dir".to_string()
        } else {
            "other".to_string()
        };
        let line = format!(
            "{what} mode {:o} nlink {} ino {}",
            m.mode(),
            m.nlink(),
            m.ino()
        );
        out.insert(p, line);
    }
    out
}

/// Inside the destination: files, directories and links only; no setuid, setgid or sticky bit;
/// every link resolving (as far as it exists) inside. Checked with the standard library's
/// `canonicalize`, independently of the extractor's own link resolution.
fn check_inside(dest: &Path) -> Result<(), TestCaseError> {
    let canon = std::fs::canonicalize(dest).expect("canonical dest");
    let mut stack = vec![dest.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).expect("lstat");
        let t = m.file_type();
        prop_assert!(
            t.is_file() || t.is_dir() || t.is_symlink(),
            "{} is special",
            p.display()
        );
        prop_assert_eq!(
            m.mode() & 0o7000,
            0,
            "{} has mode {:o}",
            p.display(),
            m.mode()
        );
        if t.is_dir() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755));
            for e in std::fs::read_dir(&p).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
        } else if t.is_symlink() {
            let target = std::fs::read_link(&p).expect("readlink");
            let end = follow(p.parent().expect("parent"), &target, 0);
            prop_assert!(
                end.as_ref().is_some_and(|e| e.starts_with(&canon)),
                "{} -> {} leads to {:?}",
                p.display(),
                target.display(),
                end
            );
        }
    }
    Ok(())
}

/// Where `target`, seen from `dir`, leads: existing prefixes canonicalized by the kernel, the
/// rest taken as written. `None` for a loop.
fn follow(dir: &Path, target: &Path, depth: u32) -> Option<PathBuf> {
    if depth > 40 {
        return None;
    }
    let mut at = std::fs::canonicalize(dir).ok()?;
    for c in target.components() {
        match c {
            std::path::Component::ParentDir => {
                at.pop();
            }
            std::path::Component::Normal(n) => {
                at.push(n);
                if std::fs::symlink_metadata(&at).is_ok() {
                    match std::fs::canonicalize(&at) {
                        Ok(real) => at = real,
                        // A dangling link: where it points, as written.
                        Err(_) => {
                            let next = std::fs::read_link(&at).ok()?;
                            let parent = at.parent()?.to_path_buf();
                            at = follow(&parent, &next, depth + 1)?;
                        }
                    }
                }
            }
            std::path::Component::RootDir => at = PathBuf::from("/"),
            _ => {}
        }
    }
    Some(at)
}

/// One generated entry.
#[derive(Clone, Debug)]
enum Entry {
    File {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        name: String,
        mode: u32,
    },
    Symlink {
        name: String,
        target: String,
    },
    HardLink {
        name: String,
        target: String,
    },
    Device {
        name: String,
        block: bool,
    },
    /// A header declaring far more data than follows.
    Huge {
        name: String,
    },
}

/// Names built from parts that matter: `..`, `.`, links named `l`, the names of the files
/// outside, an absolute path now and then.
fn name() -> impl Strategy<Value = String> {
    const PARTS: [&str; 9] = ["a", "b", "l", "x", "..", ".", "secret", "outside", "dest"];
    (
        vec(0..PARTS.len(), 1..5),
        prop_oneof![8 => Just(""), 1 => Just("/"), 1 => Just("@ABS@")],
        any::<bool>(),
    )
        .prop_map(|(parts, lead, slash)| {
            let mut s = lead.to_string();
            if s == "@ABS@" {
                return s;
            }
            s.push_str(
                &parts
                    .iter()
                    .map(|&i| PARTS[i])
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            if slash {
                s.push('/');
            }
            s
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => (name(), vec(any::<u8>(), 0..64), any::<u32>())
            .prop_map(|(name, data, mode)| Entry::File { name, data, mode: mode & 0o7777 }),
        2 => (name(), any::<u32>()).prop_map(|(name, mode)| Entry::Dir { name, mode: mode & 0o7777 }),
        3 => (name(), name()).prop_map(|(name, target)| Entry::Symlink { name, target }),
        2 => (name(), name()).prop_map(|(name, target)| Entry::HardLink { name, target }),
        1 => (name(), any::<bool>()).prop_map(|(name, block)| Entry::Device { name, block }),
        1 => name().prop_map(|name| Entry::Huge { name }),
    ]
}

/// Entries that together make the known attacks, so they are tried often, not by luck: a link
/// that is the root (`d1/../dk/l -> ../..`), a link through it that looks inside but leads out
/// (`n -> d1/../dk/l/../..`), then a write, a hard link or a log name (`stdout`) through that.
fn gadget() -> impl Strategy<Value = Vec<Entry>> {
    const TAILS: [&str; 5] = ["", "secret", "outside/secret", "box/secret", "outside"];
    const NAMES: [&str; 3] = ["n", "stdout", "run.sh"];
    (1usize..4, 1usize..3, 0..TAILS.len(), 0..NAMES.len(), 0u8..4).prop_map(
        |(depth, up, tail, name, then)| {
            let dirs: Vec<String> = (0..depth).map(|i| format!("d{i}")).collect();
            let d = dirs.join("/");
            let mut tail = "../".repeat(up) + TAILS[tail];
            if tail.ends_with('/') {
                tail.pop();
            }
            let n = NAMES[name].to_string();
            let mut v = vec![
                Entry::Dir {
                    name: format!("{d}/"),
                    mode: 0o755,
                },
                Entry::Symlink {
                    name: format!("{d}/l"),
                    target: "../".repeat(depth) + ".",
                },
                Entry::Symlink {
                    name: n.clone(),
                    target: format!("{d}/l/{tail}"),
                },
            ];
            match then {
                0 => v.push(Entry::File {
                    name: format!("{n}/evil"),
                    data: b"x".to_vec(),
                    mode: 0o644,
                }),
                1 => v.push(Entry::HardLink {
                    name: "h".into(),
                    target: format!("{n}/secret"),
                }),
                2 => v.push(Entry::File {
                    name: n,
                    data: b"overwritten".to_vec(),
                    mode: 0o644,
                }),
                _ => v.push(Entry::File {
                    name: format!("{d}/l/{tail}/evil"),
                    data: b"x".to_vec(),
                    mode: 0o644,
                }),
            }
            v
        },
    )
}

/// Random entries with the attack gadgets mixed in.
fn entries() -> impl Strategy<Value = Vec<Entry>> {
    (vec(entry(), 0..6), vec(gadget(), 0..3), vec(entry(), 0..4)).prop_map(|(a, g, b)| {
        a.into_iter()
            .chain(g.into_iter().flatten())
            .chain(b)
            .collect()
    })
}

/// Byte edits: (position, value) overwrites, then an optional truncation.
fn edits() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    (
        vec((any::<usize>(), any::<u8>()), 0..8),
        prop::option::weighted(0.3, any::<usize>()),
    )
}

fn mutate(mut bytes: Vec<u8>, (sets, cut): &(Vec<(usize, u8)>, Option<usize>)) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, v) in sets {
            let n = bytes.len();
            bytes[at % n] = *v;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

fn resolve_name(name: &str, abs: &str) -> String {
    name.replace("@ABS@", abs)
}

/// A tar of raw GNU headers (the builder refuses `..` and absolute names; the point is to
/// write them).
fn tar_of(entries: &[Entry], abs: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, link, data, kind, mode): (&String, Option<&String>, &[u8], tar::EntryType, u32) =
            match e {
                Entry::File { name, data, mode } => {
                    (name, None, data, tar::EntryType::Regular, *mode)
                }
                Entry::Dir { name, mode } => (name, None, &[], tar::EntryType::Directory, *mode),
                Entry::Symlink { name, target } => {
                    (name, Some(target), &[], tar::EntryType::Symlink, 0o777)
                }
                Entry::HardLink { name, target } => {
                    (name, Some(target), &[], tar::EntryType::Link, 0o644)
                }
                Entry::Device { name, block } => {
                    let k = if *block {
                        tar::EntryType::Block
                    } else {
                        tar::EntryType::Char
                    };
                    (name, None, &[], k, 0o666)
                }
                Entry::Huge { name } => (name, None, b"tiny", tar::EntryType::Regular, 0o644),
            };
        let name = resolve_name(name, abs);
        let link = link.map(|l| resolve_name(l, abs));
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(if matches!(e, Entry::Huge { .. }) {
            1 << 40
        } else {
            data.len() as u64
        });
        let old = h.as_old_mut();
        let n = name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(l) = link {
            let n = l.len().min(old.linkname.len());
            old.linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// A zip of the same entries (zip has no hard links or devices: those become files).
fn zip_of(entries: &[Entry], abs: &str, deflate: bool) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    for e in entries {
        let opts = SimpleFileOptions::default().compression_method(method);
        // The writer refuses some names and duplicates; those entries are simply left out.
        let _ = match e {
            Entry::File { name, data, mode } => z
                .start_file(resolve_name(name, abs), opts.unix_permissions(*mode))
                .and_then(|()| z.write_all(data).map_err(Into::into)),
            Entry::Dir { name, mode } => {
                z.add_directory(resolve_name(name, abs), opts.unix_permissions(*mode))
            }
            Entry::Symlink { name, target } | Entry::HardLink { name, target } => {
                z.add_symlink(resolve_name(name, abs), resolve_name(target, abs), opts)
            }
            Entry::Device { name, .. } | Entry::Huge { name } => z
                .start_file(resolve_name(name, abs), opts)
                .and_then(|()| z.write_all(b"tiny").map_err(Into::into)),
        };
    }
    let mut bytes = z.finish().map(|c| c.into_inner()).unwrap_or_default();
    // Huge declared sizes: every central directory entry claims ~4 GiB uncompressed.
    if entries.iter().any(|e| matches!(e, Entry::Huge { .. })) {
        let mut i = 0;
        while i + 28 <= bytes.len() {
            if bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
                bytes[i + 24..i + 28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
            }
            i += 1;
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn hostile_tars_never_escape(entries in entries(), e in edits(), mutate_it in any::<bool>()) {
        let rig = Rig::new();
        let tar = tar_of(&entries, &rig.absolute_secret());
        let bytes = if mutate_it { mutate(tar, &e) } else { tar };
        rig.run(ArchiveKind::Tar, &bytes, BUDGET)?;
    }

    #[test]
    fn hostile_zips_never_escape(
        entries in entries(),
        e in edits(),
        mutate_it in any::<bool>(),
        deflate in any::<bool>(),
    ) {
        let rig = Rig::new();
        let zip = zip_of(&entries, &rig.absolute_secret(), deflate);
        let bytes = if mutate_it { mutate(zip, &e) } else { zip };
        rig.run(ArchiveKind::Zip, &bytes, BUDGET)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hostile_tar_gzs_never_escape(
        entries in entries(),
        e in edits(),
        where_ in 0u8..3,
    ) {
        let rig = Rig::new();
        let tar = tar_of(&entries, &rig.absolute_secret());
        // Edit the tar inside (valid gzip, broken tar), the gzip (broken stream), or neither.
        let bytes = match where_ {
            0 => gzip(&mutate(tar, &e)),
            1 => mutate(gzip(&tar), &e),
            _ => gzip(&tar),
        };
        rig.run(ArchiveKind::TarGz, &bytes, BUDGET)?;
    }

    #[test]
    fn random_bytes_of_every_kind_are_clean_errors(bytes in vec(any::<u8>(), 0..1500), k in 0usize..5) {
        let kinds = [ArchiveKind::Tar, ArchiveKind::TarGz, ArchiveKind::TarBz2, ArchiveKind::TarXz, ArchiveKind::Zip];
        Rig::new().run(kinds[k], &bytes, BUDGET)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Well-formed archives (plain names, files in directories, links to siblings) come out
    /// exactly, in both formats: the checks above do not refuse what is fine.
    #[test]
    fn well_formed_archives_extract_exactly(
        files in prop::collection::btree_map("[a-z]{1,6}", vec(any::<u8>(), 0..200), 1..6),
        dir in "[a-z]{1,4}",
        mode in 0u32..0o1000,
        as_zip in any::<bool>(),
    ) {
        let mut entries = vec![Entry::Dir { name: format!("{dir}/"), mode: 0o755 }];
        for (name, data) in &files {
            entries.push(Entry::File { name: format!("{dir}/{name}"), data: data.clone(), mode: mode | 0o600 });
            entries.push(Entry::Symlink { name: format!("{dir}/{name}.link"), target: name.clone() });
        }
        let rig = Rig::new();
        let (kind, bytes) = if as_zip {
            (ArchiveKind::Zip, zip_of(&entries, "", true))
        } else {
            (ArchiveKind::Tar, tar_of(&entries, ""))
        };
        let archive = rig.root.path().join("archive");
        std::fs::write(&archive, bytes).expect("write");
        let r = extract(kind, &archive, &rig.dest, Limits::default());
        prop_assert!(r.is_ok(), "{:?}", r);
        for (name, data) in &files {
            let p = rig.dest.join(&dir).join(name);
            prop_assert_eq!(&std::fs::read(&p).expect("file"), data);
            prop_assert_eq!(std::fs::metadata(&p).expect("meta").mode() & 0o777, mode | 0o600);
            prop_assert_eq!(&std::fs::read(p.with_extension("link")).expect("via link"), data);
        }
    }
}

/// A link that reads as inside (`a/b/c/l/../../../..`) but is the destination's grandparent
/// through the link `l`: a later write to `stdout` or to a fetched name would land outside
/// (before: as root). Refused and removed, in tar and in zip.
#[test]
fn a_chain_of_links_that_leads_out_is_removed() {
    let entries = [
        Entry::Dir {
            name: "a/b/c/".into(),
            mode: 0o755,
        },
        Entry::Symlink {
            name: "a/b/c/l".into(),
            target: "../../..".into(),
        },
        Entry::Symlink {
            name: "stdout".into(),
            target: "a/b/c/l/../../secret".into(),
        },
    ];
    for zip in [false, true] {
        let rig = Rig::new();
        let (kind, bytes) = if zip {
            (ArchiveKind::Zip, zip_of(&entries, "", false))
        } else {
            (ArchiveKind::Tar, tar_of(&entries, ""))
        };
        let archive = rig.root.path().join("archive");
        std::fs::write(&archive, bytes).expect("write");
        let e = extract(kind, &archive, &rig.dest, Limits::default()).expect_err("refused");
        assert!(
            e.to_string()
                .contains("link 'stdout' -> 'a/b/c/l/../../secret' points outside"),
            "{e}"
        );
        assert!(
            std::fs::symlink_metadata(rig.dest.join("stdout")).is_err(),
            "removed"
        );
        assert!(rig.dest.join("a/b/c/l").is_dir(), "the harmless link stays");
    }
}

/// Old zip extraction followed links while writing: `a/l -> ..`, `a/l/b -> ..`, then a file
/// `a/l/b/evil` landed beside the destination. Now the second entry goes through a link.
#[test]
fn zip_entries_never_go_through_links() {
    let entries = [
        Entry::Symlink {
            name: "a/l".into(),
            target: "..".into(),
        },
        Entry::Symlink {
            name: "a/l/b".into(),
            target: "..".into(),
        },
        Entry::File {
            name: "a/l/b/evil".into(),
            data: b"x".to_vec(),
            mode: 0o644,
        },
    ];
    let rig = Rig::new();
    let archive = rig.root.path().join("archive.zip");
    std::fs::write(&archive, zip_of(&entries, "", false)).expect("write");
    let e = extract(ArchiveKind::Zip, &archive, &rig.dest, Limits::default()).expect_err("refused");
    assert!(e.to_string().contains("goes through the link 'a/l'"), "{e}");
    assert!(!rig.root.path().join("box/evil").exists() && !rig.root.path().join("box/b").exists());
}
