//! The fetch cache: one file per URI (named by a hash of it, with the URI alongside to rule out
//! collisions), bounded in bytes; the least recently used entries are evicted first. Wiped when the
//! agent starts, as in Mesos. Any cache error bypasses the cache.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

pub struct FetchCache {
    dir: PathBuf,
    max_bytes: u64,
    lock: Mutex<()>,
}

impl FetchCache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        Self {
            dir,
            max_bytes,
            lock: Mutex::new(()),
        }
    }

    fn key(uri: &str) -> String {
        let mut h = DefaultHasher::new();
        uri.hash(&mut h);
        format!("{:016x}", h.finish())
    }

    /// The cached copy of `uri`, marked as just used.
    pub fn get(&self, uri: &str) -> Option<PathBuf> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let k = Self::key(uri);
        let stored = std::fs::read_to_string(self.dir.join(format!("{k}.uri"))).ok()?;
        let data = self.dir.join(&k);
        if stored != uri || !data.is_file() {
            return None;
        }
        let _ = std::fs::File::options()
            .append(true)
            .open(&data)
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(data)
    }

    /// Keeps a copy of `file` for `uri`, evicting old entries to stay within the bound. Files larger
    /// than the whole bound are not cached.
    pub fn put(&self, uri: &str, file: &Path) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return;
        }
        self.evict_to(self.max_bytes - size);
        let k = Self::key(uri);
        if std::fs::copy(file, self.dir.join(&k)).is_ok() {
            let _ = std::fs::write(self.dir.join(format!("{k}.uri")), uri);
        }
    }

    /// Bytes held.
    pub fn size(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let e = e.ok()?;
            let p = e.path();
            if p.extension().is_some() {
                return None;
            }
            let m = e.metadata().ok()?;
            Some((p, m.len(), m.modified().ok()?))
        })
        .collect()
    }

    fn evict_to(&self, budget: u64) {
        let mut entries = self.entries();
        entries.sort_by_key(|e| e.2);
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        for (p, len, _) in entries {
            if total <= budget {
                break;
            }
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("uri"));
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lru() {
        let t = tempfile::tempdir().expect("tempdir");
        let c = FetchCache::new(t.path().join("cache"), 25);
        let src = t.path().join("f");
        std::fs::write(&src, [0u8; 10]).expect("write");
        c.put("u1", &src);
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.put("u2", &src);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.get("u1").is_some(), "u1 is now the most recently used");
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.put("u3", &src);
        assert!(c.size() <= 25);
        assert!(
            c.get("u2").is_none(),
            "the least recently used entry went first"
        );
        assert!(c.get("u1").is_some() && c.get("u3").is_some());
        std::fs::write(&src, [0u8; 30]).expect("write");
        c.put("big", &src);
        assert!(c.get("big").is_none(), "larger than the bound: not cached");
    }
}
