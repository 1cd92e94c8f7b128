//! Chronos's job endpoints: list, search, summary, show, submit (iso8601 and dependency), run now,
//! mark successful, delete, kill tasks; and Gantry's run history of a job.

use super::error::ChronosError;
use super::render::{current_state, displayed_schedule, last_state, run_json};
use crate::api::guard::Caller;
use crate::api::marathon::query::Query;
use crate::batch::actions;
use crate::batch::job::{
    job_json, parse_body, read_job, Endpoint, JobJson, Mode, ReadContext, RenderOptions,
    AGENT_DEFAULT_USER,
};
use crate::batch::state::{BatchState, JobEntry};
use crate::cluster::Core;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// A job as Chronos renders it, with its current schedule string.
#[derive(Serialize)]
pub struct Shown<'a>(JobJson<'a>);

fn shown<'a>(job: &'a JobEntry, schedule: &'a Option<String>, mirror_uris: bool) -> Shown<'a> {
    Shown(job_json(
        &job.def,
        RenderOptions {
            schedule: schedule.as_deref(),
            mirror_uris,
        },
    ))
}

/// Renders jobs (with their displayed schedules) as a JSON array.
fn render_jobs<'a>(jobs: impl Iterator<Item = &'a JobEntry>, mirror_uris: bool) -> Response {
    let jobs: Vec<&JobEntry> = jobs.collect();
    let schedules: Vec<Option<String>> = jobs.iter().map(|j| displayed_schedule(j)).collect();
    let out: Vec<Shown> = jobs
        .iter()
        .zip(&schedules)
        .map(|(j, s)| shown(j, s, mirror_uris))
        .collect();
    Json(out).into_response()
}

fn unknown(name: &str) -> ChronosError {
    ChronosError::NotFound(format!("Job '{name}' does not exist"))
}

/// `GET /v1/scheduler/jobs`: every job (with Chronos's `uris`/`fetch` mirroring).
pub async fn list(State(core): State<Arc<Core>>) -> Response {
    let st = core.state().await;
    render_jobs(st.batch.jobs.values(), true)
}

