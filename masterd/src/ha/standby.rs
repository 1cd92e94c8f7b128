//! What a master that does not lead answers (docs/ha-standby.md): its own `/ping`, `/health`,
//! `/version`, `/metrics` and the leader's address; Marathon's, Chronos's and Gantry's APIs
//! proxied to the leader (as Marathon and Chronos do); Mesos's endpoints, the agents' link and the
//! web UI redirected there with 307 (as Mesos does), and Marathon's event stream with 302 (as
//! Marathon ≥ 1.7 does). With no leader known, or while the leader named is this master itself
//! (it is taking over), everything that is not answered locally is a 503 in the API's own shape.

use super::proxy::{self, Hop, ProxyError, PROXIED_BY};
use crate::api::surface::Surface;
use crate::auth::{Authenticator, Denied, Need};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use gantry_daemon::masters::MasterInfo;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The master's default `max_body_bytes` (config.rs): what a standby accepts to forward.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 << 20;

/// How a standby is set up; [`Options::default`] is what [`router`] uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// The client requests are forwarded with; `None`: [`proxy::client`] with no private CA.
    /// Give one built by `proxy::client(Some(ca_pem))` when the masters serve HTTPS with
    /// certificates a private CA signed.
    pub client: Option<reqwest::Client>,
    /// The largest request body forwarded (the master's `max_body_bytes`); larger is a 413.
    pub max_body_bytes: usize,
    /// How long the leader may take to start answering a forwarded request.
    pub answer_timeout: Duration,
    /// The master's principals, to check the credentials of what the standby answers itself
    /// (`/metrics`, the leader's address: `read`, as on the leader; `/ping`, `/health`,
    /// `/version` stay open). `None`: those answers are open. Forwarded and redirected requests
    /// are always left to the leader.
    pub auth: Option<Arc<Authenticator>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            answer_timeout: proxy::ANSWER_TIMEOUT,
            auth: None,
        }
    }
}

/// A standby's router: `leader` names the current leader (`None` while none is known), `me` is
/// this master. Forwards over plain HTTP, or HTTPS to leaders whose certificates chain to the
/// public roots; see [`router_with_client`] for a private CA.
pub fn router(leader: watch::Receiver<Option<MasterInfo>>, me: MasterInfo) -> Router {
    router_with(leader, me, Options::default())
}

/// As [`router`], forwarding with `client` (build it with [`proxy::client`] to trust the
/// masters' CA; it must not follow redirects).
pub fn router_with_client(
    leader: watch::Receiver<Option<MasterInfo>>,
    me: MasterInfo,
    client: reqwest::Client,
) -> Router {
    router_with(
        leader,
        me,
        Options {
            client: Some(client),
            ..Options::default()
        },
    )
}

/// As [`router`], with every setting given.
pub fn router_with(
    leader: watch::Receiver<Option<MasterInfo>>,
    me: MasterInfo,
    opts: Options,
) -> Router {
    let client = match opts.client {
        Some(c) => Ok(c),
        None => proxy::client(None).map_err(|e| e.to_string()),
    };
    let state = Arc::new(Standby {
        leader,
        me_host_port: me.host_port(),
        me,
        client,
        max_body: opts.max_body_bytes,
        answer_timeout: opts.answer_timeout,
        auth: opts.auth,
        started: Instant::now(),
        counts: Counts::default(),
    });
    Router::new().fallback(handle).with_state(state)
}

/// What the standby does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `/ping`: `pong` (Marathon's; as text, or the JSON string).
    Ping,
    /// `/health`: 200, empty (Mesos's).
    Health,
    /// `/version`: Mesos's version JSON.
    Version,
    /// `/metrics`: this master's own metrics.
    Metrics,
    /// `/metrics/snapshot`: Mesos's keys, `master/elected` 0.
    MetricsSnapshot,
    /// `GET /v2/leader`: the leader's `host:port`, 404 without one.
    MarathonLeader,
    /// `GET /leader`, `/v1/scheduler/leader`, `/scheduler/leader`: Chronos's `{"leader"}`.
    ChronosLeader,
    /// A local endpoint with a method it does not take: 405.
    NotAllowed,
    /// `/master/redirect`: 307 to the leader's base URL.
    MasterRedirect,
    /// `GET /v2/events`: 302 to the leader's `/v2/events`, query kept.
    EventsRedirect,
    /// Mesos endpoints, the agents' link, the web UI: 307 to the same path on the leader.
    Redirect,
    /// Everything else (Marathon's `/v2`, Chronos, `/gantry`, unknown paths): forwarded.
    Proxy,
}

