//! A task's sandbox through the master, so that a client needs only the master:
//! `GET /gantry/v1/tasks/{task_id}/files/{browse|read|download}?path=&offset=&length=`. The
//! master finds the task (running, or among the recently completed), the agent it ran on and
//! that agent's HTTP address (`AgentInfo.hostname` and `.port`), and forwards to the agent's
//! Mesos `/files` endpoint with the task's sandbox directory put before `path` (which is relative
//! to the sandbox). Listings come back with paths relative to the sandbox; reads and downloads
//! are streamed through. Every answer carries the task's state in `X-Gantry-Task-State` and
//! whether it is terminal in `X-Gantry-Task-Terminal`, so that a follower knows when to stop.
//! Needs the `read` permission (see [`crate::auth::Need::of`]). The master authenticates to the
//! agent with `Authorization: Bearer <the join token that agent connected with>`
//! ([`crate::agent_secrets`]), marked sensitive.

use crate::cluster::Core;
use crate::store::records::AgentLifecycle;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gantry_proto::TaskId;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The route prefix of every files path (`/gantry/v1/tasks/{id}/files/{op}`).
const PREFIX: &str = "/gantry/v1/tasks/";

/// The most bytes of an agent's listing (or error) the master buffers.
const MAX_BUFFERED: usize = 64 << 20;

/// The state header.
pub const TASK_STATE_HEADER: &str = "x-gantry-task-state";
/// The terminal header (`true`/`false`).
pub const TASK_TERMINAL_HEADER: &str = "x-gantry-task-terminal";

/// True for `/gantry/v1/tasks/{id}/files/{op}` (the routes that need only `read`).
pub fn is_files_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return false;
    };
    match rest.rsplit_once("/files/") {
        Some((id, op)) => !id.is_empty() && !id.contains('/') && Op::parse(op).is_some(),
        None => false,
    }
}

/// The files routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/gantry/v1/tasks/{task_id}/files/{op}", get(proxy))
}

/// Which endpoint of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Browse,
    Read,
    Download,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        match s.strip_suffix(".json").unwrap_or(s) {
            "browse" => Some(Op::Browse),
            "read" => Some(Op::Read),
            "download" => Some(Op::Download),
            _ => None,
        }
    }

    fn agent_path(self) -> &'static str {
        match self {
            Op::Browse => "/files/browse",
            Op::Read => "/files/read",
            Op::Download => "/files/download",
        }
    }
}

/// The query, passed on.
#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    pub path: Option<String>,
    pub offset: Option<String>,
    pub length: Option<String>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// A refusal before anything is forwarded: its status and message.
#[derive(Debug)]
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// The client for agents: plain HTTP (the agents' endpoint has no TLS), no proxy from the
/// environment, bounded connect and read waits.
fn agent_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The agent's path for `rel` (relative to the sandbox `dir`); `..` and absolute paths are
/// refused here already (the agent refuses them too).
fn agent_file_path(dir: &str, rel: &str) -> Result<String, Refused> {
    if rel.starts_with('/') {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            format!("'{rel}' is absolute: give a path relative to the task's sandbox"),
        ));
    }
    if rel.split('/').any(|c| c == "..") {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            format!("'{rel}' leaves the task's sandbox ('..' is not allowed)"),
        ));
    }
    let rel = rel.trim_start_matches("./").trim_end_matches('/');
    Ok(if rel.is_empty() || rel == "." {
        dir.to_string()
    } else {
        format!("{dir}/{rel}")
    })
}

/// Where a task's files are: the agent's address and the task's state.
struct Located {
    base: String,
    state: gantry_proto::TaskState,
    /// The join token the agent connected with; `None` when it has not connected since this
    /// master started (the agent will refuse: it is asked anyway, for its own answer).
    token: Option<String>,
}

