//! The layer every request passes before a handler: request-target length (414), requests in flight
//! (503), credentials (401), rate limit (429), permission (403), body size (413, then the
//! connection is closed) and Content-Type (415). After the handler it puts every error that no
//! handler shaped into its API's error body, and writes each mutation to the audit log (who, what,
//! when, from where, and the answer) before the answer leaves.

use super::surface::{status_sentence, Surface};
use crate::auth::{Authenticator, Denied, Need, Principal};
use crate::config::Limits;
use crate::listener::Peer;
use crate::store::records::AuditRecord;
use crate::store::{AsyncStore, Write};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Everything the guard needs, shared by all requests.
pub struct Security {
    pub auth: Authenticator,
    pub limits: Limits,
    pub rate: super::rate_limit::RateLimiter,
    in_flight: Semaphore,
    store: AsyncStore,
}

impl Security {
    pub fn new(auth: Authenticator, limits: Limits, store: AsyncStore) -> Self {
        Self {
            auth,
            in_flight: Semaphore::new(limits.max_concurrent_requests),
            limits,
            rate: Default::default(),
            store,
        }
    }
}

/// Who is calling, for handlers that check more than the route's permission (run-as users).
/// `None` when authentication is off or the route is open.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Arc<Principal>>);

impl Caller {
    /// Whether the caller may have tasks run as `user` (always, with authentication off).
    pub fn may_run_as(&self, user: &str) -> bool {
        self.0.as_ref().is_none_or(|p| p.may_run_as(user))
    }

    pub fn name(&self) -> &str {
        self.0.as_ref().map_or("-", |p| p.name.as_str())
    }
}

/// True for methods that change something (audited; bodies checked).
fn mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn guard(
    State(sec): State<Arc<Security>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let surface = Surface::of(req.uri().path());
    let peer = peer.addr;
    let (resp, who) = checked(&sec, peer, surface, req, next).await;
    let resp = shape(surface, resp);
    if mutating(&method) {
        let entry = AuditRecord {
            seq: 0,
            at: gantry_proto::time::now_secs(),
            principal: who,
            method: method.to_string(),
            path: truncate(&target, 2048),
            status: resp.status().as_u16(),
            remote: peer.to_string(),
        };
        if let Err(e) = sec.store.apply(vec![Write::Audit(Box::new(entry))]).await {
            tracing::error!(error = %e, "cannot write the audit log");
            return surface.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the audit log cannot be written; the change was made",
            );
        }
    }
    resp
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The checks, then the handler. Returns the answer and the caller's name for the audit log.
async fn checked(
    sec: &Security,
    peer: SocketAddr,
    surface: Surface,
    mut req: Request,
    next: Next,
) -> (Response, String) {
    let limits = &sec.limits;
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri_bytes {
        let msg = format!(
            "Request-URI Too Long: at most {} bytes of path and query",
            limits.max_uri_bytes
        );
        return (surface.error(StatusCode::URI_TOO_LONG, &msg), "-".into());
    }
    let Ok(_permit) = sec.in_flight.try_acquire() else {
        let msg = format!(
            "Too many concurrent requests: at most {}; retry shortly",
            limits.max_concurrent_requests
        );
        return (
            surface.error(StatusCode::SERVICE_UNAVAILABLE, &msg),
            "-".into(),
        );
    };
    let need = Need::of(req.method(), req.uri().path());
    if need == Need::Nothing {
        // Open routes ignore credentials: the agent link's `Authorization` is the join token.
        req.extensions_mut().insert(Caller(None));
        return (next.run(req).await, "-".into());
    }
    let principal = match sec.auth.authenticate(req.headers()) {
        Ok(p) => p,
        Err(d) => return (denied(surface, &d), "-".into()),
    };
    let who = principal
        .as_ref()
        .map_or("-", |p| p.name.as_str())
        .to_string();
    // Rates are per principal: with authentication off (`gantry dev`) there are none to limit.
    if sec.auth.enabled() {
        let key = match &principal {
            Some(p) => p.name.clone(),
            None => format!("anonymous@{}", peer.ip()),
        };
        let rate = principal
            .as_ref()
            .and_then(|p| p.rate_limit)
            .unwrap_or(limits.rate_per_sec);
        if let Err(wait) = sec.rate.take(&key, rate, std::time::Instant::now()) {
            let msg = format!("Too many requests: at most {rate} per second; retry shortly");
            let mut r = surface.error(StatusCode::TOO_MANY_REQUESTS, &msg);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return (r, who);
        }
    }
    if let Err(d) = sec.auth.authorize(principal.as_deref(), need) {
        return (denied(surface, &d), who);
    }
    if mutating(req.method()) {
        if let Some(r) = body_refusal(surface, &req, limits.max_body_bytes) {
            return (r, who);
        }
    }
    req.extensions_mut().insert(Caller(principal));
    (next.run(req).await, who)
}

/// 413 for a declared length over the limit (never read); 415 for a body that is not JSON.
fn body_refusal(surface: Surface, req: &Request, max: usize) -> Option<Response> {
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > max as u64) {
        let msg = format!("Request body too large: at most {max} bytes");
        return Some(surface.error(StatusCode::PAYLOAD_TOO_LARGE, &msg));
    }
    let has_body = length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    // The Mesos v1 APIs also take protobuf; they check their own media types.
    if !has_body || req.uri().path().starts_with("/api/") {
        return None;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return None;
    }
    Some(surface.error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "HTTP 415 Unsupported Media Type: send the body as Content-Type: application/json",
    ))
}

fn denied(surface: Surface, d: &Denied) -> Response {
    match d {
        Denied::Unauthenticated => {
            let mut r = match surface {
                Surface::Mesos => surface.error(StatusCode::UNAUTHORIZED, "Unauthorized"),
                _ => surface.error(StatusCode::UNAUTHORIZED, "Invalid username or password."),
            };
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Gantry\""),
            );
            r
        }
        Denied::Forbidden { why, .. } => {
            let msg = match surface {
                Surface::Marathon => "Not Authorized to perform this action!".to_string(),
                _ => format!("Forbidden: {why}"),
            };
            surface.error(StatusCode::FORBIDDEN, &msg)
        }
    }
}

/// Puts an error no handler shaped (empty or plain text from a lower layer: 405, 413, axum's
/// extractor rejections) into the API's shape; closes the connection after a 413, whose body may
/// not have been read, so the next request on it is never taken for the rest of this one.
fn shape(surface: Surface, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut out = if is_json || (surface == Surface::Mesos && !body_is_empty(&resp)) {
        resp
    } else {
        let allow = resp.headers().get(header::ALLOW).cloned();
        let mut r = surface.error(status, &status_sentence(status));
        if let Some(a) = allow {
            r.headers_mut().insert(header::ALLOW, a);
        }
        r
    };
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        out.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

fn body_is_empty(resp: &Response) -> bool {
    use axum::body::HttpBody;
    resp.body().size_hint().exact() == Some(0)
}