/// `GET /v1/scheduler/jobs/search?name=&command=&any=&limit=&offset=`: case-insensitive
/// substring match, Chronos's rule (spec §1.2 row 2).
pub async fn search(State(core): State<Arc<Core>>, Query(q): Query) -> Response {
    let lower = |k: &str| q.first(k).map(str::to_lowercase);
    let (name, command, any) = (lower("name"), lower("command"), lower("any"));
    let limit: usize = q.first("limit").and_then(|v| v.parse().ok()).unwrap_or(10);
    let offset: usize = q.first("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let st = core.state().await;
    let hits = st.batch.jobs.values().filter(|j| {
        let n = j.def.name.to_lowercase();
        let c = j.def.command.to_lowercase();
        let passes = name.as_ref().is_none_or(|x| n.contains(x))
            && command.as_ref().is_none_or(|x| c.contains(x));
        passes || any.as_ref().is_some_and(|x| n.contains(x) || c.contains(x))
    });
    render_jobs(hits.skip(offset).take(limit), false)
}

/// `GET /v1/scheduler/jobs/summary`: what Chronos's UI table shows.
pub async fn summary(State(core): State<Arc<Core>>) -> Json<Value> {
    let st = core.state().await;
    let b: &BatchState = &st.batch;
    let jobs: Vec<Value> = b
        .jobs
        .values()
        .map(|j| {
            let parents: Vec<String> = j.def.parent_edges().into_iter().map(|(p, _)| p).collect();
            let schedule = match &j.def.trigger {
                crate::batch::job::Trigger::Iso8601 { schedule, .. } => {
                    displayed_schedule(j).unwrap_or_else(|| schedule.clone())
                }
                crate::batch::job::Trigger::Cron { cron, .. } => cron.clone(),
                crate::batch::job::Trigger::Dependent { .. } => String::new(),
            };
            json!({
                "name": j.def.name,
                "status": last_state(j).to_string(),
                "state": current_state(b, &j.def.name).to_string(),
                "schedule": schedule,
                "parents": parents,
                "disabled": j.def.disabled,
            })
        })
        .collect();
    Json(json!({ "jobs": jobs }))
}

/// `GET /v1/scheduler/job/{name}`.
pub async fn get(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Response, ChronosError> {
    let st = core.state().await;
    let job = st.batch.jobs.get(&name).ok_or_else(|| unknown(&name))?;
    let schedule = displayed_schedule(job);
    Ok(Json(shown(job, &schedule, false)).into_response())
}

/// Reads, checks and stores a job body sent to `endpoint`: 204 when stored.
async fn submit(
    core: &Core,
    caller: Option<Extension<Caller>>,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<StatusCode, ChronosError> {
    let value = parse_body(body)?;
    let name = value.get("name").and_then(Value::as_str).unwrap_or("");
    let exists = core.state().await.batch.jobs.contains_key(name);
    let ctx = ReadContext {
        endpoint,
        mode: if exists { Mode::Update } else { Mode::Create },
        now: chrono::Utc::now(),
        default_user: AGENT_DEFAULT_USER,
    };
    let def = read_job(&value, &ctx)?;
    let caller = caller.map(|Extension(c)| c).unwrap_or_default();
    if !def.run_as_user.is_empty() && !caller.may_run_as(&def.run_as_user) {
        return Err(ChronosError::Forbidden(format!(
            "principal '{}' may not run tasks as user '{}' (its run_as list)",
            caller.name(),
            def.run_as_user
        )));
    }
    actions::submit(core, def).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/scheduler/iso8601` (also PUT, as Chronos 2.x): create or replace a scheduled job.
pub async fn iso8601(
    State(core): State<Arc<Core>>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<StatusCode, ChronosError> {
    submit(&core, caller, Endpoint::Iso8601, &body).await
}

/// `POST /v1/scheduler/dependency` (also PUT): create or replace a dependent job.
pub async fn dependency(
    State(core): State<Arc<Core>>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<StatusCode, ChronosError> {
    submit(&core, caller, Endpoint::Dependency, &body).await
}

/// `PUT /v1/scheduler/job/{name}[?arguments=]`: run now.
pub async fn run(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    Query(q): Query,
) -> Result<StatusCode, ChronosError> {
    let arguments = q.first("arguments").map(str::to_owned);
    actions::run_now(&core, &name, arguments).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/scheduler/job/success/{name}`: 200 `marked job <name> as successful: <true|false>`.
pub async fn mark_success(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<String, ChronosError> {
    let ok = actions::mark_success(&core, &name).await?;
    Ok(format!("marked job {name} as successful: {ok}"))
}

/// `DELETE /v1/scheduler/job/{name}`.
pub async fn delete(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ChronosError> {
    actions::delete(&core, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/scheduler/jobs`: every job.
pub async fn delete_all(State(core): State<Arc<Core>>) -> Result<StatusCode, ChronosError> {
    actions::delete_all(&core).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/scheduler/task/kill/{name}`.
pub async fn kill(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ChronosError> {
    actions::kill_tasks(&core, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/scheduler/job/{name}/task/{taskId}/progress`: Chronos needs Cassandra for it; Gantry
/// keeps no element counts, and says so (400 as Chronos for jobs without
/// `dataProcessingJobType`).
pub async fn progress(
    State(core): State<Arc<Core>>,
    Path((name, _task)): Path<(String, String)>,
) -> Result<StatusCode, ChronosError> {
    if !core.state().await.batch.jobs.contains_key(&name) {
        return Err(unknown(&name));
    }
    Err(ChronosError::BadRequest(
        "numAdditionalElementsProcessed: Gantry does not track processed elements (Chronos kept them in Cassandra)".into(),
    ))
}

/// `GET /v1/scheduler/job/{name}/runs` (Gantry): the job's runs, oldest first, every attempt.
pub async fn runs(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ChronosError> {
    let st = core.state().await;
    if !st.batch.jobs.contains_key(&name) {
        return Err(unknown(&name));
    }
    let runs: Vec<Value> = st
        .batch
        .runs_of(&name)
        .into_iter()
        .map(|r| run_json(r, &st.cluster))
        .collect();
    Ok(Json(json!({ "runs": runs })))
}