async fn locate(core: &Core, id: &TaskId) -> Result<Located, Refused> {
    let guard = core.state().await;
    let st = &guard.cluster;
    let rec = st
        .tasks()
        .get(id)
        .or_else(|| st.completed.iter().rev().find(|r| &r.info.task_id == id))
        .map(|r| (r.info.agent_id.clone(), r.state));
    // A job run's task is found in its run history long after the core forgot it.
    let from_history = || {
        guard
            .batch
            .history
            .values()
            .flatten()
            .find(|r| r.task_id.as_deref() == Some(id.as_str()))
            .and_then(|r| {
                let state = r.task_state.as_deref().and_then(|n| {
                    gantry_proto::TaskState::ALL
                        .into_iter()
                        .find(|s| s.name() == n)
                })?;
                Some((gantry_proto::AgentId(r.agent_id.clone()?), state))
            })
    };
    let (agent_id, state) = rec.or_else(from_history).ok_or_else(|| {
        Refused(
            StatusCode::NOT_FOUND,
            format!("Task '{id}' does not exist (or ended too long ago)"),
        )
    })?;
    let agent_id = &agent_id;
    let agent = st
        .agents
        .get(agent_id)
        .filter(|a| a.record.lifecycle != AgentLifecycle::Gone)
        .ok_or_else(|| {
            Refused(
                StatusCode::NOT_FOUND,
                format!("the agent '{agent_id}' that ran task '{id}' is gone"),
            )
        })?;
    let info = &agent.record.info;
    let host = if info.hostname.contains(':') && !info.hostname.starts_with('[') {
        format!("[{}]", info.hostname)
    } else {
        info.hostname.clone()
    };
    Ok(Located {
        base: format!("http://{host}:{}", info.port),
        state,
        token: core.agent_secrets.token_of(agent_id),
    })
}

async fn proxy(
    State(core): State<Arc<Core>>,
    Path((task_id, op)): Path<(String, String)>,
    Query(q): Query<FilesQuery>,
) -> Response {
    let Some(op) = Op::parse(&op) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("unknown files endpoint '{op}' (browse, read or download)"),
        );
    };
    let id = TaskId(task_id);
    let dir = id.dir_name();
    let rel = q.path.as_deref().unwrap_or("");
    if rel.is_empty() && op != Op::Browse {
        return error(StatusCode::BAD_REQUEST, "Expecting 'path=value' in query");
    }
    let file = match agent_file_path(&dir, rel) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let located = match locate(&core, &id).await {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let mut resp = forward(&located, op, &dir, &file, &q).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(located.state.name()) {
        h.insert(HeaderName::from_static(TASK_STATE_HEADER), v);
    }
    h.insert(
        HeaderName::from_static(TASK_TERMINAL_HEADER),
        HeaderValue::from_static(if located.state.is_terminal() {
            "true"
        } else {
            "false"
        }),
    );
    resp
}

/// Reads at most `max` bytes of a body.
async fn bounded_body(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("the agent's answer is over {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Strips the sandbox's directory from an agent's path: `dir/stdout` -> `stdout`.
fn relative<'a>(dir: &str, p: &'a str) -> &'a str {
    if p == dir {
        return "";
    }
    p.strip_prefix(dir)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(p)
}

