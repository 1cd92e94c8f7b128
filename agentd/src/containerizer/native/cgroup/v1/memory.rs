//! v1 `memory`: the limit from `mem` (and memsw, so the task is OOM-killed rather than swapped),
//! OOM detection from `memory.oom_control`, and memory usage.

use super::super::fs;
use super::super::{CgroupError, CgroupStats, Limits};
use std::path::Path;

pub fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    if let Some(b) = limits.memory_bytes() {
        fs::write(dir, "memory.limit_in_bytes", b.to_string())?;
        fs::write(dir, "memory.soft_limit_in_bytes", b.to_string())?;
        // Only with swap accounting; memsw must not be below the limit, which it is not.
        if dir.join("memory.memsw.limit_in_bytes").exists() {
            fs::write(dir, "memory.memsw.limit_in_bytes", b.to_string())?;
        }
    }
    Ok(())
}

/// True when `memory.oom_control` counts an OOM kill (kernel 4.13+), or `under_oom` is set.
pub fn oom_killed(dir: &Path) -> bool {
    fs::read(dir, "memory.oom_control").is_ok_and(|t| {
        fs::keyed(&t, "oom_kill").unwrap_or(0) > 0 || fs::keyed(&t, "under_oom").unwrap_or(0) > 0
    })
}

pub fn read(dir: &Path, s: &mut CgroupStats) -> Result<(), CgroupError> {
    let stat = fs::read(dir, "memory.stat")?;
    s.mem_rss_bytes = fs::keyed(&stat, "total_rss")
        .or_else(|| fs::keyed(&stat, "rss"))
        .unwrap_or(0);
    s.mem_total_bytes = fs::read(dir, "memory.usage_in_bytes")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    s.mem_limit_bytes = fs::read(dir, "memory.limit_in_bytes")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v: &u64| *v < (1 << 62));
    Ok(())
}
