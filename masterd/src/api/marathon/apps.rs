//! `/v2/apps`: create, list, show, delete apps and list an app's tasks. Each handler turns the
//! request into one core action and renders the answer in Marathon's shape.

use super::error::MarathonError;
use super::events::Origin;
use super::gpu_usage::{add_to_tasks, embeds_gpu_usage};
use super::query::{flag, Query};
use super::render::{add_readiness, app_info, embeds_readiness, embeds_waiting, task, waiting};
use crate::api::guard::Caller;
use crate::cluster::Core;
use crate::services::actions::{self, ServiceError};
use crate::services::app_definition::AppDefinition;
use crate::services::path_id;
use crate::services::updates::{self, Change, Target};
use crate::state::MasterState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Refuses an app whose `user` the caller may not run tasks as (its principal's run_as list).
pub fn check_user(caller: &Caller, app: &AppDefinition) -> Result<(), MarathonError> {
    match app.user.as_deref().filter(|u| !caller.may_run_as(u)) {
        Some(user) => Err(MarathonError::Forbidden(format!(
            "principal '{}' may not run tasks as user '{user}' (its run_as list)",
            caller.name()
        ))),
        None => Ok(()),
    }
}

/// `POST /v2/apps`: 201 with the new AppInfo.
pub async fn create(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    let app = AppDefinition::parse(&body)?;
    let caller = caller.map(|Extension(c)| c).unwrap_or_default();
    check_user(&caller, &app)?;
    if core.state().await.services.apps.contains_key(&app.id) {
        return Err(ServiceError::AppExists(app.id).into());
    }
    let change = Change {
        id: app.id.clone(),
        target: Target::Put(app),
    };
    let deployed = updates::deploy(&core, vec![change], flag(q.first("force"), false)).await?;
    origin.api_post(&core, &deployed.apps);
    let Some(app) = deployed.apps.into_iter().next() else {
        return Err(MarathonError::Internal(
            "the deployment lost its app".into(),
        ));
    };
    let deployment = deployed.id;
    let st = core.state().await;
    let mut info = app_info(&st, &app, false);
    if let Some(obj) = info.as_object_mut() {
        // Marathon answers a create with all counts 0, whatever the controller did meanwhile.
        for k in [
            "tasksStaged",
            "tasksRunning",
            "tasksHealthy",
            "tasksUnhealthy",
        ] {
            obj.insert(k.into(), json!(0));
        }
        obj.insert("deployments".into(), json!([{ "id": deployment }]));
    }
    let mut resp = (StatusCode::CREATED, Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{}", app.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    deployment_header(&mut resp, &deployment);
    Ok(resp)
}

/// `GET /v2/apps`: every app with counts; `cmd` and `id` filter by case-insensitive substring.
pub async fn list(State(core): State<Arc<Core>>, Query(q): Query) -> Json<Value> {
    let cmd = q.first("cmd").map(str::to_lowercase);
    let id = q.first("id").map(str::to_lowercase);
    let embed_waiting = embeds_waiting(q.all("embed"));
    let embed_gpus = embeds_gpu_usage(q.all("embed"));
    let embed_readiness = embeds_readiness(q.all("embed"));
    let st = core.state().await;
    let apps: Vec<Value> = st
        .services
        .apps
        .values()
        .filter(|a| {
            cmd.as_ref().is_none_or(|c| {
                a.cmd
                    .as_deref()
                    .is_some_and(|x| x.to_lowercase().contains(c))
            })
        })
        .filter(|a| id.as_ref().is_none_or(|i| a.id.to_lowercase().contains(i)))
        .map(|a| {
            let embed_tasks = q.all("embed").any(|e| e.ends_with("tasks"));
            let mut info = app_info(&st, a, embed_tasks);
            if embed_waiting {
                add_waiting(&st, a, &mut info);
            }
            if embed_gpus {
                add_to_tasks(&st, &mut info);
            }
            if embed_readiness {
                add_readiness(&st, a, &mut info);
            }
            info
        })
        .collect();
    Json(json!({ "apps": apps }))
}

/// Adds the `waiting` extension to an AppInfo when something waits.
fn add_waiting(st: &MasterState, app: &AppDefinition, info: &mut Value) {
    let now = gantry_proto::time::now_secs();
    if let (Some(w), Some(obj)) = (waiting(st, app, now), info.as_object_mut()) {
        obj.insert("waiting".into(), w);
    }
}

/// What a path under `/v2/apps/` names.
pub enum AppPath {
    App(String),
    Tasks(String),
    Task(String, String),
    Versions(String),
    Version(String, String),
    Restart(String),
}

/// Splits a path under `/v2/apps/` into the app id and its known suffix (spec §0: `/tasks`,
/// `/tasks/{taskId}`, `/versions`, `/versions/{v}`, `/restart`).
pub fn parse_path(rest: &str) -> AppPath {
    let rest = rest.trim_end_matches('/');
    if let Some(app) = rest.strip_suffix("/versions") {
        return AppPath::Versions(path_id::normalize(app));
    }
    if let Some(app) = rest.strip_suffix("/restart") {
        return AppPath::Restart(path_id::normalize(app));
    }
    if let Some((app, v)) = rest.rsplit_once("/versions/") {
        if !v.contains('/') {
            return AppPath::Version(path_id::normalize(app), v.to_owned());
        }
    }
    if let Some(app) = rest.strip_suffix("/tasks") {
        return AppPath::Tasks(path_id::normalize(app));
    }
    if let Some((app, task)) = rest.rsplit_once("/tasks/") {
        if !task.contains('/') {
            return AppPath::Task(path_id::normalize(app), task.to_owned());
        }
    }
    AppPath::App(path_id::normalize(rest))
}

/// `GET /v2/apps/{id}` and `GET /v2/apps/{id}/tasks`.
pub async fn get(
    State(core): State<Arc<Core>>,
    Path(rest): Path<String>,
    Query(q): Query,
) -> Result<Json<Value>, MarathonError> {
    let st = core.state().await;
    match parse_path(&rest) {
        AppPath::App(id) => {
            let app = st
                .services
                .apps
                .get(&id)
                .ok_or_else(|| MarathonError::NotFound(format!("App '{id}' does not exist")))?;
            let mut info = app_info(&st, app, true);
            if embeds_waiting(q.all("embed")) {
                add_waiting(&st, app, &mut info);
            }
            if embeds_gpu_usage(q.all("embed")) {
                add_to_tasks(&st, &mut info);
            }
            if embeds_readiness(q.all("embed")) {
                add_readiness(&st, app, &mut info);
            }
            Ok(Json(json!({ "app": info })))
        }
        AppPath::Tasks(id) => {
            if !st.services.apps.contains_key(&id) {
                return Err(MarathonError::NotFound(format!(
                    "App '{id}' does not exist"
                )));
            }
            let tasks: Vec<Value> = st
                .cluster
                .app_tasks(&id)
                .map(|t| task(&st, t, false))
                .collect();
            let mut out = json!({ "tasks": tasks });
            if embeds_gpu_usage(q.all("embed")) {
                add_to_tasks(&st, &mut out);
            }
            Ok(Json(out))
        }
        AppPath::Versions(id) => super::versions::list(&st, &id),
        AppPath::Version(id, v) => super::versions::one(&st, &id, &v),
        // Marathon has no GET for one task, nor for a restart: the path names no app.
        AppPath::Task(..) | AppPath::Restart(_) => Err(MarathonError::NotFound(format!(
            "App '{}' does not exist",
            path_id::normalize(&rest)
        ))),
    }
}

/// `DELETE /v2/apps/{id}`: the app is gone at once; its tasks are killed. Also
/// `DELETE /v2/apps/{id}/tasks[/{taskId}]`: kill tasks (replaced, or with `scale=true` the app
/// shrinks by as many).
pub async fn delete(
    State(core): State<Arc<Core>>,
    Path(rest): Path<String>,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    let (app, only) = match parse_path(&rest) {
        AppPath::App(id) => {
            // `force` defaults to true here (spec §0): a deployment on the app gives way.
            let change = Change {
                id,
                target: Target::Delete,
            };
            let d = updates::deploy(&core, vec![change], flag(q.first("force"), true)).await?;
            return Ok(deployment_result(&d.id, &d.version));
        }
        AppPath::Versions(id) | AppPath::Version(id, _) | AppPath::Restart(id) => {
            return Err(MarathonError::NotFound(format!(
                "App '{id}' does not exist"
            )));
        }
        AppPath::Tasks(app) => (app, None),
        AppPath::Task(app, task) => (app, Some(vec![gantry_proto::TaskId(task)])),
    };
    let scale = flag(q.first("scale"), false);
    if scale && flag(q.first("wipe"), false) {
        return Err(MarathonError::BadRequest(
            "You cannot use scale and wipe at the same time.".into(),
        ));
    }
    let host = q.first("host").filter(|h| *h != "*").map(str::to_owned);
    let only = match (only, host) {
        (Some(ids), _) => Some(ids),
        (None, Some(host)) => {
            let st = core.state().await;
            let ids = st
                .cluster
                .app_tasks(&app)
                .filter(|t| {
                    st.cluster
                        .agents
                        .get(&t.info.agent_id)
                        .is_some_and(|a| a.record.info.hostname == host)
                })
                .map(|t| t.info.task_id.clone())
                .collect();
            Some(ids)
        }
        (None, None) => None,
    };
    let single = only
        .as_ref()
        .filter(|ids| ids.len() == 1 && q.first("host").is_none())
        .map(|ids| ids[0].clone());
    let force = flag(q.first("force"), false);
    let (killed, deployment) =
        actions::kill_app_tasks(&core, &app, only.as_deref(), scale, force).await?;
    if let Some(id) = &single {
        if killed.is_empty() {
            return Err(MarathonError::NotFound(format!(
                "Task '{id}' does not exist"
            )));
        }
    }
    if let Some((id, version)) = deployment {
        return Ok(deployment_result(&id, &version));
    }
    let st = core.state().await;
    let mut rendered: Vec<Value> = killed.iter().map(|t| task(&st, t, false)).collect();
    Ok(match (single, rendered.pop()) {
        (Some(_), Some(t)) => Json(json!({ "task": t })).into_response(),
        (_, last) => {
            rendered.extend(last);
            Json(json!({ "tasks": rendered })).into_response()
        }
    })
}

/// Sets the `Marathon-Deployment-Id` header.
pub fn deployment_header(resp: &mut Response, deployment: &str) {
    if let Ok(v) = HeaderValue::from_str(deployment) {
        resp.headers_mut().insert("Marathon-Deployment-Id", v);
    }
}

/// A deployment result: 200 `{"deploymentId", "version"}` with the `Marathon-Deployment-Id` header.
pub fn deployment_result(deployment: &str, version: &str) -> Response {
    let body = json!({"deploymentId": deployment, "version": version});
    let mut resp = Json(body).into_response();
    deployment_header(&mut resp, deployment);
    resp
}
