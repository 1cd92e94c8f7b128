//! `/v2/tasks`, `/v2/queue` and `/ping`.

use super::gpu_usage::embeds_gpu_usage;
use super::query::Query;
use super::render::{iso, missing_instances};
use super::views::{to_json_response, Embeds, Renderer, TaskView, TasksBody};
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
pub async fn list(
    State(core): State<Arc<Core>>,
    Query(q): Query,
) -> Result<Response, super::error::MarathonError> {
    let wanted: Vec<TaskState> = q
        .all("status")
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "running" => Some(TaskState::TaskRunning),
            "staging" => Some(TaskState::TaskStaging),
            _ => None,
        })
        .collect();
    let embeds = Embeds {
        gpu_usage: embeds_gpu_usage(q.all("embed")),
        service_ports: true,
        ..Embeds::default()
    };
    let st = core.state().await;
    let r = Renderer::new(&st, embeds);
    let tasks: Vec<TaskView<'_>> = st
        .cluster
        .tasks()
        .values()
        .filter(|t| t.app_id().is_some())
        .filter(|t| wanted.is_empty() || wanted.contains(&t.state))
        .map(|t| r.task(t))
        .collect();
    to_json_response(&TasksBody { tasks })
}

/// `GET /v2/queue`: apps with instances waiting for a place, and why they wait. The reject
/// summary starts with Gantry's own sentence (the app's waiting reason, over all the connected
/// agents), then Marathon's reasons: how many agents reached each check and how many it turned
/// away (see `services::offer_summary`). With `embed=lastUnusedOffers`, each agent turned away.
pub async fn queue(State(core): State<Arc<Core>>, Query(q): Query) -> Json<Value> {
    let last_unused = q.all("embed").any(|e| e == "lastUnusedOffers");
    let now = gantry_proto::time::now_secs();
    let st = core.state().await;
    let r = Renderer::new(&st, Embeds::default());
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
        let summary = crate::services::offer_summary::summarize(&st.cluster, app);
        let mut info = r.app(app);
        info.last_task_failure = r.last_failure(app_id);
        let info = serde_json::to_value(&info).unwrap_or_default();
        // Gantry's sentence first (what the waiting reason says, over all the agents), then
        // Marathon's reasons one by one.
        let mut reasons: Vec<Value> = waiting
            .map(|w| {
                vec![json!({"reason": w.reason, "declined": summary.unused,
                            "processed": summary.processed})]
            })
            .unwrap_or_default();
        reasons.extend(summary.reasons.iter().map(|r| json!(r)));
        let mut offers = json!({
            "processedOffersCount": summary.processed,
            "unusedOffersCount": summary.unused,
            "rejectSummaryLastOffers": reasons,
            "rejectSummaryLaunchAttempt": reasons,
        });
        if summary.unused > 0 {
            offers["lastUnusedOfferAt"] = json!(iso(now));
        }
        if summary.processed > summary.unused {
            offers["lastUsedOfferAt"] = json!(iso(now));
        }
        let mut item = json!({
            "app": info,
            "count": count,
            "delay": {
                "timeLeftSeconds": delay.map_or(0, |d| (d.until - now).ceil() as i64),
                "overdue": delay.is_none(),
            },
            "since": iso(waiting.map_or(now, |w| w.since)),
            "processedOffersSummary": offers,
        });
        if last_unused {
            item["lastUnusedOffers"] = summary
                .declined
                .iter()
                .map(|(agent, host, reason)| {
                    json!({"offer": {"id": format!("{agent}-now"), "agentId": agent, "hostname": host},
                           "timestamp": iso(now), "reason": [reason]})
                })
                .collect();
        }
        items.push(item);
    }
    Json(json!({ "queue": items }))
}

/// `DELETE /v2/queue/{appId}/delay`: the app's launch delay (backoff after failures) is reset, so
/// its waiting instances launch at once. 204 (as Marathon's code answers; its RAML says 200); 404
/// `Application /x not found in tasks queue.` when the app has nothing waiting.
pub async fn reset_delay(
    State(core): State<Arc<Core>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Result<Response, super::error::MarathonError> {
    let id = crate::services::path_id::normalize(rest.strip_suffix("/delay").unwrap_or(&rest));
    let mut guard = core.state().await;
    let queued = guard.services.apps.get(&id).is_some_and(|app| {
        guard.services.launch_delays.contains_key(&id)
            || guard.services.waiting.contains_key(&id)
            || missing_instances(&guard, app) > 0
    });
    if !rest.ends_with("/delay") || !queued {
        return Err(super::error::MarathonError::NotFound(format!(
            "Application {id} not found in tasks queue."
        )));
    }
    guard.services.launch_delays.remove(&id);
    drop(guard);
    tracing::info!(app = %id, "launch delay reset");
    core.wake();
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
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

/// `POST /v2/tasks/delete` with `{"ids": [...]}`: kills the tasks, grouped by the app their ids
/// name; well-formed ids of unknown tasks or apps are skipped. `scale=true` answers the deployment
/// result of the last app scaled (one deployment per app).
pub async fn delete_many(
    State(core): State<Arc<Core>>,
    Query(q): Query,
    body: axum::body::Bytes,
) -> Result<Response, super::error::MarathonError> {
    use super::error::MarathonError;
    use super::query::flag;
    let scale = flag(q.first("scale"), false);
    if scale && flag(q.first("wipe"), false) {
        return Err(MarathonError::BadRequest(
            "You cannot use scale and wipe at the same time.".into(),
        ));
    }
    let body = crate::services::app_definition::parse_body(&body)?;
    let ids: Vec<String> = match body.get("ids").and_then(Value::as_array) {
        Some(ids) => ids
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                MarathonError::InvalidFields(vec![crate::services::app::FieldErrors {
                    path: "/ids".into(),
                    errors: vec!["error.expected.jsstring".into()],
                }])
            })?,
        None => {
            return Err(MarathonError::InvalidFields(vec![
                crate::services::app::FieldErrors {
                    path: "/ids".into(),
                    errors: vec!["error.path.missing".into()],
                },
            ]))
        }
    };
    let mut by_app: std::collections::BTreeMap<String, Vec<gantry_proto::TaskId>> =
        Default::default();
    for id in ids {
        let parts = crate::services::path_id::parse_task_id(&id)
            .map_err(|e| MarathonError::BadRequest(e.to_string()))?;
        by_app
            .entry(parts.app_id)
            .or_default()
            .push(gantry_proto::TaskId(id));
    }
    let force = flag(q.first("force"), false);
    let mut killed = Vec::new();
    let mut last = None;
    for (app, ids) in by_app {
        match crate::services::actions::kill_app_tasks(&core, &app, Some(&ids), scale, force).await
        {
            Ok((k, d)) => {
                killed.extend(k);
                last = d.or(last);
            }
            Err(crate::services::actions::ServiceError::AppNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if scale {
        let (id, version) = last.unwrap_or_else(|| {
            (
                uuid::Uuid::new_v4().to_string(),
                iso(gantry_proto::time::now_secs()),
            )
        });
        return Ok(super::apps::deployment_result(&id, &version));
    }
    let st = core.state().await;
    let r = Renderer::new(&st, Embeds::default());
    let tasks: Vec<TaskView<'_>> = killed.iter().map(|t| r.task(t)).collect();
    to_json_response(&TasksBody { tasks })
}
