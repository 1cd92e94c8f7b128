//! `/v2/tasks`, `/v2/queue` and `/ping`.

use super::gpu_usage::{add_to_tasks, embeds_gpu_usage};
use super::query::Query;
use super::render::{add_last_failure, app_info, iso, missing_instances, task};
use crate::cluster::Core;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_proto::TaskState;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /v2/tasks[?status=running|staging]`: tasks of every app, with their apps' service ports
/// (and, with `embed=tasks.gpuUsage`, their GPUs' readings).
pub async fn list(State(core): State<Arc<Core>>, Query(q): Query) -> Json<Value> {
    let wanted: Vec<TaskState> = q
        .all("status")
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "running" => Some(TaskState::TaskRunning),
            "staging" => Some(TaskState::TaskStaging),
            _ => None,
        })
        .collect();
    let st = core.state().await;
    let tasks: Vec<Value> = st
        .cluster
        .tasks
        .values()
        .filter(|t| t.app_id().is_some())
        .filter(|t| wanted.is_empty() || wanted.contains(&t.state))
        .map(|t| task(&st, t, true))
        .collect();
    let mut out = json!({ "tasks": tasks });
    if embeds_gpu_usage(q.all("embed")) {
        add_to_tasks(&st, &mut out);
    }
    Json(out)
}

/// `GET /v2/queue`: apps with instances waiting for a place, and why they wait.
pub async fn queue(State(core): State<Arc<Core>>) -> Json<Value> {
    let now = gantry_proto::time::now_secs();
    let st = core.state().await;
    let mut items = Vec::new();
    for (app_id, app) in &st.services.apps {
        let delay = st
            .services
            .launch_delays
            .get(app_id)
            .filter(|d| d.until > now);
        let waiting = st.services.waiting.get(app_id);
        if delay.is_none() && waiting.is_none() {
            continue;
        }
        // Waiting for a place: those not placed; delayed: every missing instance.
        let count = waiting.map_or_else(|| missing_instances(&st, app), |w| w.count);
        let reasons: Vec<Value> = waiting
            .map(|w| vec![json!({"reason": w.reason, "declined": 1, "processed": 1})])
            .unwrap_or_default();
        let mut info = app_info(&st, app, false);
        add_last_failure(&st, app_id, &mut info);
        items.push(json!({
            "app": info,
            "count": count,
            "delay": {
                "timeLeftSeconds": delay.map_or(0, |d| (d.until - now).ceil() as i64),
                "overdue": delay.is_none(),
            },
            "since": iso(waiting.map_or(now, |w| w.since)),
            "processedOffersSummary": {
                "processedOffersCount": 1,
                "unusedOffersCount": i64::from(waiting.is_some()),
                "rejectSummaryLastOffers": reasons,
            },
        }));
    }
    Json(json!({ "queue": items }))
}

/// `GET /ping`: `pong`, or `"pong"` as JSON when asked for JSON (marathon-python expects that).
pub async fn ping(headers: HeaderMap) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        Json("pong").into_response()
    } else {
        "pong".into_response()
    }
}
