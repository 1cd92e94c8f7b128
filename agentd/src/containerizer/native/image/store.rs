//! The content-addressed layer store under the agent's work dir, shared by all tasks:
//! `layers/<sha256 hex>/` holds one unpacked layer (renamed into place only once its digest was
//! verified and it unpacked whole, so a corrupted layer is never cached); `rootfs/<container>/`
//! holds a task's overlay upper, work and mount dirs and `layers.json`, the layers it uses. Layers
//! no task uses go, least recently used first, when the store is over its size bound.

use super::{ImageError, Prepared};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The store's directories and its per-layer locks.
#[derive(Debug)]
pub struct LayerStore {
    root: PathBuf,
    max_bytes: u64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// `sha256:<hex>` → `<hex>`, refusing anything that is not a plain sha256 digest (the digest
/// names a directory).
pub fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.split_once(':') {
        Some(("sha256", h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(h),
        _ => Err(ImageError::Manifest(format!(
            "'{digest}' is not a sha256 digest"
        ))),
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

impl LayerStore {
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self {
            root,
            max_bytes,
            locks: Mutex::default(),
        }
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn layer_dir(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }

    /// Where a download goes before it is verified.
    pub fn partial_blob(&self, hex: &str) -> PathBuf {
        self.root.join("downloads").join(format!("{hex}.partial"))
    }

    pub fn rootfs_dir(&self, container: &str) -> PathBuf {
        self.root.join("rootfs").join(container)
    }

    /// The lock held while layer `hex` is pulled, so two tasks pull it once.
    pub fn lock(&self, hex: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hex.to_string())
            .or_default()
            .clone()
    }

    /// True (and the layer marked as just used) when layer `hex` is in the store.
    pub fn have(&self, hex: &str) -> bool {
        let d = self.layer_dir(hex);
        if !d.is_dir() {
            return false;
        }
        let _ = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.layers_dir().join(format!("{hex}.used")))
            .and_then(|f| f.set_modified(SystemTime::now()));
        true
    }

    /// Makes the rootfs dirs of `container` and records the layers it uses.
    pub fn make_rootfs(
        &self,
        container: &str,
        hexes: &[String],
    ) -> Result<(PathBuf, PathBuf, PathBuf), ImageError> {
        let base = self.rootfs_dir(container);
        let _ = std::fs::remove_dir_all(&base);
        let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| ImageError::io(d, e))?;
        }
        let list = serde_json::to_vec(hexes).map_err(|e| ImageError::Store(e.to_string()))?;
        let f = base.join("layers.json");
        std::fs::write(&f, list).map_err(|e| ImageError::io(&f, e))?;
        Ok((upper, work, merged))
    }

    /// Removes the rootfs dirs of `container` (its overlay lives in the container's own mount
    /// namespace and is gone with it).
    pub fn release(&self, container: &str) {
        let base = self.rootfs_dir(container);
        if base.exists() {
            if let Err(e) = std::fs::remove_dir_all(&base) {
                tracing::warn!(container, error = %e, "cannot remove the task's rootfs");
            }
        }
    }

    /// Layers some task's rootfs uses.
    fn in_use(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("rootfs")) else {
            return out;
        };
        for e in rd.flatten() {
            let list: Vec<String> = std::fs::read(e.path().join("layers.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            out.extend(list);
        }
        out
    }

    /// Every layer in the store: (hex, bytes, last used).
    fn layers(&self) -> Vec<(String, u64, SystemTime)> {
        let Ok(rd) = std::fs::read_dir(self.layers_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let hex = e.file_name().to_str()?.to_string();
                if hex.len() != 64 {
                    return None;
                }
                let used = std::fs::metadata(self.layers_dir().join(format!("{hex}.used")))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                Some((hex, dir_size(&e.path()), used))
            })
            .collect()
    }

    /// Removes unused layers, least recently used first, until the store fits its bound.
    pub fn evict(&self, keep: &[String]) {
        let mut layers = self.layers();
        let mut total: u64 = layers.iter().map(|l| l.1).sum();
        if total <= self.max_bytes {
            return;
        }
        let busy = self.in_use();
        layers.sort_by_key(|l| l.2);
        for (hex, size, _) in layers {
            if total <= self.max_bytes {
                break;
            }
            if busy.contains(&hex) || keep.contains(&hex) {
                continue;
            }
            let _ = std::fs::remove_dir_all(self.layer_dir(&hex));
            let _ = std::fs::remove_file(self.layers_dir().join(format!("{hex}.used")));
            tracing::info!(layer = %hex, bytes = size, "image store: evicted an unused layer");
            total = total.saturating_sub(size);
        }
    }

    /// Lower dirs (top layer first) of `hexes` (bottom first, as a manifest lists them).
    pub fn prepared(
        &self,
        hexes: &[String],
        rootfs: (PathBuf, PathBuf, PathBuf),
        config: super::config::RuntimeConfig,
    ) -> Prepared {
        Prepared {
            lower: hexes.iter().rev().map(|h| self.layer_dir(h)).collect(),
            upper: rootfs.0,
            work: rootfs.1,
            merged: rootfs.2,
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_layers_go_least_recently_used_first() {
        let t = tempfile::tempdir().expect("tmp");
        let s = LayerStore::new(t.path().to_path_buf(), 10);
        let hex = |c: char| c.to_string().repeat(64);
        for (c, age) in [('a', 30), ('b', 20), ('c', 10)] {
            let d = s.layer_dir(&hex(c));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("f"), [0u8; 8]).expect("write");
            assert!(s.have(&hex(c)));
            let f = std::fs::File::options()
                .write(true)
                .open(s.layers_dir().join(format!("{}.used", hex(c))))
                .expect("used");
            f.set_modified(SystemTime::now() - std::time::Duration::from_secs(age))
                .expect("mtime");
        }
        // 'a' (oldest) is in use by a task: 'b' goes, then the store fits (8 + 8 > 10 still, so 'c' too
        // unless kept).
        s.make_rootfs("t1", &[hex('a')]).expect("rootfs");
        s.evict(&[hex('c')]);
        assert!(s.layer_dir(&hex('a')).is_dir(), "in use");
        assert!(
            !s.layer_dir(&hex('b')).exists(),
            "least recently used, unused"
        );
        assert!(s.layer_dir(&hex('c')).is_dir(), "kept");
        s.release("t1");
        s.evict(&[]);
        assert!(!s.layer_dir(&hex('a')).exists());
    }

    #[test]
    fn only_sha256_digests_name_layers() {
        assert!(digest_hex(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(digest_hex("sha256:../../etc").is_err());
        assert!(digest_hex("md5:00").is_err());
    }
}