async fn forward(to: &Located, op: Op, dir: &str, file: &str, q: &FilesQuery) -> Response {
    let base = to.base.as_str();
    let client = match agent_client() {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let mut query = vec![("path", file)];
    if let Some(o) = q.offset.as_deref() {
        query.push(("offset", o));
    }
    if let Some(l) = q.length.as_deref() {
        query.push(("length", l));
    }
    let url = format!("{base}{}", op.agent_path());
    let mut req = client.get(&url).query(&query);
    if let Some(t) = &to.token {
        match HeaderValue::from_str(&format!("Bearer {t}")) {
            Ok(mut v) => {
                v.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, v);
            }
            Err(_) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the agent's join token cannot be sent in a header",
                )
            }
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                &format!("cannot reach the task's agent at {base}: {e}"),
            )
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::UNAUTHORIZED {
        // The agent's refusal is not the client's: its credentials for this master were fine.
        let why = if to.token.is_some() {
            "the task's agent refused the master's credentials (the join token it connected with)"
        } else {
            "the task's agent has not connected to this master since it started, so the master \
             holds no credential for it; try again once the agent is connected"
        };
        return error(StatusCode::BAD_GATEWAY, why);
    }
    if !status.is_success() {
        let text = bounded_body(resp, 64 * 1024).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        // The agent names paths from its sandboxes directory; the client gave them from the
        // task's sandbox.
        let msg = text.trim().replace(&format!("'{dir}/"), "'");
        let msg = if msg.is_empty() {
            format!("the agent answered {status}")
        } else {
            msg
        };
        return error(status, &msg);
    }
    match op {
        Op::Browse => {
            let bytes = match bounded_body(resp, MAX_BUFFERED).await {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_GATEWAY, &e),
            };
            let mut list: Vec<Value> = match serde_json::from_slice(&bytes) {
                Ok(l) => l,
                Err(e) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        &format!("the agent's listing is not a JSON array: {e}"),
                    )
                }
            };
            for entry in &mut list {
                if let Some(p) = entry["path"].as_str() {
                    entry["path"] = Value::String(relative(dir, p).to_string());
                }
            }
            Json(Value::Array(list)).into_response()
        }
        Op::Read | Op::Download => stream_through(resp, status),
    }
}

/// The agent's answer, streamed: its status, type, length and disposition headers, and body.
fn stream_through(resp: reqwest::Response, status: StatusCode) -> Response {
    let mut headers = Vec::new();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_DISPOSITION,
    ] {
        if let Some(v) = resp
            .headers()
            .get(name.as_str())
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            headers.push((name, v));
        }
    }
    let stream = futures_util::stream::unfold(Some(resp), |r| async move {
        let mut r = r?;
        match r.chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    for (name, v) in headers {
        out.headers_mut().insert(name, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_paths_are_recognised() {
        assert!(is_files_path("/gantry/v1/tasks/web.1/files/read"));
        assert!(is_files_path("/gantry/v1/tasks/web.1/files/browse.json"));
        assert!(is_files_path("/gantry/v1/tasks/web.1/files/download"));
        assert!(!is_files_path("/gantry/v1/tasks/web.1/files/delete"));
        assert!(!is_files_path("/gantry/v1/tasks//files/read"));
        assert!(!is_files_path("/gantry/v1/tasks/a/b/files/read"));
        assert!(!is_files_path("/gantry/v1/audit"));
    }

    #[test]
    fn sandbox_paths_stay_inside() {
        let ok = |rel: &str| agent_file_path("t1", rel).ok();
        assert_eq!(ok("").as_deref(), Some("t1"));
        assert_eq!(ok(".").as_deref(), Some("t1"));
        assert_eq!(ok("./").as_deref(), Some("t1"));
        assert_eq!(ok("stdout").as_deref(), Some("t1/stdout"));
        assert_eq!(ok("./sub/f").as_deref(), Some("t1/sub/f"));
        assert_eq!(ok("sub/").as_deref(), Some("t1/sub"));
        assert_eq!(ok("a..b").as_deref(), Some("t1/a..b"));
        for bad in ["/etc/passwd", "../t2/stdout", "sub/../../x", ".."] {
            let r = agent_file_path("t1", bad).err().map(|r| r.0);
            assert_eq!(r, Some(StatusCode::FORBIDDEN), "{bad}");
        }
    }

    #[test]
    fn listed_paths_become_relative() {
        assert_eq!(relative("t1", "t1/stdout"), "stdout");
        assert_eq!(relative("t1", "t1"), "");
        assert_eq!(relative("t1", "t10/x"), "t10/x");
    }
}
