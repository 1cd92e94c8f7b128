//! The SUBSCRIBE answer: a chunked RecordIO stream (`<length>\n<json>`) of events with the
//! `Mesos-Stream-Id` header, HEARTBEATs every [`super::HEARTBEAT_INTERVAL`], ending when the
//! framework is replaced or removed. When the client goes away the framework is marked
//! disconnected and its failover timeout starts.

use super::HEARTBEAT_INTERVAL;
use crate::cluster::Core;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One RecordIO record: the decimal length, a newline, the bytes.
pub fn record(event: &Value) -> Bytes {
    let body = event.to_string();
    Bytes::from(format!("{}\n{body}", body.len()))
}

/// Marks the framework disconnected when the stream is dropped (client gone or stream ended).
struct Disconnect {
    core: Arc<Core>,
    framework: String,
    stream_id: String,
}

impl Drop for Disconnect {
    fn drop(&mut self) {
        let core = self.core.clone();
        let framework = std::mem::take(&mut self.framework);
        let stream_id = std::mem::take(&mut self.stream_id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { disconnected(&core, &framework, &stream_id).await });
        }
    }
}

/// The stream `stream_id` of `framework` closed: unless a newer one replaced it, the framework
/// is disconnected, its offers are rescinded (withdrawn) and its failover timeout starts.
pub async fn disconnected(core: &Core, framework: &str, stream_id: &str) {
    let mut guard = core.state().await;
    let st = &mut *guard;
    let Some(fw) = st.frameworks.frameworks.get_mut(framework) else {
        return;
    };
    if fw.conn.as_ref().is_none_or(|c| c.stream_id != stream_id) {
        return;
    }
    tracing::info!(
        framework,
        "framework disconnected; its failover timeout starts"
    );
    fw.conn = None;
    fw.disconnected_since = Some(tokio::time::Instant::now());
    super::offers::withdraw_framework(&mut st.frameworks, &mut st.cluster, framework);
}

/// The answer to a subscription that is refused: one ERROR event, then the stream ends.
pub fn error_response(message: &str) -> Response {
    let event = json!({"type": "ERROR", "error": {"message": message}});
    let one = futures_util::stream::once(async move { Ok::<_, Infallible>(record(&event)) });
    let mut r = Response::new(Body::from_stream(one));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The 200 answer carrying the events `rx` yields, with HEARTBEATs between them.
pub fn response(
    core: Arc<Core>,
    framework: String,
    stream_id: String,
    rx: mpsc::UnboundedReceiver<Value>,
) -> Response {
    let header_id = HeaderValue::from_str(&stream_id).ok();
    let guard = Disconnect {
        core,
        framework,
        stream_id,
    };
    let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
    let beat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
    let events =
        futures_util::stream::unfold((rx, beat, guard), |(mut rx, mut beat, guard)| async move {
            let event = tokio::select! {
                e = rx.recv() => e?,
                _ = beat.tick() => json!({"type": "HEARTBEAT"}),
            };
            Some((Ok::<_, Infallible>(record(&event)), (rx, beat, guard)))
        });
    let mut r = Response::new(Body::from_stream(events));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(id) = header_id {
        h.insert("Mesos-Stream-Id", id);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_its_length_a_newline_and_the_json() {
        let r = record(&json!({"type": "HEARTBEAT"}));
        assert_eq!(&r[..], b"20\n{\"type\":\"HEARTBEAT\"}");
    }
}
