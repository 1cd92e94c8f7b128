//! Whether an HA master accepts changes: the layer in front of the leader's API that answers every
//! mutation with 503, in the API's own error shape, while the master is unsure of its leadership
//! (disconnected from ZooKeeper) or has lost it. Reads are still served, from the last state.

use super::election::Lease;
use crate::api::surface::Surface;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::watch;

/// Why changes are refused now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Disconnected from ZooKeeper: may come back.
    Paused(String),
    /// No longer the leader: for good (the process starts again as a contender).
    Deposed(String),
}

impl Refusal {
    /// The message clients get.
    pub fn message(&self) -> String {
        match self {
            Refusal::Paused(why) => format!(
                "ZooKeeper is unreachable, so this master cannot be sure it still leads and accepts \
                 no changes until it is back ({why}); reads show the last state"
            ),
            Refusal::Deposed(why) => format!(
                "This master lost its leadership in ZooKeeper ({why}) and accepts no changes; \
                 retry against the leader (GET /v2/leader) once one is elected"
            ),
        }
    }
}

/// The shared switch: `None` while changes are accepted, and the leader's lease.
#[derive(Clone)]
pub struct Gate(Arc<watch::Sender<Option<Refusal>>>, Option<Arc<Lease>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::channel(None).0), None)
    }
}

impl Gate {
    /// A gate that also refuses changes while `lease` is stale.
    pub fn with_lease(lease: Arc<Lease>) -> Self {
        Gate(Arc::new(watch::channel(None).0), Some(lease))
    }

    /// Refuse changes until [`Gate::resume`]; a deposed gate stays deposed.
    pub fn pause(&self, why: &str) {
        self.0.send_if_modified(|r| match r {
            Some(Refusal::Deposed(_)) => false,
            _ => {
                *r = Some(Refusal::Paused(why.to_owned()));
                true
            }
        });
    }

    /// Accept changes again, unless deposed.
    pub fn resume(&self) {
        self.0.send_if_modified(|r| match r {
            Some(Refusal::Paused(_)) => {
                *r = None;
                true
            }
            _ => false,
        });
    }

    /// Refuse changes for good. The first reason stays.
    pub fn depose(&self, why: &str) {
        self.0.send_if_modified(|r| match r {
            Some(Refusal::Deposed(_)) => false,
            _ => {
                *r = Some(Refusal::Deposed(why.to_owned()));
                true
            }
        });
    }

    /// What is refused now.
    pub fn refusal(&self) -> Option<Refusal> {
        if let Some(r) = self.0.borrow().clone() {
            return Some(r);
        }
        match &self.1 {
            Some(lease) if !lease.valid() => Some(Refusal::Paused(format!(
                "no word from ZooKeeper for over {:?}",
                lease.max_age
            ))),
            _ => None,
        }
    }

    /// Follows the gate's changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<Refusal>> {
        self.0.subscribe()
    }
}

/// Whether a request would change something, the agent link included: an agent should find a
/// master that can store its updates.
fn changes(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == gantry_proto::messages::AGENT_CONNECT_PATH
}

/// The middleware (`axum::middleware::from_fn_with_state`), outside the guard: a refused change
/// is neither authenticated nor audited (the audit log could not be written).
pub async fn refuse_changes(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if changes(&req) {
        if let Some(r) = gate.refusal() {
            let surface = Surface::of(req.uri().path());
            return surface.error(StatusCode::SERVICE_UNAVAILABLE, &r.message());
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    async fn call(app: &axum::Router, method: &str, path: &str) -> (u16, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("answer");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn changes_are_refused_in_each_apis_shape_while_reads_are_served() {
        let gate = Gate::default();
        let app = axum::Router::new()
            .route("/v2/apps", get(|| async { "[]" }).post(|| async { "made" }))
            .route("/v1/scheduler/iso8601", post(|| async { "made" }))
            .route("/master/teardown", post(|| async { "made" }))
            .layer(axum::middleware::from_fn_with_state(
                gate.clone(),
                refuse_changes,
            ));
        assert_eq!(call(&app, "POST", "/v2/apps").await, (200, "made".into()));
        gate.pause("connection lost");
        let (s, body) = call(&app, "POST", "/v2/apps").await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("Marathon JSON");
        assert_eq!(s, 503);
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("ZooKeeper")),
            "{body}"
        );
        assert_eq!(call(&app, "GET", "/v2/apps").await, (200, "[]".into()));
        gate.resume();
        assert_eq!(call(&app, "POST", "/v2/apps").await.0, 200);
        gate.depose("session expired");
        gate.resume();
        gate.pause("again");
        let (s, body) = call(&app, "POST", "/v1/scheduler/iso8601").await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("Chronos JSON");
        assert_eq!(
            (s, v["status"].as_str()),
            (503, Some("Service Unavailable"))
        );
        assert!(body.contains("lost its leadership") && body.contains("session expired"));
        let (s, text) = call(&app, "POST", "/master/teardown").await;
        assert_eq!(s, 503);
        assert!(
            text.starts_with("This master lost its leadership"),
            "{text}"
        );
        assert!(matches!(gate.refusal(), Some(Refusal::Deposed(_))));
    }
}