/// Mesos's operator endpoints outside `/master/` (the master answers both forms).
const MESOS_TOP_LEVEL: [&str; 12] = [
    "/state",
    "/state.json",
    "/state-summary",
    "/frameworks",
    "/slaves",
    "/tasks",
    "/roles",
    "/flags",
    "/teardown",
    "/quota",
    "/weights",
    "/maintenance",
];

/// `path` is `prefix` or below it (`/master/x` is under `/master`, `/masters` is not).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

/// The web UI's pages (masterd/src/ui).
fn is_ui(path: &str) -> bool {
    path == "/" || under(path, "/ui")
}

/// What a standby does with `method path`.
pub fn classify(method: &Method, path: &str) -> Action {
    let read = *method == Method::GET || *method == Method::HEAD;
    let local = match path {
        "/ping" => Action::Ping,
        "/health" => Action::Health,
        "/version" => Action::Version,
        "/metrics" => Action::Metrics,
        "/metrics/snapshot" => Action::MetricsSnapshot,
        // DELETE /v2/leader (abdication) is the leader's to answer.
        "/v2/leader" if read => return Action::MarathonLeader,
        "/leader" | "/v1/scheduler/leader" | "/scheduler/leader" => Action::ChronosLeader,
        _ => {
            if under(path, "/master/redirect") {
                return Action::MasterRedirect;
            }
            if path == "/v2/events" && read {
                return Action::EventsRedirect;
            }
            if under(path, "/master")
                || under(path, "/api/v1")
                || MESOS_TOP_LEVEL.iter().any(|p| under(path, p))
                || path == gantry_proto::messages::AGENT_CONNECT_PATH
                || is_ui(path)
            {
                return Action::Redirect;
            }
            return Action::Proxy;
        }
    };
    if read {
        local
    } else {
        Action::NotAllowed
    }
}

/// Answers by kind, for `/metrics`.
#[derive(Default)]
struct Counts {
    local: AtomicU64,
    proxied: AtomicU64,
    redirected: AtomicU64,
    /// 503s: no leader, this master named leader, a loop.
    no_leader: AtomicU64,
    /// Forwarding failed (leader unreachable, too slow, body too large).
    failed: AtomicU64,
}

struct Standby {
    leader: watch::Receiver<Option<MasterInfo>>,
    me: MasterInfo,
    me_host_port: String,
    client: Result<reqwest::Client, String>,
    max_body: usize,
    answer_timeout: Duration,
    auth: Option<Arc<Authenticator>>,
    started: Instant,
    counts: Counts,
}

/// Who leads, as far as this standby can use it.
enum Leading {
    Unknown,
    /// The leader named is this master (it is taking over; its full API is not up yet).
    Me,
    Other(MasterInfo),
}

impl Standby {
    fn leading(&self) -> Leading {
        match &*self.leader.borrow() {
            None => Leading::Unknown,
            Some(l) if l.id == self.me.id || l.host_port() == self.me_host_port => Leading::Me,
            Some(l) => Leading::Other(l.clone()),
        }
    }
}

