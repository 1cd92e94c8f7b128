//! The web UI on the master's port: server-rendered pages for the cluster (agents, NUMA domains
//! and GPUs), services, jobs (with their DAG) and tasks (with their logs), a stylesheet and one
//! small script vendored here (no node toolchain). Pages read the state under the lock into plain
//! rows and render after releasing it. The script keeps a page live: it listens to
//! `/ui/events` (one server-sent event per state change, at most four a second) and swaps in the
//! page's live part; actions call the public APIs (Marathon, Chronos) and show their answers, so
//! the UI can do nothing a client could not. See docs/ui.md.

pub mod cluster;
pub mod dag;
pub mod deployments;
pub mod frameworks;
pub mod jobs;
pub mod layout;
pub mod services;
pub mod tasks;

use crate::cluster::Core;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The shortest time between two change events on one stream.
const EVENT_SPACING: Duration = Duration::from_millis(250);

/// The UI's routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/", get(cluster::page))
        .route("/ui", get(cluster::page))
        .route("/ui/", get(cluster::page))
        .route("/ui/agents/{id}", get(cluster::agent_page))
        .route("/ui/services", get(services::page))
        .route("/ui/services/{*id}", get(services::app_page))
        .route("/ui/jobs", get(jobs::page))
        .route("/ui/jobs/{name}", get(jobs::job_page))
        .route("/ui/tasks", get(tasks::page))
        .route("/ui/tasks/{id}", get(tasks::task_page))
        .route("/ui/frameworks", get(frameworks::page))
        .route("/ui/events", get(events))
        .route("/ui/assets/{file}", get(asset))
}

/// `GET /ui/assets/{file}`: the vendored stylesheet and script.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "gantry.css" => (include_str!("assets/gantry.css"), "text/css; charset=utf-8"),
        "gantry.js" => (
            include_str!("assets/gantry.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// `GET /ui/events`: a `change` event whenever the master's state changes (spaced by
/// [`EVENT_SPACING`]), a `hello` first so the page knows it is connected, keep-alives between.
async fn events(
    State(core): State<Arc<Core>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = core.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if first {
            let seq = *rx.borrow_and_update();
            return Some((
                Ok(Event::default().event("hello").data(seq.to_string())),
                (rx, false),
            ));
        }
        tokio::time::sleep(EVENT_SPACING).await;
        rx.changed().await.ok()?;
        let seq = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("change").data(seq.to_string())),
            (rx, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}
