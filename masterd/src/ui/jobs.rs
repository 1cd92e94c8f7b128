//! The jobs page (`/ui/jobs`): Chronos's summary bar (SUCCESS, FAILURE, FRESH, RUNNING, QUEUED,
//! IDLE) and job table (job, next run as "in ~24 hours", status, state, actions: run now,
//! disable or enable, delete), the dependency DAG, and the submit form; and a job's page
//! (`/ui/jobs/{name}`) with its run history (exit codes, durations) and its definition to edit.

use super::cluster::not_found;
use super::dag::{self, Node};
use super::layout::{duration, enc, relative, respond, Page, Section};
use crate::api::chronos::render::{current_state, last_state};
use crate::batch::job::{job_json, RenderOptions};
use crate::batch::state::{BatchState, JobEntry};
use crate::cluster::Core;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use gantry_jobs::CurrentState;
use gantry_proto::time::now_secs;
use maud::{html, Markup};
use std::sync::Arc;

/// One job, copied out of the state.
pub struct JobRow {
    pub name: String,
    pub command: String,
    pub schedule: String,
    pub next: Option<f64>,
    pub last: String,
    pub state: CurrentState,
    pub disabled: bool,
    pub parents: Vec<String>,
}

fn next_run(j: &JobEntry) -> Option<f64> {
    if j.def.disabled {
        return None;
    }
    let t = match j.next_due {
        Some(t) => t,
        None => j.schedule.as_ref()?.next_after(Utc::now())?,
    };
    Some(t.timestamp_millis() as f64 / 1000.0)
}

fn job_row(b: &BatchState, j: &JobEntry) -> JobRow {
    use crate::batch::job::Trigger;
    let schedule = match &j.def.trigger {
        Trigger::Iso8601 { schedule, .. } => {
            crate::api::chronos::render::displayed_schedule(j).unwrap_or_else(|| schedule.clone())
        }
        Trigger::Cron { cron, .. } => cron.clone(),
        Trigger::Dependent { .. } => String::new(),
    };
    JobRow {
        name: j.def.name.clone(),
        command: j.def.command.clone(),
        schedule,
        next: next_run(j),
        last: last_state(j).to_string(),
        state: current_state(b, &j.def.name),
        disabled: j.def.disabled,
        parents: j.def.parent_edges().into_iter().map(|(p, _)| p).collect(),
    }
}

/// Every job's row.
pub fn job_rows(b: &BatchState) -> Vec<JobRow> {
    b.jobs.values().map(|j| job_row(b, j)).collect()
}

fn state_name(s: CurrentState) -> &'static str {
    match s {
        CurrentState::Idle => "idle",
        CurrentState::Queued => "queued",
        CurrentState::Running(_) => "running",
    }
}

fn job_actions(r: &JobRow) -> Markup {
    let api = format!("/v1/scheduler/job/{}", enc(&r.name));
    html! {
        button data-method="PUT" data-url=(api.clone()) data-done=(format!("Started a run of {}", r.name)) { "Run now" }
        button data-toggle-job=(r.name) data-disabled=(r.disabled) { @if r.disabled { "Enable" } @else { "Disable" } }
        button.danger data-method="DELETE" data-url=(api) data-confirm=(format!("Delete the job {}?", r.name)) { "Delete" }
    }
}

/// The live part of the jobs page.
pub fn jobs_markup(rows: &[JobRow], now: f64) -> Markup {
    let count = |f: &dyn Fn(&JobRow) -> bool| rows.iter().filter(|r| f(r)).count();
    let bar = [
        ("success", count(&|r| r.last == "success")),
        ("failure", count(&|r| r.last == "failure")),
        ("fresh", count(&|r| r.last == "fresh")),
        (
            "running",
            count(&|r| matches!(r.state, CurrentState::Running(_))),
        ),
        ("queued", count(&|r| r.state == CurrentState::Queued)),
        ("idle", count(&|r| r.state == CurrentState::Idle)),
    ];
    let nodes: Vec<Node> = rows
        .iter()
        .map(|r| Node {
            name: r.name.clone(),
            parents: r.parents.clone(),
            last: r.last.clone(),
            running: matches!(r.state, CurrentState::Running(_)),
        })
        .collect();
    html! {
        h1 { "Jobs" }
        div.summary #job-summary {
            @for (name, n) in bar { div class=(format!("sum {name}")) data-sum=(name) { b { (n) } span { (name.to_uppercase()) } } }
        }
        @if rows.is_empty() { p.empty { "No jobs yet. Submit one below." } } @else {
            table.grid #jobs {
                thead { tr { th { "Job" } th { "Next run" } th { "Status" } th { "State" } th { "Actions" } } }
                tbody {
                    @for r in rows {
                        tr data-job=(r.name) {
                            td { a href=(format!("/ui/jobs/{}", enc(&r.name))) { (r.name) }
                                 @if r.disabled { " " span.pill.suspended { "disabled" } }
                                 br; small.mono { @if r.parents.is_empty() { (r.schedule) } @else { "after " (r.parents.join(", ")) } } }
                            td { @match r.next { Some(t) => span title=(crate::api::marathon::render::iso(t)) { (relative(t, now)) }, None => "—" } }
                            td { span class=(format!("pill {}", r.last)) data-field="status" { (r.last) } }
                            td { span class=(format!("pill {}", state_name(r.state))) data-field="state" { (r.state.to_string()) } }
                            td.actions { (job_actions(r)) }
                        }
                    }
                }
            }
        }
        @if let Some(svg) = dag::svg(&nodes) { h2 { "Dependencies" } div.dag-wrap { (svg) } }
    }
}

