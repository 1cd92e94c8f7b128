//! v1 `cpuset`: the CPUs and memory nodes of the placement plan (or the parent's when unpinned).

use super::super::fs;
use super::super::{CgroupError, Limits};
use std::path::Path;

/// Gives every not-yet-initialised ancestor between `root` and `rel` its parent's CPUs and nodes.
pub fn prepare_ancestors(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut parent = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for comp in comps.iter().take(comps.len().saturating_sub(1)) {
        let dir = parent.join(comp);
        if !dir.is_dir() {
            fs::mkdir(&dir)?;
        }
        inherit(&parent, &dir)?;
        parent = dir;
    }
    Ok(())
}

fn inherit(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = fs::read(dir, f).unwrap_or_default();
        if mine.trim().is_empty() {
            fs::write(dir, f, fs::read(parent, f)?.trim())?;
        }
    }
    Ok(())
}

pub fn apply(root: &Path, dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    let parent = dir.parent().unwrap_or(root);
    match &limits.cpuset_cpus {
        Some(c) => fs::write(dir, "cpuset.cpus", c)?,
        None => fs::write(dir, "cpuset.cpus", fs::read(parent, "cpuset.cpus")?.trim())?,
    }
    match &limits.cpuset_mems {
        Some(m) => fs::write(dir, "cpuset.mems", m)?,
        None => fs::write(dir, "cpuset.mems", fs::read(parent, "cpuset.mems")?.trim())?,
    }
    Ok(())
}
