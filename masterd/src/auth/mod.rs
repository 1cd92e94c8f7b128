//! Authentication and authorisation of the master's HTTP APIs. A request carries HTTP Basic
//! credentials or a bearer token (`Bearer <t>`, or Marathon's `token=<t>`); the route decides what
//! it needs ([`Need::of`]); the principal's permissions decide. `/ping`, `/health`, `/version` and
//! the agent link (which has its own join token) are open. Off only in `gantry dev`.

pub mod principals;

use axum::http::{HeaderMap, Method};
use base64::Engine;
pub use principals::{Permission, Principal, PrincipalsError};
use std::path::Path;
use std::sync::Arc;

/// Compares in time independent of where the strings differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a route asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone (liveness and version probes; the agent link authenticates by join token).
    Nothing,
    /// A principal holding this permission.
    Permission(Permission),
}

impl Need {
    /// What `method path` needs: reads need `read`; writes need the permission of the API they
    /// change; Gantry's own admin endpoints need `admin`.
    pub fn of(method: &Method, path: &str) -> Need {
        let open = [
            "/ping",
            "/health",
            "/version",
            gantry_proto::messages::AGENT_CONNECT_PATH,
        ];
        if open.contains(&path) {
            return Need::Nothing;
        }
        let reads = method == Method::GET || method == Method::HEAD || method == Method::OPTIONS;
        // A task's sandbox files are read like the rest of its state.
        if reads && crate::api::files::is_files_path(path) {
            return Need::Permission(Permission::Read);
        }
        if path.starts_with("/gantry/") {
            return Need::Permission(Permission::Admin);
        }
        if reads {
            return Need::Permission(Permission::Read);
        }
        let p = if path.starts_with("/v1/scheduler") || path.starts_with("/scheduler") {
            Permission::WriteJobs
        } else if path.starts_with("/api/v1/scheduler") {
            Permission::WriteFrameworks
        } else if path.starts_with("/v2/") {
            Permission::WriteApps
        } else {
            Permission::Admin
        };
        Need::Permission(p)
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// 401: no credentials, or wrong ones.
    Unauthenticated,
    /// 403: the principal lacks the permission (or a run-as user, or a role).
    Forbidden { principal: String, why: String },
}

/// The master's principals, or none when authentication is off.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// `None`: authentication off (`gantry dev`): every request is allowed, as no one.
    principals: Option<Vec<Arc<Principal>>>,
}

impl Authenticator {
    /// Authentication off: everyone may do everything.
    pub fn off() -> Self {
        Self { principals: None }
    }

    /// Authentication on with these principals.
    pub fn with(principals: Vec<Principal>) -> Self {
        Self {
            principals: Some(principals.into_iter().map(Arc::new).collect()),
        }
    }

    /// True when requests must authenticate.
    pub fn enabled(&self) -> bool {
        self.principals.is_some()
    }

    /// The principal the headers name; `Ok(None)` when they carry no credentials (or auth is
    /// off); `Err` when they carry wrong ones.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Arc<Principal>>, Denied> {
        let Some(all) = &self.principals else {
            return Ok(None);
        };
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        let value = value.trim();
        if let Some(b64) = strip_scheme(value, "basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(Denied::Unauthenticated)?;
            let (user, pass) = decoded.split_once(':').ok_or(Denied::Unauthenticated)?;
            return all
                .iter()
                .find(|p| {
                    p.name == user
                        && p.password
                            .as_deref()
                            .is_some_and(|pw| same_secret(pass, pw))
                })
                .cloned()
                .map(Some)
                .ok_or(Denied::Unauthenticated);
        }
        let token = strip_scheme(value, "bearer")
            .or_else(|| value.strip_prefix("token="))
            .ok_or(Denied::Unauthenticated)?
            .trim();
        all.iter()
            .find(|p| p.tokens.iter().any(|t| same_secret(token, t)))
            .cloned()
            .map(Some)
            .ok_or(Denied::Unauthenticated)
    }

    /// Whether `principal` may make a request that needs `need`.
    pub fn authorize(&self, principal: Option<&Principal>, need: Need) -> Result<(), Denied> {
        if !self.enabled() {
            return Ok(());
        }
        match (need, principal) {
            (Need::Nothing, _) => Ok(()),
            (Need::Permission(_), None) => Err(Denied::Unauthenticated),
            (Need::Permission(p), Some(who)) if who.may(p) => Ok(()),
            (Need::Permission(p), Some(who)) => Err(Denied::Forbidden {
                principal: who.name.clone(),
                why: format!(
                    "principal '{}' lacks the '{}' permission",
                    who.name,
                    p.name()
                ),
            }),
        }
    }
}

