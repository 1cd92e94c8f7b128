//! The tasks page (`/ui/tasks`): every live task and the recently ended ones, a page of
//! [`PER_PAGE`] at a time with a search box; and a task's page (`/ui/tasks/{id}`) with what the
//! master knows of its life (staged, started, its latest status and reason), its resources,
//! cores and GPUs, and its stdout and stderr with tail and follow, read through the master's
//! sandbox proxy (`/gantry/v1/tasks/{id}/files/read`).

use super::cluster::not_found;
use super::layout::{cpus, enc, mib, respond, Page, Section};
use crate::api::marathon::render::iso;
use crate::cluster::{ClusterState, Core};
use crate::store::records::{TaskOwner, TaskRecord};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_proto::TaskId;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// Rows per page.
pub const PER_PAGE: usize = 100;

/// One task, copied out of the state.
pub struct TaskRow {
    pub id: String,
    pub owner: String,
    pub owner_link: String,
    pub host: String,
    pub state: String,
    pub staged_at: f64,
    pub cpus: f64,
    pub mem: f64,
    pub gpus: usize,
    pub live: bool,
}

fn owner_link(o: &TaskOwner) -> String {
    match o {
        TaskOwner::App { id, .. } => format!("/ui/services{id}"),
        TaskOwner::JobRun { job, .. } => format!("/ui/jobs/{}", enc(job)),
        TaskOwner::Framework { .. } => "/ui/frameworks".to_owned(),
    }
}

fn task_row(st: &ClusterState, t: &TaskRecord, live: bool) -> TaskRow {
    TaskRow {
        id: t.info.task_id.0.clone(),
        owner: t.owner.name().to_owned(),
        owner_link: owner_link(&t.owner),
        host: st
            .agents
            .get(&t.info.agent_id)
            .map(|a| a.record.info.hostname.clone())
            .unwrap_or_default(),
        state: t.state.name().to_owned(),
        staged_at: t.staged_at,
        cpus: t.info.resources.cpus,
        mem: t.info.resources.mem,
        gpus: t.info.placement.as_ref().map_or(0, |p| p.gpus.len()),
        live,
    }
}

/// The tasks page's query.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub page: Option<usize>,
}

/// The rows of one page and how many matched, live tasks first, then ended ones newest first.
/// Only the page's rows are copied.
pub fn task_rows(st: &ClusterState, f: &Filters) -> (Vec<TaskRow>, usize) {
    let q =
        f.q.as_deref()
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
    let keep = |t: &&TaskRecord| {
        q.as_deref().is_none_or(|q| {
            t.info.task_id.0.to_lowercase().contains(q) || t.owner.name().to_lowercase().contains(q)
        })
    };
    let live = st.tasks().values().filter(keep).map(|t| (t, true));
    let ended = st.completed.iter().rev().filter(keep).map(|t| (t, false));
    let all = live.chain(ended);
    let page = f.page.unwrap_or(0);
    let mut total = 0;
    let mut rows = Vec::with_capacity(PER_PAGE);
    for (i, (t, is_live)) in all.enumerate() {
        total += 1;
        if i >= page * PER_PAGE && rows.len() < PER_PAGE {
            rows.push(task_row(st, t, is_live));
        }
    }
    (rows, total)
}

