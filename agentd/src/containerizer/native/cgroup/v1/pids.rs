//! v1 `pids`: the maximum number of processes and threads.

use super::super::fs;
use super::super::{CgroupError, Limits};
use std::path::Path;

pub fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    match limits.pids_max {
        Some(n) => fs::write(dir, "pids.max", n.to_string()),
        None => Ok(()),
    }
}
