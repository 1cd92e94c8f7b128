//! `/v2/apps`: create, list, show, delete apps and list an app's tasks. Each handler turns the
//! request into one core action and renders the answer in Marathon's shape.

use super::error::MarathonError;
use super::events::Origin;
use super::gpu_usage::embeds_gpu_usage;
use super::query::{flag, Query};
use super::views::{
    json_response, to_json_response, AppBody, DeploymentRef, Embeds, Renderer, TaskBody, TaskView,
    TasksBody,
};
use crate::api::guard::Caller;
use crate::cluster::Core;
use crate::services::actions::{self, ServiceError};
use crate::services::app_definition::AppDefinition;
use crate::services::path_id;
use crate::services::updates::{self, Change, Target};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::json;
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
    let mut info = Renderer::new(&st, Embeds::default()).app(&app);
    // Marathon answers a create with all counts 0, whatever the controller did meanwhile.
    info.tasks_staged = 0;
    info.tasks_running = 0;
    info.tasks_healthy = 0;
    info.tasks_unhealthy = 0;
    info.deployments = vec![DeploymentRef { id: &deployment }];
    let mut resp = (StatusCode::CREATED, Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{}", app.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    deployment_header(&mut resp, &deployment);
    Ok(resp)
}

/// `GET /v2/apps`: every app with counts; `cmd` and `id` filter by case-insensitive substring.
/// The body is serialised from typed views under the master's lock, in one pass.
pub async fn list(
    State(core): State<Arc<Core>>,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    let cmd = q.first("cmd").map(str::to_lowercase);
    let id = q.first("id").map(str::to_lowercase);
    let embeds = Embeds::asked(q.all("embed"));
    let st = core.state().await;
    let apps = st
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
        .filter(|a| id.as_ref().is_none_or(|i| a.id.to_lowercase().contains(i)));
    let body = Renderer::new(&st, embeds)
        .apps_body(apps)
        .map_err(|e| MarathonError::Internal(format!("rendering the apps: {e}")))?;
    drop(st);
    Ok(json_response(StatusCode::OK, body))
}

/// The apps under `group` (at any depth).
fn in_group<'a>(
    st: &'a crate::state::MasterState,
    group: &'a str,
) -> impl Iterator<Item = &'a AppDefinition> {
    st.services
        .apps
        .values()
        .filter(move |a| crate::services::groups::within(&a.id, group) && a.id != group)
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
) -> Result<Response, MarathonError> {
    let st = core.state().await;
    let gpu_usage = embeds_gpu_usage(q.all("embed"));
    match parse_path(&rest) {
        AppPath::App(id) if id == "/*" || id.ends_with("/*") => {
            // `GET /v2/apps/<group>/*`: every app under the group, as `{"*": [AppInfo...]}`.
            let group = path_id::parent(&id);
            let embeds = Embeds {
                tasks: true,
                ..Embeds::asked(q.all("embed"))
            };
            let r = Renderer::new(&st, embeds);
            let infos: Vec<_> = in_group(&st, &group).map(|a| r.app(a)).collect();
            to_json_response(&serde_json::json!({ "*": infos }))
        }
        AppPath::App(id) => {
            let app = st
                .services
                .apps
                .get(&id)
                .ok_or_else(|| MarathonError::NotFound(format!("App '{id}' does not exist")))?;
            // Always with its tasks and lastTaskFailure (spec §1.1).
            let embeds = Embeds {
                tasks: true,
                ..Embeds::asked(q.all("embed"))
            };
            let info = Renderer::new(&st, embeds).app(app);
            to_json_response(&AppBody { app: info })
        }
        AppPath::Tasks(id) if id == "/*" || id.ends_with("/*") => {
            let group = path_id::parent(&id);
            let embeds = Embeds {
                gpu_usage,
                ..Embeds::default()
            };
            let r = Renderer::new(&st, embeds);
            let tasks: Vec<TaskView<'_>> = in_group(&st, &group)
                .flat_map(|a| st.cluster.app_tasks(&a.id))
                .map(|t| r.task(t))
                .collect();
            to_json_response(&TasksBody { tasks })
        }
        AppPath::Tasks(id) => {
            if !st.services.apps.contains_key(&id) {
                return Err(MarathonError::NotFound(format!(
                    "App '{id}' does not exist"
                )));
            }
            let embeds = Embeds {
                gpu_usage,
                ..Embeds::default()
            };
            let r = Renderer::new(&st, embeds);
            let tasks: Vec<TaskView<'_>> = st.cluster.app_tasks(&id).map(|t| r.task(t)).collect();
            to_json_response(&TasksBody { tasks })
        }
        AppPath::Versions(id) => super::versions::list(&st, &id).map(IntoResponse::into_response),
        AppPath::Version(id, v) => {
            super::versions::one(&st, &id, &v).map(IntoResponse::into_response)
        }
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
    let r = Renderer::new(&st, Embeds::default());
    let mut tasks: Vec<TaskView<'_>> = killed.iter().map(|t| r.task(t)).collect();
    match (single, tasks.pop()) {
        (Some(_), Some(task)) => to_json_response(&TaskBody { task }),
        (_, last) => {
            tasks.extend(last);
            to_json_response(&TasksBody { tasks })
        }
    }
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
