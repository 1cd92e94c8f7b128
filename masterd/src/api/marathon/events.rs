//! `GET /v2/events`: Marathon's event stream as Server-Sent Events (spec §1.6).
//!
//! Frames are written as Marathon's Jetty writes them (`event:` then `data:` with one line of
//! JSON, CRLF line endings: marathon-lb splits on `\r\n`), plus, beyond Marathon, an `id:` on every
//! frame. A client that reconnects with `Last-Event-ID` gets every kept event after that id
//! before the live ones, with no gap and no duplicate (see `events::bus`). A keep-alive comment
//! goes out after 15 s without an event (marathon-lb's curl gives up after 300 s of silence). A
//! reader that falls `--event-stream-max-outstanding` events behind gets a final
//! `event_stream_detached` with a `reason` and is disconnected: it is never silently skipped past
//! events.
//!
//! `event_type` (repeatable) filters; `plan-format=light` drops the `original`/`target` groups
//! from deployment events' plans (they are sent otherwise, as marathon-python 0.13.0 needs them,
//! spec §4.2). Attaching and detaching publish `event_stream_attached`/`_detached` to everyone.

use super::error::MarathonError;
use super::query::Query;
use crate::cluster::Core;
use crate::events::bus::Numbered;
use crate::events::MarathonEvent;
use crate::listener::Peer;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

/// How long a stream may stay silent before a keep-alive comment is sent.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v2/events`.
pub async fn stream(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    let accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"));
    if !accepts {
        return Err(MarathonError::MethodNotAllowed(
            "/v2/events needs the header 'Accept: text/event-stream'".into(),
        ));
    }
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    MarathonError::BadRequest(
                        "Last-Event-ID must be the id of an event (a number)".into(),
                    )
                })?,
        ),
    };
    let wanted: BTreeSet<String> = q
        .all("event_type")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let options = Options {
        wanted,
        light: q
            .first("plan-format")
            .is_some_and(|f| f.eq_ignore_ascii_case("light")),
        keep_alive: KEEP_ALIVE,
    };
    let remote = peer.map_or_else(String::new, |Extension(ConnectInfo(p))| {
        p.addr.ip().to_string()
    });
    let reader = Reader::attach(core, remote, last_event_id, options);
    let body = Body::from_stream(futures_util::stream::unfold(reader, |mut r| async move {
        r.next_chunk().await.map(|c| (Ok::<_, Infallible>(c), r))
    }));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies in front of the master must not hold frames back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Who asked for a change, for `api_post_event`: the client's IP and the request's path.
pub struct Origin {
    pub client_ip: String,
    pub uri: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map_or_else(String::new, |ConnectInfo(p)| p.addr.ip().to_string());
        Ok(Origin {
            client_ip,
            uri: parts.uri.path().to_owned(),
        })
    }
}

impl Origin {
    /// Publishes one `api_post_event` per app a create or update stored (spec §1.6).
    pub fn api_post(&self, core: &Core, apps: &[crate::services::app_definition::AppDefinition]) {
        for app in apps {
            core.publish(MarathonEvent::ApiPostEvent {
                client_ip: self.client_ip.clone(),
                uri: self.uri.clone(),
                app_definition: serde_json::to_value(app).unwrap_or_default(),
            });
        }
    }
}

/// What one stream asked for.
pub struct Options {
    /// The event types to send; empty: all.
    pub wanted: BTreeSet<String>,
    /// `plan-format=light`.
    pub light: bool,
    pub keep_alive: Duration,
}

/// One attached reader: the replay still to send, then the live feed.
pub struct Reader {
    core: Arc<Core>,
    rx: Receiver<Numbered>,
    replay: VecDeque<Bytes>,
    /// The newest id handled (sent or filtered out); live events at or below it were replayed.
    cursor: u64,
    options: Options,
    remote: String,
    /// Set when the reader fell too far behind: the stream ends after saying so.
    lagged: Option<String>,
    ended: bool,
}

