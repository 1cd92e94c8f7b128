//! Chronos's read-only views of the whole scheduler: the dependency graph (DOT and CSV), run-time
//! statistics per job (`job/stat`, `stats/*`, from the stored run history, so they survive a
//! restart), the leader, and the Codahale-style `/metrics` JSON that chronos-python reads.

use super::error::ChronosError;
use super::render::{current_state, last_state};
use crate::batch::run::RunState;
use crate::batch::state::BatchState;
use crate::cluster::Core;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// `GET /v1/scheduler/graph/dot`.
pub async fn dot(State(core): State<Arc<Core>>) -> Response {
    let st = core.state().await;
    text(gantry_jobs::graph_dot(&st.batch.graph))
}

/// `GET /v1/scheduler/graph/csv`.
pub async fn csv(State(core): State<Arc<Core>>) -> Response {
    let st = core.state().await;
    let b = &st.batch;
    let body = gantry_jobs::graph_csv(&b.graph, |name| match b.jobs.get(name) {
        Some(j) => (last_state(j), current_state(b, name)),
        None => (
            gantry_jobs::LastState::Fresh,
            gantry_jobs::CurrentState::Idle,
        ),
    });
    text(body)
}

/// Run times of a job's successful runs, in milliseconds, ascending.
fn durations_ms(b: &BatchState, job: &str) -> Vec<f64> {
    let mut d: Vec<f64> = b
        .history
        .get(job)
        .into_iter()
        .flatten()
        .filter(|r| r.state == RunState::Succeeded)
        .filter_map(|r| r.duration_secs())
        .map(|s| s * 1000.0)
        .collect();
    d.sort_by(f64::total_cmp);
    d
}

/// The value at quantile `q` (0..1) of sorted values, 0 when there are none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[pos.min(sorted.len() - 1)]
}

/// Chronos's histogram keys for one job. `mean` is the mean (Chronos returned the median).
fn histogram(b: &BatchState, job: &str) -> Map<String, Value> {
    let d = durations_ms(b, job);
    let mean = if d.is_empty() {
        0.0
    } else {
        d.iter().sum::<f64>() / d.len() as f64
    };
    let mut m = Map::new();
    for (k, q) in [
        ("75thPercentile", 0.75),
        ("95thPercentile", 0.95),
        ("98thPercentile", 0.98),
        ("99thPercentile", 0.99),
        ("median", 0.5),
    ] {
        m.insert(k.into(), json!(quantile(&d, q)));
    }
    m.insert("mean".into(), json!(mean));
    m.insert("count".into(), json!(d.len()));
    m
}

/// `GET /v1/scheduler/job/stat/{name}`: the histogram and the task history (Chronos needed
/// Cassandra for the history; Gantry has it from its store).
pub async fn job_stat(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ChronosError> {
    let st = core.state().await;
    let b = &st.batch;
    if !b.jobs.contains_key(&name) {
        return Err(ChronosError::NotFound(format!(
            "Job '{name}' does not exist"
        )));
    }
    let fmt = |s: Option<f64>| {
        s.and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64))
            .map_or_else(
                || "N/A".to_owned(),
                |t| t.format("%m/%d/%y %H:%M:%S").to_string(),
            )
    };
    let history: Vec<Value> = b
        .history
        .get(&name)
        .into_iter()
        .flatten()
        .map(|r| {
            let mut v = json!({
                "taskId": r.task_id.clone().unwrap_or_default(),
                "jobName": r.job,
                "slaveId": r.agent_id.clone().unwrap_or_default(),
                "startTime": fmt(r.started_at.or(r.launched_at)),
                "endTime": fmt(r.ended_at),
                "status": r.task_state.clone().unwrap_or_else(|| r.state.name().to_uppercase()),
            });
            if let (Some(d), Some(o)) = (r.duration_secs(), v.as_object_mut()) {
                let s = d.max(0.0) as u64;
                let text = format!(
                    "{}d{}h{}m{}s",
                    s / 86_400,
                    (s % 86_400) / 3600,
                    (s % 3600) / 60,
                    s % 60
                );
                o.insert("duration".into(), json!(text));
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "histogram": histogram(b, &name),
        "taskStatHistory": history,
    })))
}

/// `GET /v1/scheduler/stats/{percentile}`: every job with that histogram value in seconds,
/// slowest first; `[]` for an unknown key.
pub async fn stats(State(core): State<Arc<Core>>, Path(key): Path<String>) -> Json<Value> {
    let st = core.state().await;
    let b = &st.batch;
    let mut rows: Vec<(String, f64)> = Vec::new();
    for name in b.jobs.keys() {
        let h = histogram(b, name);
        match h.get(&key).and_then(Value::as_f64) {
            Some(v) => rows.push((name.clone(), v / 1000.0)),
            None => return Json(json!([])),
        }
    }
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    Json(Value::Array(
        rows.into_iter()
            .map(|(n, t)| json!({"jobNameLabel": n, "time": t}))
            .collect(),
    ))
}

/// `GET /leader`, `GET /v1/scheduler/leader`: `{"leader": "<host>:<port>"}`.
pub async fn leader(State(core): State<Arc<Core>>) -> Json<Value> {
    Json(json!({ "leader": crate::api::mesos::advertised(&core).to_string() }))
}

/// The Codahale `MetricsServlet` JSON Chronos serves at `/metrics`: queue sizes as gauges, and
/// per-job success/failure counters and run-time histograms.
pub async fn codahale(core: &Core) -> Value {
    let st = core.state().await;
    let b = &st.batch;
    let queued = b
        .active
        .values()
        .filter(|r| r.state == RunState::Queued)
        .count();
    let mut counters = Map::new();
    let mut histograms = Map::new();
    for (name, j) in &b.jobs {
        counters.insert(
            format!("jobs.run.success.{name}"),
            json!({"count": j.def.success_count}),
        );
        counters.insert(
            format!("jobs.run.failure.{name}"),
            json!({"count": j.def.error_count}),
        );
        histograms.insert(
            format!("jobs.run.time.{name}"),
            Value::Object(histogram(b, name)),
        );
    }
    json!({
        "version": "3.0.0",
        "gauges": {
            "org.apache.mesos.chronos.scheduler.jobs.TaskManager.queueSize": {"value": queued},
            "org.apache.mesos.chronos.scheduler.jobs.TaskManager.highQueueSize": {"value": 0},
            "gantry.jobs": {"value": b.jobs.len()},
            "gantry.runs.active": {"value": b.active.len()},
        },
        "counters": counters,
        "histograms": histograms,
        "meters": {},
        "timers": {},
    })
}
