//! Which OS user a task runs as: the app's `user` when the agent allows it, otherwise the agent's
//! default unprivileged user; root only when the agent allows root explicitly.

use nix::unistd::{Gid, Uid, User};

/// The agent's user settings.
#[derive(Clone, Debug, PartialEq)]
pub struct UserPolicy {
    /// Users tasks may ask for; `*` allows any user that exists.
    pub allowed: Vec<String>,
    /// Who runs tasks that ask for no user or for one not allowed.
    pub default_user: String,
    /// May tasks run as root (uid 0)?
    pub allow_root: bool,
}

impl Default for UserPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            default_user: "nobody".into(),
            allow_root: false,
        }
    }
}

/// The resolved user.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group).
    pub groups: Vec<u32>,
}

/// Why no user could be chosen.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("user '{0}' does not exist on this agent")]
    Unknown(String),
    #[error("the agent's default user '{0}' is root, but root tasks are not allowed (--allow-root-tasks)")]
    DefaultIsRoot(String),
}

impl UserPolicy {
    /// Picks the user for a task that asked for `requested`. The second value says why the
    /// request was not honoured, when it was not.
    pub fn resolve(
        &self,
        requested: Option<&str>,
    ) -> Result<(TaskUser, Option<String>), UserError> {
        self.resolve_with(requested, &lookup)
    }

    /// [`resolve`](Self::resolve) with the password-database lookup injected (tests).
    pub fn resolve_with(
        &self,
        requested: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<TaskUser>,
    ) -> Result<(TaskUser, Option<String>), UserError> {
        if let Some(name) = requested.filter(|n| !n.is_empty()) {
            let listed = self.allowed.iter().any(|a| a == "*" || a == name);
            match lookup(name) {
                Some(u) if u.uid == 0 && !self.allow_root => {
                    let why = format!(
                        "root tasks are not allowed on this agent; running as '{}'",
                        self.default_user
                    );
                    return self.default(lookup).map(|d| (d, Some(why)));
                }
                Some(u) if listed || (u.uid == 0 && self.allow_root) => return Ok((u, None)),
                Some(_) => {
                    let why = format!(
                        "user '{name}' is not in the agent's --allowed-users; running as '{}'",
                        self.default_user
                    );
                    return self.default(lookup).map(|d| (d, Some(why)));
                }
                None if listed => return Err(UserError::Unknown(name.to_string())),
                None => {
                    let why = format!(
                        "user '{name}' is not allowed; running as '{}'",
                        self.default_user
                    );
                    return self.default(lookup).map(|d| (d, Some(why)));
                }
            }
        }
        self.default(lookup).map(|d| (d, None))
    }

    fn default(&self, lookup: &dyn Fn(&str) -> Option<TaskUser>) -> Result<TaskUser, UserError> {
        let u = lookup(&self.default_user)
            .ok_or_else(|| UserError::Unknown(self.default_user.clone()))?;
        if u.uid == 0 && !self.allow_root {
            return Err(UserError::DefaultIsRoot(u.name));
        }
        Ok(u)
    }
}

/// Looks a user up in the system's password and group databases.
pub fn lookup(name: &str) -> Option<TaskUser> {
    let u = User::from_name(name).ok().flatten()?;
    let cname = std::ffi::CString::new(name).ok()?;
    let groups = nix::unistd::getgrouplist(&cname, u.gid)
        .map(|g| g.into_iter().map(Gid::as_raw).collect())
        .unwrap_or_else(|_| vec![u.gid.as_raw()]);
    Some(TaskUser {
        name: u.name,
        uid: Uid::as_raw(u.uid),
        gid: u.gid.as_raw(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> Option<TaskUser> {
        let uid = match name {
            "root" => 0,
            "nobody" => 65534,
            "alice" => 1000,
            "bob" => 1001,
            _ => return None,
        };
        Some(TaskUser {
            name: name.into(),
            uid,
            gid: uid,
            groups: vec![uid],
        })
    }

    fn policy(allowed: &[&str], allow_root: bool) -> UserPolicy {
        UserPolicy {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            default_user: "nobody".into(),
            allow_root,
        }
    }

    #[test]
    fn allowed_users_run_as_themselves_others_as_the_default() {
        let p = policy(&["alice"], false);
        assert_eq!(p.resolve_with(Some("alice"), &db).expect("ok").0.uid, 1000);
        let (u, why) = p.resolve_with(Some("bob"), &db).expect("ok");
        assert_eq!(u.name, "nobody");
        assert!(why.expect("a reason").contains("--allowed-users"));
        assert_eq!(p.resolve_with(None, &db).expect("ok").0.name, "nobody");
        assert_eq!(
            policy(&["*"], false)
                .resolve_with(Some("bob"), &db)
                .expect("ok")
                .0
                .uid,
            1001
        );
    }

    #[test]
    fn never_root_unless_allowed() {
        let (u, why) = policy(&["*", "root"], false)
            .resolve_with(Some("root"), &db)
            .expect("ok");
        assert_eq!(u.name, "nobody");
        assert!(why.is_some());
        assert_eq!(
            policy(&[], true)
                .resolve_with(Some("root"), &db)
                .expect("ok")
                .0
                .uid,
            0
        );
        let bad = UserPolicy {
            default_user: "root".into(),
            ..policy(&[], false)
        };
        assert_eq!(
            bad.resolve_with(None, &db).unwrap_err(),
            UserError::DefaultIsRoot("root".into())
        );
    }

    #[test]
    fn an_allowed_user_that_does_not_exist_is_an_error() {
        let e = policy(&["carol"], false)
            .resolve_with(Some("carol"), &db)
            .unwrap_err();
        assert_eq!(e.to_string(), "user 'carol' does not exist on this agent");
    }
}