/// The 503 while no leader can take the request, in the shape of `path`'s API (plain text for
/// the web UI).
fn no_leader(path: &str, me: bool) -> Response {
    let msg = if me {
        "Could not determine the current leader: no leader is known yet (this master is \
         taking over the leadership); retry in a few seconds"
    } else {
        "Could not determine the current leader: no leader is known yet; retry in a few seconds"
    };
    let surface = if is_ui(path) {
        Surface::Mesos
    } else {
        Surface::of(path)
    };
    let mut r = surface.error(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    chronos_cors(path, r)
}

/// Chronos's `CorsFilter` header, on Chronos answers made here.
fn chronos_cors(path: &str, mut r: Response) -> Response {
    if Surface::of(path) == Surface::Chronos || path == "/leader" {
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    r
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The client's address, when the listener recorded it.
fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    let ext = req.extensions();
    ext.get::<ConnectInfo<crate::listener::Peer>>()
        .map(|c| c.0.addr.ip())
        .or_else(|| {
            ext.get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

/// The request already passed a standby that forwarded it (ours or another's): forwarding it
/// again could loop.
fn already_proxied(headers: &HeaderMap, me: &str) -> Option<String> {
    if let Some(by) = headers.get(PROXIED_BY) {
        return Some(String::from_utf8_lossy(by.as_bytes()).into_owned());
    }
    let mine = format!("1.1 {me}");
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == mine)
        .then(|| me.to_owned())
}

async fn handle(State(s): State<Arc<Standby>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let action = classify(req.method(), &path);
    if let Some(refused) = s.auth.as_deref().and_then(|a| refused(a, action, &req)) {
        return counted(&s.counts.local, refused);
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    match action {
        Action::Ping => counted(
            &s.counts.local,
            crate::api::marathon::tasks::ping(req.headers().clone()).await,
        ),
        Action::Health => counted(&s.counts.local, StatusCode::OK.into_response()),
        Action::Version => counted(&s.counts.local, version()),
        Action::Metrics => counted(&s.counts.local, metrics(&s, req.headers())),
        Action::MetricsSnapshot => counted(
            &s.counts.local,
            Json(json!({
                "master/elected": 0.0,
                "master/uptime_secs": s.started.elapsed().as_secs_f64(),
            }))
            .into_response(),
        ),
        Action::MarathonLeader => {
            let leader = s.leader.borrow().as_ref().map(MasterInfo::host_port);
            let r = match leader {
                Some(l) => Json(json!({ "leader": l })).into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    Json(json!({"message": "There is no leader"})),
                )
                    .into_response(),
            };
            counted(&s.counts.local, r)
        }
        Action::ChronosLeader => {
            let leader = s.leader.borrow().as_ref().map(MasterInfo::host_port);
            let r = match leader {
                Some(l) => chronos_cors(&path, Json(json!({ "leader": l })).into_response()),
                None => no_leader(&path, false),
            };
            counted(&s.counts.local, r)
        }
        Action::NotAllowed => {
            let surface = Surface::of(&path);
            let mut r = surface.error(
                StatusCode::METHOD_NOT_ALLOWED,
                &crate::api::surface::status_sentence(StatusCode::METHOD_NOT_ALLOWED),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
            counted(&s.counts.local, r)
        }
        Action::MasterRedirect | Action::EventsRedirect | Action::Redirect => {
            let leader = match s.leading() {
                Leading::Other(l) => l,
                Leading::Me => return counted(&s.counts.no_leader, no_leader(&path, true)),
                Leading::Unknown => return counted(&s.counts.no_leader, no_leader(&path, false)),
            };
            let (status, location) = match action {
                Action::MasterRedirect => (StatusCode::TEMPORARY_REDIRECT, leader.base_url()),
                Action::EventsRedirect => (StatusCode::FOUND, leader.base_url() + &target),
                _ => (StatusCode::TEMPORARY_REDIRECT, leader.base_url() + &target),
            };
            counted(&s.counts.redirected, redirect(status, &location))
        }
        Action::Proxy => forward(&s, &path, req).await,
    }
}

/// Forwards to the leader; every way that fails is an error in the API's shape, never an empty
/// 200 (Marathon #3491).
async fn forward(s: &Standby, path: &str, req: Request) -> Response {
    let leader = match s.leading() {
        Leading::Other(l) => l,
        Leading::Me => return counted(&s.counts.no_leader, no_leader(path, true)),
        Leading::Unknown => return counted(&s.counts.no_leader, no_leader(path, false)),
    };
    let surface = Surface::of(path);
    if let Some(by) = already_proxied(req.headers(), &s.me_host_port) {
        let msg = format!(
            "Detected proxying loop: {by} already forwarded this request to this master, which \
             does not lead (the masters disagree about the leader); retry in a few seconds"
        );
        let r = surface.error(StatusCode::SERVICE_UNAVAILABLE, &msg);
        return counted(&s.counts.no_leader, chronos_cors(path, r));
    }
    let client = match &s.client {
        Ok(c) => c,
        Err(e) => {
            let r = surface.error(StatusCode::SERVICE_UNAVAILABLE, e);
            return counted(&s.counts.failed, chronos_cors(path, r));
        }
    };
    let base = leader.base_url();
    let hop = Hop {
        me: &s.me_host_port,
        client: client_ip(&req),
    };
    match proxy::forward(client, &base, req, s.max_body, hop, s.answer_timeout).await {
        Ok(mut r) => {
            if matches!(surface, Surface::Marathon | Surface::Gantry) {
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&base) {
                    h.insert("x-marathon-leader", v);
                }
                if let Ok(v) = HeaderValue::from_str(&format!("1.1 {}", s.me_host_port)) {
                    h.insert("x-marathon-via", v);
                }
            }
            counted(&s.counts.proxied, r)
        }
        Err(e) => {
            tracing::warn!(leader = %base, path, error = %e, "forwarding to the leader failed");
            counted(&s.counts.failed, failure(surface, path, &e))
        }
    }
}

/// A 401 or 403 for a local answer the caller may not have (as the leader's guard answers).
fn refused(auth: &Authenticator, action: Action, req: &Request) -> Option<Response> {
    let local = matches!(
        action,
        Action::Metrics | Action::MetricsSnapshot | Action::MarathonLeader | Action::ChronosLeader
    );
    let path = req.uri().path();
    let need = Need::of(req.method(), path);
    if !local || need == Need::Nothing {
        return None;
    }
    let denied = match auth.authenticate(req.headers()) {
        Ok(p) => auth.authorize(p.as_deref(), need).err()?,
        Err(d) => d,
    };
    let surface = Surface::of(path);
    let r = match denied {
        Denied::Unauthenticated => {
            let msg = match surface {
                Surface::Mesos => "Unauthorized",
                _ => "Invalid username or password.",
            };
            let mut r = surface.error(StatusCode::UNAUTHORIZED, msg);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Gantry\""),
            );
            r
        }
        Denied::Forbidden { why, .. } => {
            surface.error(StatusCode::FORBIDDEN, &format!("Forbidden: {why}"))
        }
    };
    Some(chronos_cors(path, r))
}

fn counted(c: &AtomicU64, r: Response) -> Response {
    c.fetch_add(1, Ordering::Relaxed);
    r
}

/// A failed forward: 413 for a body over the limit (the connection then closes, the rest of the
/// body unread), 400 for one that could not be read, else 503 (Chronos's sentence for Chronos).
fn failure(surface: Surface, path: &str, e: &ProxyError) -> Response {
    let (status, msg) = match e {
        ProxyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        ProxyError::Body(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        _ if surface == Surface::Chronos => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Error proxying request to leader (maybe the leadership just changed?): {e}"),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; the leadership may have just changed, retry in a few seconds"),
        ),
    };
    let mut r = surface.error(status, &msg);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    chronos_cors(path, r)
}

fn version() -> Response {
    Json(json!({
        "version": crate::api::mesos::MESOS_VERSION,
        "gantry_version": env!("CARGO_PKG_VERSION"),
        "build_user": "",
        "build_date": "",
        "build_time": 0,
    }))
    .into_response()
}

/// `/metrics`: Prometheus text when the client takes text (as the leader decides), else the
/// same numbers in Codahale's JSON shape.
fn metrics(s: &Standby, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants_text = accept.contains("text/plain")
        || accept.contains("openmetrics")
        || (accept.contains("*/*") && !accept.contains("application/json"));
    let known = u8::from(matches!(s.leading(), Leading::Other(_)));
    let c = &s.counts;
    let kinds = [
        ("local", c.local.load(Ordering::Relaxed)),
        ("proxied", c.proxied.load(Ordering::Relaxed)),
        ("redirected", c.redirected.load(Ordering::Relaxed)),
        ("no_leader", c.no_leader.load(Ordering::Relaxed)),
        ("proxy_failed", c.failed.load(Ordering::Relaxed)),
    ];
    if !wants_text {
        let counters: serde_json::Map<String, serde_json::Value> = kinds
            .iter()
            .map(|(k, n)| (format!("gantry.standby.{k}"), json!({ "count": n })))
            .collect();
        return Json(json!({
            "version": "4.0.0",
            "gauges": {
                "gantry.master.elected": {"value": 0},
                "gantry.master.leader_known": {"value": known},
            },
            "counters": counters,
        }))
        .into_response();
    }
    let mut out = String::new();
    out.push_str("# HELP gantry_master_elected 1 on the leading master, 0 on a standby.\n");
    out.push_str("# TYPE gantry_master_elected gauge\ngantry_master_elected 0\n");
    out.push_str(
        "# HELP gantry_master_leader_known 1 when this standby knows a leader to send to.\n",
    );
    out.push_str(&format!(
        "# TYPE gantry_master_leader_known gauge\ngantry_master_leader_known {known}\n"
    ));
    out.push_str("# HELP gantry_standby_requests_total Requests a standby answered, by how.\n");
    out.push_str("# TYPE gantry_standby_requests_total counter\n");
    for (k, n) in kinds {
        out.push_str(&format!(
            "gantry_standby_requests_total{{how=\"{k}\"}} {n}\n"
        ));
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
#[path = "standby_tests.rs"]
mod tests;
