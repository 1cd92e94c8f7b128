//! Can a task's user reach its sandbox? Tasks run as an unprivileged user, so every directory above
//! the sandboxes must let that user search it (the `x` bit for owner, group or others). A work dir
//! under a `0700` home fails this, and the agent says so at start instead of failing every task.

use super::users::TaskUser;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The first directory on the way to `dir` (itself included) that `user` may not search.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub blocked_at: PathBuf,
    pub mode: u32,
    pub owner: u32,
}

/// Checks every directory from `/` down to `dir` (which must exist) against `user`'s uid, gid and
/// groups, by their mode bits. Root searches everything. Below `fresh` (the container's private
/// `/tmp`, where the init recreates the sandbox's parents) the host's directories do not matter.
pub fn check_reachable(dir: &Path, user: &TaskUser, fresh: &Path) -> Result<(), Unreachable> {
    if user.uid == 0 {
        return Ok(());
    }
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for d in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
        if d.starts_with(fresh) {
            return Ok(());
        }
        let Ok(meta) = std::fs::metadata(d) else {
            continue;
        };
        if !may_search(meta.mode(), meta.uid(), meta.gid(), user) {
            return Err(Unreachable {
                blocked_at: d.to_path_buf(),
                mode: meta.mode() & 0o7777,
                owner: meta.uid(),
            });
        }
    }
    Ok(())
}

/// The search permission of one directory for `user`, as the kernel decides it from the mode bits
/// (the owner's bits for the owner, else the group's for a member, else the others').
fn may_search(mode: u32, owner: u32, group: u32, user: &TaskUser) -> bool {
    if user.uid == owner {
        mode & 0o100 != 0
    } else if user.gid == group || user.groups.contains(&group) {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

impl Unreachable {
    /// A sentence for the operator: what blocks `user` and what to do about it.
    pub fn explain(&self, user: &TaskUser, sandboxes: &Path) -> String {
        format!(
            "tasks run as '{}' (uid {}), who cannot reach the sandboxes in {}: {} is mode {:04o}, \
             owned by uid {}. Put the work dir where task users can enter (e.g. \
             /var/lib/gantry/agent; `gantry dev --state-dir DIR`), or let others search {} \
             (chmod o+x)",
            user.name,
            user.uid,
            sandboxes.display(),
            self.blocked_at.display(),
            self.mode,
            self.owner,
            self.blocked_at.display(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn nobody() -> TaskUser {
        TaskUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
        }
    }

    #[test]
    fn mode_bits_decide_by_owner_group_then_others() {
        let u = nobody();
        assert!(may_search(0o700, 65534, 0, &u), "owner with u+x");
        assert!(!may_search(0o070, 65534, 65534, &u), "owner without u+x");
        assert!(may_search(0o710, 0, 65534, &u), "group member");
        assert!(
            !may_search(0o701, 0, 65534, &u),
            "group bits apply, not others'"
        );
        assert!(may_search(0o701, 0, 0, &u), "others");
        assert!(!may_search(0o750, 0, 0, &u));
    }

    #[test]
    fn a_private_parent_blocks_and_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        let fresh = Path::new("/nonexistent-private-tmp");
        let sandboxes = home.join("state/sandboxes");
        std::fs::create_dir_all(&sandboxes).expect("mkdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let err = check_reachable(&sandboxes, &nobody(), fresh).expect_err("blocked");
        let home = std::fs::canonicalize(&home).expect("canonical");
        assert_eq!(err.blocked_at, home);
        assert_eq!(err.mode, 0o700);
        assert!(err.explain(&nobody(), &sandboxes).contains("chmod o+x"));
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        assert_eq!(check_reachable(&sandboxes, &nobody(), fresh), Ok(()));
        let root = TaskUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(check_reachable(&sandboxes, &root, fresh), Ok(()));
        assert_eq!(
            check_reachable(&sandboxes, &nobody(), tmp.path()),
            Ok(()),
            "below the private /tmp the init makes the path itself"
        );
    }
}
