//! Who may use the master's HTTP APIs: principals with a password (HTTP Basic, as Marathon's
//! `--http_credentials` and Chronos's) and/or bearer tokens, each with permissions, the OS users
//! its apps and jobs may run as, and the Mesos roles its frameworks may use. Read from a TOML file.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Every GET (apps, tasks, queue, state, metrics).
    Read,
    /// Create, change and delete Marathon apps and their tasks.
    WriteApps,
    /// Create, change, run and delete Chronos jobs.
    WriteJobs,
    /// Register frameworks on the Mesos scheduler API.
    WriteFrameworks,
    /// Everything, and the audit log.
    Admin,
}

impl Permission {
    /// The name used in the principals file and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::WriteApps => "write_apps",
            Permission::WriteJobs => "write_jobs",
            Permission::WriteFrameworks => "write_frameworks",
            Permission::Admin => "admin",
        }
    }
}

/// One principal.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub name: String,
    /// For HTTP Basic (`name:password`).
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer tokens (`Authorization: Bearer <t>`, or Marathon's `Authorization: token=<t>`).
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// OS users this principal's apps and jobs may ask to run as (`*`: any). An app that names no
    /// user runs as the agent's default user, which is always allowed.
    #[serde(default)]
    pub run_as: Vec<String>,
    /// Mesos roles this principal's frameworks may use (`*`: any).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Requests per second this principal may make (the master's default when absent).
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

impl Principal {
    /// True when the principal holds `p` (admins hold everything).
    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(&Permission::Admin) || self.permissions.contains(&p)
    }

    /// True when the principal's apps and jobs may run as `user`.
    pub fn may_run_as(&self, user: &str) -> bool {
        self.may(Permission::Admin) || self.run_as.iter().any(|u| u == "*" || u == user)
    }

    /// A principal with every permission (the bootstrap admin, `--http-credentials`).
    pub fn admin(name: &str) -> Self {
        Principal {
            name: name.to_string(),
            password: None,
            tokens: Vec::new(),
            permissions: vec![Permission::Admin],
            run_as: vec!["*".into()],
            roles: vec!["*".into()],
            rate_limit: None,
        }
    }
}

/// The principals file: `[[principal]]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalsFile {
    #[serde(default)]
    principal: Vec<Principal>,
}

/// Why the principals could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PrincipalsError {
    #[error("principals file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("principals file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("principals file {path}: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("--http-credentials must be USER:PASSWORD")]
    Credentials,
}

/// Reads and checks a principals file.
pub fn read_file(path: &Path) -> Result<Vec<Principal>, PrincipalsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PrincipalsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: PrincipalsFile = toml::from_str(&text).map_err(|source| PrincipalsError::Parse {
        path: path.to_owned(),
        source,
    })?;
    check(&file.principal).map_err(|why| PrincipalsError::Invalid {
        path: path.to_owned(),
        why,
    })?;
    Ok(file.principal)
}

/// `--http-credentials user:password` (Marathon's flag): one admin principal.
pub fn from_credentials(creds: &str) -> Result<Principal, PrincipalsError> {
    let (user, pass) = creds.split_once(':').ok_or(PrincipalsError::Credentials)?;
    if user.is_empty() || pass.is_empty() {
        return Err(PrincipalsError::Credentials);
    }
    Ok(Principal {
        password: Some(pass.to_string()),
        ..Principal::admin(user)
    })
}

/// Names unique and non-empty, each principal with a way in, tokens unique across principals.
pub fn check(principals: &[Principal]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    let mut tokens = std::collections::HashSet::new();
    for p in principals {
        if p.name.is_empty() || p.name.contains(':') {
            return Err(format!(
                "principal name '{}' must be non-empty and hold no ':'",
                p.name
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err(format!("principal '{}' appears twice", p.name));
        }
        if p.password.as_deref().is_none_or(str::is_empty) && p.tokens.is_empty() {
            return Err(format!(
                "principal '{}' has neither a password nor a token",
                p.name
            ));
        }
        for t in &p.tokens {
            if t.len() < 8 {
                return Err(format!(
                    "a token of principal '{}' is shorter than 8 characters",
                    p.name
                ));
            }
            if !tokens.insert(t.as_str()) {
                return Err(format!(
                    "a token of principal '{}' is also another's",
                    p.name
                ));
            }
        }
        if let Some(r) = p.rate_limit {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!(
                    "rate_limit of principal '{}' must be a positive number",
                    p.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format_reads_and_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            r#"
[[principal]]
name = "ops"
password = "pw"
permissions = ["read", "write_apps"]
run_as = ["nobody", "deploy"]

[[principal]]
name = "ci"
tokens = ["tok-0123456789"]
permissions = ["read"]
rate_limit = 5.0
"#,
        )
        .expect("write");
        let p = read_file(&path).expect("read");
        assert_eq!(p.len(), 2);
        assert!(p[0].may(Permission::WriteApps) && !p[0].may(Permission::WriteJobs));
        assert!(p[0].may_run_as("deploy") && !p[0].may_run_as("root"));
        assert!(!p[1].may(Permission::WriteApps));
        std::fs::write(&path, "[[principal]]\nname = \"x\"\n").expect("write");
        let e = read_file(&path).expect_err("no way in").to_string();
        assert!(e.contains("neither a password nor a token"), "{e}");
        std::fs::write(
            &path,
            "[[principal]]\nname = \"x\"\npassword = \"p\"\npermissions = [\"fly\"]\n",
        )
        .expect("write");
        assert!(read_file(&path).is_err(), "unknown permission");
    }

    #[test]
    fn http_credentials_make_an_admin() {
        let p = from_credentials("marathon:s3cret:with:colons").expect("creds");
        assert_eq!(p.name, "marathon");
        assert_eq!(p.password.as_deref(), Some("s3cret:with:colons"));
        assert!(p.may(Permission::Admin) && p.may_run_as("root"));
        assert!(from_credentials("nocolon").is_err());
        assert!(from_credentials(":x").is_err());
    }
}
