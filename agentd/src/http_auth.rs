//! Authentication of the agent's own HTTP endpoint (`/state`, `/monitor/statistics`, `/files/*`):
//! every route but `/health` needs `Authorization: Bearer <token>` with a token the agent accepts
//! (its join token: see [`TokenSource::accepted`]), or HTTP Basic with `--http-credentials`
//! (Mesos's flag name). A missing or wrong credential is a 401 with `WWW-Authenticate` and a
//! plain-text body, as Mesos's agent answers. Off only in `gantry dev` ([`AgentAuth::off`]).
//! Credentials are compared in constant time and never logged.

use crate::link::token::TokenSource;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use std::sync::Arc;

/// `--http-credentials USER:PASSWORD`; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for HttpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCredentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl HttpCredentials {
    /// Parses `USER:PASSWORD` (the user non-empty without `:`, the password non-empty).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok(HttpCredentials {
                user: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err("must be USER:PASSWORD, both non-empty".into()),
        }
    }
}

/// What the agent's endpoint accepts.
#[derive(Clone, Debug)]
pub struct AgentAuth {
    /// `None`: authentication off (`gantry dev`).
    inner: Option<Arc<Accepts>>,
}

#[derive(Debug)]
struct Accepts {
    tokens: TokenSource,
    credentials: Option<HttpCredentials>,
}

/// The realm in `WWW-Authenticate` (Mesos's agent names its realms `mesos-agent-...`).
const REALM: &str = "mesos-agent";

impl AgentAuth {
    /// Authentication on: the join token(s) of `tokens` as bearer tokens, and `credentials` as
    /// HTTP Basic.
    pub fn new(tokens: TokenSource, credentials: Option<HttpCredentials>) -> Self {
        AgentAuth {
            inner: Some(Arc::new(Accepts {
                tokens,
                credentials,
            })),
        }
    }

    /// Authentication off: everyone may read everything.
    pub fn off() -> Self {
        AgentAuth { inner: None }
    }

    /// True when requests must authenticate.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether the headers carry a credential the agent accepts now.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(a) = &self.inner else {
            return true;
        };
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, rest)) = value.trim().split_once(' ') else {
            return false;
        };
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            // Every accepted token is compared, so the time does not tell which one matched.
            return a
                .tokens
                .accepted()
                .iter()
                .fold(false, |ok, t| same_secret(rest, t) | ok);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(c) = &a.credentials else {
                return false;
            };
            let Some(decoded) = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                return false;
            };
            let Some((user, pass)) = decoded.split_once(':') else {
                return false;
            };
            return same_secret(user, &c.user) & same_secret(pass, &c.password);
        }
        false
    }
}

/// Compares in time independent of where the strings differ (as the master's `auth::same_secret`).
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401: `WWW-Authenticate` with both schemes and a plain-text body.
pub fn unauthorized() -> Response {
    let mut r = Response::new(Body::from(
        "Unauthorized: this agent endpoint needs 'Authorization: Bearer <join token>' or HTTP \
         Basic credentials (--http-credentials)\n",
    ));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for challenge in [
        format!("Basic realm=\"{REALM}\""),
        format!("Bearer realm=\"{REALM}\""),
    ] {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.append(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// The middleware: passes an authenticated request on, answers 401 otherwise.
pub async fn require(State(auth): State<AgentAuth>, mut req: Request, next: Next) -> Response {
    if !auth.allows(req.headers()) {
        tracing::debug!(path = %req.uri().path(), "refused an unauthenticated request");
        return unauthorized();
    }
    if let Some(v) = req.headers_mut().get_mut(header::AUTHORIZATION) {
        v.set_sensitive(true);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn bearer_tokens_and_basic_credentials() {
        let creds = HttpCredentials::parse("ops:pw:with:colons").unwrap();
        assert_eq!(creds.password, "pw:with:colons");
        assert!(!format!("{creds:?}").contains("pw"));
        let a = AgentAuth::new(TokenSource::Value("join-tok".into()), Some(creds));
        assert!(a.allows(&headers("Bearer join-tok")));
        assert!(a.allows(&headers("bearer  join-tok ")));
        assert!(a.allows(&headers(&basic("ops", "pw:with:colons"))));
        for bad in [
            "Bearer join-to",
            "Bearer join-tokk",
            "Bearer",
            "join-tok",
            "token=join-tok",
            "Basic !!!",
        ] {
            assert!(!a.allows(&headers(bad)), "{bad}");
        }
        assert!(!a.allows(&headers(&basic("ops", "wrong"))));
        assert!(!a.allows(&headers(&basic("other", "pw:with:colons"))));
        assert!(!a.allows(&HeaderMap::new()));
        let no_basic = AgentAuth::new(TokenSource::Value("join-tok".into()), None);
        assert!(!no_basic.allows(&headers(&basic("ops", "pw:with:colons"))));
        assert!(AgentAuth::off().allows(&HeaderMap::new()));
        assert!(!AgentAuth::off().enabled());
        for bad in ["", "user", ":pw", "user:"] {
            assert!(HttpCredentials::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refusal_names_both_schemes_in_plain_text() {
        let r = unauthorized();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            challenges,
            [
                "Basic realm=\"mesos-agent\"",
                "Bearer realm=\"mesos-agent\""
            ]
        );
        assert!(r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
    }
}
