//! v1 `cpuacct`: user and system CPU time of the container.

use super::super::fs;
use super::super::{CgroupError, CgroupStats};
use std::path::Path;

pub fn read(dir: &Path, s: &mut CgroupStats) -> Result<(), CgroupError> {
    let t = fs::read(dir, "cpuacct.stat")?;
    let hz = crate::containerizer::procfs::ticks_per_second() as f64;
    s.cpu_user_secs = fs::keyed(&t, "user").unwrap_or(0) as f64 / hz;
    s.cpu_system_secs = fs::keyed(&t, "system").unwrap_or(0) as f64 / hz;
    Ok(())
}