fn submit_form() -> Markup {
    html! {
        details.create #create-job {
            summary { "Submit a job" }
            form #job-form data-api="POST /v1/scheduler/iso8601" data-dependent-api="POST /v1/scheduler/dependency" novalidate {
                div.fields {
                    label { "Name" input name="name" data-path="/name" placeholder="nightly-report"; span.err data-for="/name" {} }
                    label { "Command" input name="command" data-path="/command" placeholder="echo hello"; span.err data-for="/command" {} }
                    label { "Schedule (ISO 8601)" input name="schedule" data-path="/schedule" placeholder="R/2026-12-02T00:00:00Z/PT24H"; span.err data-for="/schedule" {} }
                    label { "Parents (comma-separated)" input name="parents" data-path="/parents" data-type="list"; span.err data-for="/parents" {} }
                    label { "Owner" input name="owner" data-path="/owner" placeholder="you@example.org"; span.err data-for="/owner" {} }
                }
                label.json { "More of the job, as JSON (the fields above win)" textarea name="json" rows="4" {} span.err data-for="" {} }
                button type="submit" { "Submit" }
            }
        }
    }
}

/// `GET /ui/jobs`.
pub async fn page(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let rows = {
        let st = core.state().await;
        job_rows(&st.batch)
    };
    let page = Page {
        title: "Jobs".into(),
        section: Section::Jobs,
        top: html! {},
        live: jobs_markup(&rows, now_secs()),
        fixed: submit_form(),
    };
    respond(&headers, page)
}

/// One run in the history table.
struct RunRow {
    run: serde_json::Value,
}

fn job_markup(r: &JobRow, runs: &[RunRow], now: f64) -> Markup {
    html! {
        h1 { (r.name) }
        p.meta {
            span class=(format!("pill {}", r.last)) { (r.last) } " · " (r.state.to_string())
            @if r.disabled { " · disabled" }
            " · " @if r.parents.is_empty() { code { (r.schedule) } } @else { "after " (r.parents.join(", ")) }
            @if let Some(t) = r.next { " · next run " (relative(t, now)) }
        }
        p.cmd { code { (r.command) } }
        div.actions { (job_actions(r)) }
        h2 { "Runs" }
        @if runs.is_empty() { p.empty { "No runs yet." } } @else {
            table.grid #runs {
                thead { tr { th { "Run" } th { "Attempt" } th { "Scheduled" } th { "State" } th { "Exit code" } th { "Duration" } th { "Task" } th { "Message" } } }
                tbody {
                    @for x in runs.iter().rev() {
                        @let v = &x.run;
                        tr data-run=(v["id"]) {
                            td { (v["run"]) } td { (v["attempt"]) } td { (v["scheduledAt"].as_str().unwrap_or("")) }
                            td { span class=(format!("pill {}", v["state"].as_str().unwrap_or(""))) data-field="run-state" { (v["state"].as_str().unwrap_or("")) } }
                            td data-field="exit" { @if let Some(c) = v["exitCode"].as_i64() { (c) } @else { "—" } }
                            td { @if let Some(d) = v["durationSeconds"].as_f64() { (duration(d)) } @else { "—" } }
                            td { @if let Some(t) = v["taskId"].as_str() { a.mono href=(format!("/ui/tasks/{}", enc(t))) { "task" } } }
                            td { (v["message"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn edit_form(name: &str, json: &str, dependent: bool) -> Markup {
    let api = if dependent {
        "POST /v1/scheduler/dependency"
    } else {
        "POST /v1/scheduler/iso8601"
    };
    html! {
        details.create {
            summary { "Edit the definition" }
            form #job-edit-form data-api=(api) data-job=(name) {
                label.json { textarea name="json" rows="16" { (json) } span.err data-for="" {} }
                button type="submit" { "Save" }
            }
        }
    }
}

/// `GET /ui/jobs/{name}`.
pub async fn job_page(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = {
        let st = core.state().await;
        st.batch.jobs.get(&name).map(|j| {
            let row = job_row(&st.batch, j);
            let runs: Vec<RunRow> = st
                .batch
                .runs_of(&name)
                .into_iter()
                .map(|r| RunRow {
                    run: crate::api::chronos::render::run_json(r, &st.cluster),
                })
                .collect();
            let json = serde_json::to_string_pretty(&job_json(&j.def, RenderOptions::default()))
                .unwrap_or_default();
            (row, runs, json)
        })
    };
    match found {
        Some((row, runs, json)) => {
            let dependent = !row.parents.is_empty();
            let page = Page {
                title: row.name.clone(),
                section: Section::Jobs,
                top: html! {},
                live: job_markup(&row, &runs, now_secs()),
                fixed: edit_form(&row.name, &json, dependent),
            };
            respond(&headers, page)
        }
        None => not_found(&headers, Section::Jobs, &format!("No job is named {name}.")),
    }
}