/// `value` without its case-insensitive auth `scheme` and the space after it.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The bootstrap admin token, for a master with authentication on and no principal configured:
/// read from `<state_dir>/admin-token`, or generated there (mode 0600) at first start.
pub fn bootstrap_admin(state_dir: &Path) -> std::io::Result<Principal> {
    let path = state_dir.join("admin-token");
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = format!("gantry-{}", uuid::Uuid::new_v4().simple());
            std::fs::create_dir_all(state_dir)?;
            gantry_daemon::private_file::write_private(&path, &t)?;
            tracing::info!(path = %path.display(), "no principals configured: generated an admin token");
            t
        }
    };
    Ok(Principal {
        tokens: vec![token],
        ..Principal::admin("admin")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> Authenticator {
        let mut reader = Principal::admin("reader");
        reader.permissions = vec![Permission::Read];
        reader.tokens = vec!["reader-token-1".into()];
        let mut ops = Principal::admin("ops");
        ops.permissions = vec![Permission::Read, Permission::WriteApps];
        ops.password = Some("pw".into());
        Authenticator::with(vec![reader, ops])
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn basic_bearer_and_marathon_tokens() {
        let a = auth();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ops:pw")
        );
        assert_eq!(
            a.authenticate(&headers(&basic))
                .expect("ok")
                .expect("who")
                .name,
            "ops"
        );
        let wrong = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode("ops:px")
        );
        assert_eq!(
            a.authenticate(&headers(&wrong)),
            Err(Denied::Unauthenticated)
        );
        for h in ["Bearer reader-token-1", "token=reader-token-1"] {
            assert_eq!(
                a.authenticate(&headers(h)).expect("ok").expect("who").name,
                "reader"
            );
        }
        assert_eq!(
            a.authenticate(&headers("Bearer nope")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(a.authenticate(&HeaderMap::new()), Ok(None));
        assert_eq!(
            Authenticator::off().authenticate(&headers("Bearer x")),
            Ok(None)
        );
    }

    #[test]
    fn routes_need_what_they_change() {
        let post = Method::POST;
        assert_eq!(Need::of(&Method::GET, "/ping"), Need::Nothing);
        assert_eq!(
            Need::of(&Method::GET, "/v2/apps"),
            Need::Permission(Permission::Read)
        );
        assert_eq!(
            Need::of(&post, "/v2/apps"),
            Need::Permission(Permission::WriteApps)
        );
        assert_eq!(
            Need::of(&Method::DELETE, "/scheduler/job/x"),
            Need::Permission(Permission::WriteJobs)
        );
        assert_eq!(
            Need::of(&post, "/api/v1/scheduler"),
            Need::Permission(Permission::WriteFrameworks)
        );
        assert_eq!(
            Need::of(&Method::GET, "/gantry/v1/audit"),
            Need::Permission(Permission::Admin)
        );
        assert_eq!(
            Need::of(&Method::GET, "/gantry/v1/tasks/web.1/files/read"),
            Need::Permission(Permission::Read)
        );
        assert_eq!(
            Need::of(&post, "/gantry/v1/tasks/web.1/files/read"),
            Need::Permission(Permission::Admin)
        );
        assert_eq!(
            Need::of(&Method::GET, "/gantry/v1/tasks/web.1/other"),
            Need::Permission(Permission::Admin)
        );
        let a = auth();
        let reader = a
            .authenticate(&headers("Bearer reader-token-1"))
            .ok()
            .flatten();
        let need = Need::of(&post, "/v2/apps");
        assert!(matches!(
            a.authorize(reader.as_deref(), need),
            Err(Denied::Forbidden { .. })
        ));
        assert_eq!(a.authorize(None, need), Err(Denied::Unauthenticated));
        assert_eq!(a.authorize(None, Need::Nothing), Ok(()));
        assert_eq!(Authenticator::off().authorize(None, need), Ok(()));
    }
}
