//! v1 `cpu`: shares and CFS quota from `cpus`; throttling statistics.

use super::super::fs;
use super::super::limits::CFS_PERIOD_US;
use super::super::{CgroupError, CgroupStats, Limits};
use std::path::Path;

pub fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::write(dir, "cpu.shares", limits.cpu_shares().to_string())?;
    if let Some(q) = limits.cfs_quota_us() {
        fs::write(dir, "cpu.cfs_period_us", CFS_PERIOD_US.to_string())?;
        fs::write(dir, "cpu.cfs_quota_us", q.to_string())?;
    }
    Ok(())
}

/// Throttling counters (best effort: older kernels lack some).
pub fn read(dir: &Path, s: &mut CgroupStats) {
    if let Ok(t) = fs::read(dir, "cpu.stat") {
        s.cpu_nr_periods = fs::keyed(&t, "nr_periods").unwrap_or(0);
        s.cpu_nr_throttled = fs::keyed(&t, "nr_throttled").unwrap_or(0);
        s.cpu_throttled_secs = fs::keyed(&t, "throttled_time").unwrap_or(0) as f64 / 1e9;
    }
}
