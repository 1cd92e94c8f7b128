//! Garbage collection of ended tasks' sandboxes, as Mesos's agent does it (`--gc_delay`,
//! `--gc_disk_headroom`): a sandbox whose task has ended is removed once it is older than the GC
//! delay, and the delay shrinks as the disk fills. Beyond Mesos, at most a fixed number of ended
//! sandboxes are kept, so a crash-looping app cannot pile up thousands of them between checks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// When ended sandboxes go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GcPolicy {
    /// How long an ended sandbox is kept on an empty disk (Mesos `--gc_delay`, 1 week).
    pub delay: Duration,
    /// The fraction of the disk to keep free (Mesos `--gc_disk_headroom`, 0.1): the delay is
    /// scaled by `max(0, 1 - headroom - used fraction)`, so a full disk removes sandboxes at once.
    pub disk_headroom: f64,
    /// The most ended sandboxes kept; the oldest beyond this go at once.
    pub max_count: usize,
}

impl Default for GcPolicy {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(7 * 24 * 3600),
            disk_headroom: 0.1,
            max_count: 100,
        }
    }
}

impl GcPolicy {
    /// The age past which an ended sandbox goes, with `disk_used` (0..=1) of the disk in use.
    pub fn max_age(&self, disk_used: f64) -> Duration {
        let factor = (1.0 - self.disk_headroom - disk_used).clamp(0.0, 1.0);
        self.delay.mul_f64(factor)
    }
}

/// An ended task's sandbox and when it last changed.
#[derive(Clone, Debug, PartialEq)]
pub struct EndedSandbox {
    pub path: PathBuf,
    pub modified: SystemTime,
}

/// A sandbox that changed this recently is never removed: it may be a task's being prepared for
/// launch, made just before the agent's task table lists it.
pub const RECENT: Duration = Duration::from_secs(10);

/// Which of `ended` to remove: those older than the policy's age at `disk_used`, then the oldest
/// of the rest beyond `max_count`; never one changed within [`RECENT`]. Pure, for tests.
pub fn to_remove(
    mut ended: Vec<EndedSandbox>,
    now: SystemTime,
    disk_used: f64,
    policy: &GcPolicy,
) -> Vec<PathBuf> {
    let max_age = policy.max_age(disk_used);
    ended.sort_by_key(|s| std::cmp::Reverse(s.modified)); // newest first
    let mut out = Vec::new();
    let mut kept = 0usize;
    for s in ended {
        let age = now.duration_since(s.modified).unwrap_or_default();
        if age < RECENT {
            kept += 1;
        } else if age >= max_age || kept >= policy.max_count {
            out.push(s.path);
        } else {
            kept += 1;
        }
    }
    out
}

/// The sandboxes in `dir` whose names are not in `active` (tasks the agent still tracks), with the
/// latest change of the directory and of its `stdout`/`stderr`.
pub fn ended_sandboxes(dir: &Path, active: &HashSet<String>) -> Vec<EndedSandbox> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if active.contains(&name) {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mut modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        for f in ["stdout", "stderr"] {
            if let Ok(t) = std::fs::metadata(path.join(f)).and_then(|m| m.modified()) {
                modified = modified.max(t);
            }
        }
        out.push(EndedSandbox { path, modified });
    }
    out
}

/// The used fraction of the file system holding `dir` (0 when it cannot be read).
pub fn disk_used(dir: &Path) -> f64 {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) if s.blocks() > 0 => 1.0 - s.blocks_available() as f64 / s.blocks() as f64,
        _ => 0.0,
    }
}

/// One collection: removes what the policy says of the ended sandboxes in `dir`; returns how
/// many were removed.
pub fn collect(dir: &Path, active: &HashSet<String>, policy: &GcPolicy) -> usize {
    let ended = ended_sandboxes(dir, active);
    let doomed = to_remove(ended, SystemTime::now(), disk_used(dir), policy);
    let mut removed = 0;
    for p in doomed {
        match std::fs::remove_dir_all(&p) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(sandbox = %p.display(), error = %e, "cannot remove an ended sandbox")
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed ended sandboxes");
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sandbox(name: &str, modified: u64) -> EndedSandbox {
        EndedSandbox {
            path: PathBuf::from(name),
            modified: at(modified),
        }
    }

    #[test]
    fn the_delay_shrinks_as_the_disk_fills() {
        let p = GcPolicy {
            delay: Duration::from_secs(1000),
            disk_headroom: 0.1,
            max_count: 10,
        };
        assert_eq!(p.max_age(0.0), Duration::from_secs(900));
        assert_eq!(p.max_age(0.4).as_secs(), 500);
        assert_eq!(
            p.max_age(0.95),
            Duration::ZERO,
            "past the headroom: at once"
        );
    }

    #[test]
    fn old_ones_go_then_the_oldest_beyond_the_count() {
        let p = GcPolicy {
            delay: Duration::from_secs(100),
            disk_headroom: 0.0,
            max_count: 2,
        };
        let ended = vec![
            sandbox("old", 800),
            sandbox("a", 950),
            sandbox("b", 990),
            sandbox("c", 970),
        ];
        let mut gone = to_remove(ended, at(1000), 0.0, &p);
        gone.sort();
        assert_eq!(gone, vec![PathBuf::from("a"), PathBuf::from("old")]);
    }

    #[test]
    fn a_sandbox_that_just_changed_stays_even_on_a_full_disk() {
        let p = GcPolicy {
            delay: Duration::from_secs(100),
            disk_headroom: 0.1,
            max_count: 0,
        };
        let ended = vec![sandbox("new", 995), sandbox("older", 980)];
        assert_eq!(
            to_remove(ended, at(1000), 1.0, &p),
            vec![PathBuf::from("older")]
        );
    }

    #[test]
    fn active_tasks_are_never_collected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for n in ["live", "dead1", "dead2", "fresh"] {
            std::fs::create_dir(tmp.path().join(n)).expect("mkdir");
            if n != "fresh" {
                std::fs::File::open(tmp.path().join(n))
                    .and_then(|d| d.set_modified(an_hour_ago))
                    .expect("set mtime");
            }
        }
        std::fs::write(tmp.path().join("a-file"), "x").expect("write");
        let active: HashSet<String> = ["live".to_string()].into();
        let p = GcPolicy {
            delay: Duration::ZERO,
            disk_headroom: 0.0,
            max_count: 0,
        };
        assert_eq!(collect(tmp.path(), &active, &p), 2);
        assert!(tmp.path().join("live").is_dir());
        assert!(tmp.path().join("fresh").is_dir(), "changed just now");
        assert!(
            tmp.path().join("a-file").is_file(),
            "only directories are sandboxes"
        );
        assert!(!tmp.path().join("dead1").exists());
    }
}