/// The live part of the tasks page.
pub fn tasks_markup(rows: &[TaskRow], total: usize, f: &Filters) -> Markup {
    let page = f.page.unwrap_or(0);
    let pages = total.div_ceil(PER_PAGE).max(1);
    let q = f.q.as_deref().unwrap_or("");
    html! {
        h1 { "Tasks" }
        p.meta { (total) " tasks" @if !q.is_empty() { " matching " code { (q) } } }
        @if rows.is_empty() { p.empty { "No tasks." } } @else {
            table.grid #tasks {
                thead { tr { th { "Task" } th { "Of" } th { "Host" } th { "State" } th { "Staged" } th { "CPUs" } th { "Memory" } th { "GPUs" } } }
                tbody {
                    @for r in rows {
                        tr data-task=(r.id) class=[(!r.live).then_some("ended")] {
                            td { a.mono href=(format!("/ui/tasks/{}", enc(&r.id))) { (r.id) } }
                            td { a href=(r.owner_link) { (r.owner) } }
                            td { (r.host) }
                            td { span class=(format!("pill {}", r.state.to_lowercase())) { (r.state) } }
                            td { (iso(r.staged_at)) }
                            td { (cpus(r.cpus)) } td { (mib(r.mem)) } td { (r.gpus) }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager {
                    @for p in 0..pages.min(50) {
                        a href=(format!("/ui/tasks?page={p}{}", if q.is_empty() { String::new() } else { format!("&q={}", enc(q)) }))
                          class=[(p == page).then_some("active")] { (p + 1) }
                    }
                    @if pages > 50 { span { " … " (pages) " pages; search to narrow" } }
                }
            }
        }
    }
}

fn search_form(f: &Filters) -> Markup {
    html! {
        form.filterbar method="get" action="/ui/tasks" {
            input type="search" name="q" placeholder="Search by task id, app or job" value=[f.q.as_deref()];
            button type="submit" { "Search" }
        }
    }
}

/// `GET /ui/tasks`.
pub async fn page(
    State(core): State<Arc<Core>>,
    Query(f): Query<Filters>,
    headers: HeaderMap,
) -> Response {
    let (rows, total) = {
        let st = core.state().await;
        task_rows(&st.cluster, &f)
    };
    let page = Page {
        title: "Tasks".into(),
        section: Section::Tasks,
        top: search_form(&f),
        live: tasks_markup(&rows, total, &f),
        fixed: html! {},
    };
    respond(&headers, page)
}

fn task_markup(t: &TaskRecord, r: &TaskRow) -> Markup {
    let status = t.status.as_ref();
    html! {
        h1.mono { (r.id) }
        p.meta {
            span class=(format!("pill {}", r.state.to_lowercase())) #task-state { (r.state) }
            " · of " a href=(r.owner_link) { (r.owner) } " · on " (r.host)
        }
        h2 { "History" }
        table.grid #history {
            thead { tr { th { "When" } th { "State" } th { "Detail" } } }
            tbody {
                tr { td { (iso(t.staged_at)) } td { "TASK_STAGING" } td { "placed and sent to the agent" } }
                @if let Some(s) = t.started_at { tr { td { (iso(s)) } td { "TASK_RUNNING" } td { "first reported running" } } }
                @if let Some(u) = t.unreachable_since { tr { td { (iso(u)) } td { "TASK_UNREACHABLE" } td { "its agent stopped answering" } } }
                @if let Some(s) = status.filter(|s| s.state.name() != "TASK_RUNNING" || t.started_at.is_none()) {
                    tr { td { (iso(s.timestamp)) } td { (s.state.name()) }
                         td { (s.message.as_deref().unwrap_or(""))
                              @if let Some(reason) = &s.reason { " (" (format!("{reason:?}")) ")" }
                              @if let Some(c) = s.exit_code { " · exit code " (c) }
                              @if let Some(sig) = s.signal { " · signal " (sig) } } }
                }
                @if t.kill_requested { tr { td { "" } td { "kill asked" } td { "a kill was sent" } } }
            }
        }
        @if t.health.iter().any(|h| !h.is_pending()) {
            h2 { "Health checks" }
            table.grid #health {
                thead { tr { th { "Check" } th { "Alive" } th { "Failures in a row" } th { "Last success" } th { "Last failure" } th { "Cause" } } }
                tbody {
                    @for (i, h) in t.health.iter().enumerate().filter(|(_, h)| !h.is_pending()) {
                        tr {
                            td { (i) }
                            td { span class=(if h.alive { "pill running" } else { "pill failed" }) { (if h.alive { "healthy" } else { "unhealthy" }) } }
                            td { (h.consecutive_failures) }
                            td { (h.last_success.map(iso).unwrap_or_default()) }
                            td { (h.last_failure.map(iso).unwrap_or_default()) }
                            td { (h.last_failure_cause.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        h2 { "Resources" }
        p { (cpus(t.info.resources.cpus)) " CPUs · " (mib(t.info.resources.mem)) " · disk " (mib(t.info.resources.disk))
            @if !t.info.ports.is_empty() { " · ports " (t.info.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")) } }
        @if let Some(p) = &t.info.placement {
            p {
                @if let Some(n) = p.numa_node { "NUMA node " (n) " · " }
                @if !p.cpus.is_empty() { "CPUs " (p.cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")) }
            }
            @if !p.gpus.is_empty() {
                ul.gpulist { @for g in &p.gpus { li { "GPU " (g.index) " · " span.mono { (g.uuid.as_ref()) } } } }
            }
        }
        @if !t.info.labels.is_empty() {
            p { @for (k, v) in &t.info.labels { span.tag { (k) ": " (v) } " " } }
        }
    }
}

fn logs(id: &str) -> Markup {
    let base = format!("/gantry/v1/tasks/{}/files/read", enc(id));
    html! {
        h2 { "Output" }
        @for file in ["stdout", "stderr"] {
            section.log data-log=(base.clone()) data-path=(file) {
                div.logbar { b { (file) } " " button data-log-tail="" { "Tail" } " " button data-log-follow="" { "Follow" } span.logstate {} }
                pre.logtext { }
            }
        }
        noscript { p { "Without JavaScript, read the output at " code { (base) "?path=stdout" } "." } }
    }
}

/// `GET /ui/tasks/{id}`.
pub async fn task_page(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = {
        let st = core.state().await;
        let c = &st.cluster;
        let tid = TaskId(id.clone());
        c.tasks()
            .get(&tid)
            .map(|t| (t, true))
            .or_else(|| {
                c.completed
                    .iter()
                    .rev()
                    .find(|t| t.info.task_id == tid)
                    .map(|t| (t, false))
            })
            .map(|(t, live)| task_markup(t, &task_row(c, t, live)))
    };
    match found {
        Some(live) => {
            let page = Page {
                title: id.clone(),
                section: Section::Tasks,
                top: html! {},
                live,
                fixed: logs(&id),
            };
            respond(&headers, page)
        }
        None => not_found(
            &headers,
            Section::Tasks,
            &format!("No live or recently ended task has the id {id}."),
        ),
    }
}