impl Reader {
    /// Subscribes, publishes `event_stream_attached`, and queues the replay after `last_event_id`.
    pub fn attach(
        core: Arc<Core>,
        remote: String,
        last_event_id: Option<u64>,
        options: Options,
    ) -> Self {
        let rx = core.events().subscribe();
        core.publish(MarathonEvent::EventStreamAttached {
            remote_address: remote.clone(),
        });
        let mut reader = Self {
            core,
            rx,
            replay: VecDeque::new(),
            cursor: 0,
            options,
            remote,
            lagged: None,
            ended: false,
        };
        if let Some(after) = last_event_id {
            reader.cursor = after;
            let replay = reader.core.events().after(after);
            if replay.truncated {
                let oldest = replay.events.first().map_or(0, |e| e.id);
                reader.replay.push_back(unnumbered(
                    "replay_truncated",
                    &serde_json::json!({
                        "eventType": "replay_truncated",
                        "lastEventId": after,
                        "oldestKeptId": oldest,
                    })
                    .to_string(),
                ));
            }
            for ev in replay.events {
                reader.cursor = ev.id;
                if let Some(frame) = reader.frame(&ev) {
                    reader.replay.push_back(frame);
                }
            }
        }
        reader
    }

    /// The next bytes to write, or `None` when the stream is over.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.replay.pop_front() {
            return Some(frame);
        }
        if self.ended {
            return None;
        }
        loop {
            match tokio::time::timeout(self.options.keep_alive, self.rx.recv()).await {
                Err(_) => return Some(Bytes::from_static(b":\r\n\r\n")),
                Ok(Ok(ev)) => {
                    if ev.id <= self.cursor {
                        continue;
                    }
                    self.cursor = ev.id;
                    if let Some(frame) = self.frame(&ev) {
                        return Some(frame);
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    let reason = format!(
                        "the reader fell more than {} events behind ({missed} not sent); \
                         reconnect with Last-Event-ID: {} to resume",
                        self.core.cfg.event_stream_max_outstanding, self.cursor
                    );
                    self.ended = true;
                    let detached = MarathonEvent::EventStreamDetached {
                        remote_address: self.remote.clone(),
                        reason: Some(reason.clone()),
                    };
                    self.lagged = Some(reason);
                    let body = detached.to_json(&crate::events::timestamp());
                    return Some(unnumbered(detached.event_type(), &body.to_string()));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    }

    /// The frame of `ev` for this reader, or `None` when its type is filtered out.
    fn frame(&self, ev: &Numbered) -> Option<Bytes> {
        if !self.options.wanted.is_empty() && !self.options.wanted.contains(&ev.event_type) {
            return None;
        }
        let body = if self.options.light && ev.event_type.starts_with("deployment_") {
            light_plan(&ev.body).unwrap_or_else(|| ev.body.clone())
        } else {
            ev.body.clone()
        };
        Some(Bytes::from(format!(
            "id: {}\r\nevent: {}\r\ndata: {}\r\n\r\n",
            ev.id, ev.event_type, body
        )))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.core.publish(MarathonEvent::EventStreamDetached {
            remote_address: std::mem::take(&mut self.remote),
            reason: self.lagged.take(),
        });
    }
}

/// A frame without an `id:` (it must not move the client's Last-Event-ID).
fn unnumbered(event_type: &str, body: &str) -> Bytes {
    Bytes::from(format!("event: {event_type}\r\ndata: {body}\r\n\r\n"))
}

/// A deployment event's body with only the light plan (`id`, `steps`, `version`).
fn light_plan(body: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    let plan = v.get_mut("plan")?.as_object_mut()?;
    plan.remove("original");
    plan.remove("target");
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_light_plan_keeps_id_steps_and_version() {
        let heavy = serde_json::json!({
            "eventType": "deployment_success",
            "id": "d1",
            "plan": {"id": "d1", "steps": [], "version": "v", "original": {}, "target": {}},
        })
        .to_string();
        let light: serde_json::Value =
            serde_json::from_str(&light_plan(&heavy).unwrap_or_default()).unwrap();
        assert_eq!(
            light["plan"],
            serde_json::json!({"id": "d1", "steps": [], "version": "v"})
        );
        assert_eq!(light["id"], "d1");
    }

    #[test]
    fn frames_use_crlf_and_unnumbered_frames_carry_no_id() {
        let f = unnumbered("event_stream_detached", "{}");
        assert_eq!(&f[..], b"event: event_stream_detached\r\ndata: {}\r\n\r\n");
    }
}
