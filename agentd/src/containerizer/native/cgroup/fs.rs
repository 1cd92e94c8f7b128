//! The only place cgroupfs files are read and written: small helpers that name the file on error.

use super::CgroupError;
use std::path::Path;

/// Writes `value` to `dir/file`.
pub fn write(dir: &Path, file: &str, value: impl AsRef<str>) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, value.as_ref().as_bytes())
        .map_err(|source| CgroupError::Io { path, source })
}

/// Reads `dir/file`.
pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Io { path, source })
}

/// Creates `dir` and its parents.
pub fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(dir).map_err(|source| CgroupError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// `key value` lines (memory.stat, cpu.stat) as a lookup.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_finds_exact_keys_only() {
        let t = "rss 10\ntotal_rss 30\noom_kill 2\n";
        assert_eq!(keyed(t, "rss"), Some(10));
        assert_eq!(keyed(t, "total_rss"), Some(30));
        assert_eq!(keyed(t, "cache"), None);
    }
}
