//! The services page (`/ui/services`): Marathon's application table (name, CPUs, memory, status,
//! running instances "3 of 3") with its status filters (running, deploying, suspended, delayed,
//! waiting), a label filter and a search box, why an app waits, and the create form whose
//! validation errors appear next to the field at fault; and an app's page
//! (`/ui/services/{id}`) with its tasks, last failure and actions (scale, restart, edit, destroy).
//! Both show the deployments in progress (all of them, or the app's) with their steps.

use super::cluster::not_found;
use super::deployments::{deployments_markup, plans};
use super::layout::{cpus, enc, mib, respond, Page, Section};
use crate::api::marathon::render::waiting;
use crate::cluster::Core;
use crate::services::app_definition::AppDefinition;
use crate::state::MasterState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_proto::time::now_secs;
use gantry_proto::TaskState;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The rows shown per page.
const PER_PAGE: usize = 200;

/// An app's status, as Marathon's UI names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Running,
    Deploying,
    Suspended,
    Delayed,
    Waiting,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Running,
        Status::Deploying,
        Status::Suspended,
        Status::Delayed,
        Status::Waiting,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Deploying => "deploying",
            Status::Suspended => "suspended",
            Status::Delayed => "delayed",
            Status::Waiting => "waiting",
        }
    }
}

/// One app, copied out of the state.
pub struct AppRow {
    pub id: String,
    pub cmd: String,
    pub cpus: f64,
    pub mem: f64,
    pub gpus: u32,
    pub instances: u32,
    pub running: usize,
    pub staged: usize,
    pub status: Status,
    pub why: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Running and staged task counts of every app, in one pass over the tasks.
fn counts(st: &MasterState) -> HashMap<&str, (usize, usize)> {
    let mut out: HashMap<&str, (usize, usize)> = HashMap::new();
    for t in st.cluster.tasks().values() {
        let Some(app) = t.app_id() else { continue };
        let e = out.entry(app).or_default();
        match t.state {
            TaskState::TaskRunning => e.0 += 1,
            TaskState::TaskStaging | TaskState::TaskStarting => e.1 += 1,
            _ => {}
        }
    }
    out
}

fn why(w: &Value) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(r) = w["reason"].as_str() {
        parts.push(r.to_owned());
    }
    if let Some(s) = w["delay"]["timeLeftSeconds"].as_i64() {
        parts.push(format!("delayed {s} s after failures"));
    }
    if let Some(m) = w["lastFailureMessage"].as_str() {
        parts.push(format!("last failure: {m}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn row(st: &MasterState, app: &AppDefinition, c: (usize, usize), now: f64) -> AppRow {
    let (running, staged) = c;
    let w = waiting(st, app, now);
    let delayed = w.as_ref().is_some_and(|w| w.get("delay").is_some());
    let placing = w.as_ref().is_some_and(|w| w.get("reason").is_some());
    let status = if app.instances == 0 && running + staged == 0 {
        Status::Suspended
    } else if delayed {
        Status::Delayed
    } else if placing {
        Status::Waiting
    } else if running != app.instances as usize || staged > 0 {
        Status::Deploying
    } else {
        Status::Running
    };
    let cmd = app
        .cmd
        .clone()
        .or_else(|| app.args.as_ref().map(|a| a.join(" ")))
        .unwrap_or_default();
    AppRow {
        id: app.id.clone(),
        cmd,
        cpus: app.cpus,
        mem: app.mem,
        gpus: app.gpus,
        instances: app.instances,
        running,
        staged,
        status,
        why: w.as_ref().and_then(why),
        labels: app.labels.clone(),
    }
}

/// Every app's row (the services bench calls this with the lock held, as the page does).
pub fn app_rows(st: &MasterState) -> Vec<AppRow> {
    let now = now_secs();
    let c = counts(st);
    st.services
        .apps
        .values()
        .map(|a| {
            row(
                st,
                a,
                c.get(a.id.as_str()).copied().unwrap_or_default(),
                now,
            )
        })
        .collect()
}

/// The services page's filters.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    /// Case-insensitive substring of the id or command.
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// `key` or `key:value`.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub page: Option<usize>,
}

impl Filters {
    fn keeps(&self, r: &AppRow) -> bool {
        if let Some(q) = self.q.as_deref().filter(|q| !q.is_empty()) {
            let q = q.to_lowercase();
            if !r.id.to_lowercase().contains(&q) && !r.cmd.to_lowercase().contains(&q) {
                return false;
            }
        }
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            if r.status.name() != s {
                return false;
            }
        }
        if let Some(l) = self.label.as_deref().filter(|l| !l.is_empty()) {
            let (k, v) = l.split_once(':').map_or((l, None), |(k, v)| (k, Some(v)));
            match (r.labels.get(k), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        true
    }

    fn link(&self, status: Option<&str>, page: Option<usize>) -> String {
        let mut q = Vec::new();
        if let Some(v) = self.q.as_deref().filter(|v| !v.is_empty()) {
            q.push(format!("q={}", enc(v)));
        }
        if let Some(v) = status {
            q.push(format!("status={v}"));
        }
        if let Some(v) = self.label.as_deref().filter(|v| !v.is_empty()) {
            q.push(format!("label={}", enc(v)));
        }
        if let Some(p) = page.filter(|p| *p > 0) {
            q.push(format!("page={p}"));
        }
        if q.is_empty() {
            "/ui/services".into()
        } else {
            format!("/ui/services?{}", q.join("&"))
        }
    }
}

/// The live part of the services page.
pub fn services_markup(rows: &[AppRow], f: &Filters) -> Markup {
    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *by_status.entry(r.status.name()).or_default() += 1;
    }
    let kept: Vec<&AppRow> = rows.iter().filter(|r| f.keeps(r)).collect();
    let page = f.page.unwrap_or(0);
    let pages = kept.len().div_ceil(PER_PAGE).max(1);
    let shown = kept.iter().skip(page * PER_PAGE).take(PER_PAGE);
    let current = f.status.as_deref().filter(|s| !s.is_empty());
    html! {
        h1 { "Services" }
        nav.filters {
            a href=(f.link(None, None)) class=[current.is_none().then_some("active")] { "All " span.count { (rows.len()) } }
            @for s in Status::ALL {
                a href=(f.link(Some(s.name()), None)) data-status=(s.name())
                  class=[(current == Some(s.name())).then_some("active")] {
                    (s.name()) " " span.count { (by_status.get(s.name()).copied().unwrap_or(0)) }
                }
            }
        }
        @if kept.is_empty() {
            p.empty { @if rows.is_empty() { "No apps yet. Create one below." } @else { "No app matches." } }
        } @else {
            table.grid #apps {
                thead { tr { th { "Name" } th { "CPUs" } th { "Memory" } th { "GPUs" } th { "Status" } th { "Running instances" } } }
                tbody {
                    @for r in shown {
                        tr data-app=(r.id) data-status=(r.status.name()) {
                            td {
                                a href=(format!("/ui/services{}", r.id)) { (r.id) }
                                @for (k, v) in &r.labels { " " span.tag { (k) @if !v.is_empty() { ":" (v) } } }
                                @if let Some(w) = &r.why { div.why { (w) } }
                            }
                            td { (cpus(r.cpus)) }
                            td { (mib(r.mem)) }
                            td { (r.gpus) }
                            td { span class=(format!("pill {}", r.status.name())) { (r.status.name()) } }
                            td.instances { (r.running) " of " (r.instances) @if r.staged > 0 { small { " (" (r.staged) " staging)" } } }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager {
                    @for p in 0..pages {
                        a href=(f.link(current, Some(p))) class=[(p == page).then_some("active")] { (p + 1) }
                    }
                }
            }
        }
    }
}

fn filter_bar(f: &Filters) -> Markup {
    html! {
        form.filterbar method="get" action="/ui/services" {
            input type="search" name="q" placeholder="Search by name or command" value=[f.q.as_deref()];
            input type="text" name="label" placeholder="label key or key:value" value=[f.label.as_deref()];
            @if let Some(s) = f.status.as_deref() { input type="hidden" name="status" value=(s); }
            button type="submit" { "Filter" }
        }
    }
}

fn create_form() -> Markup {
    html! {
        details.create #create-app {
            summary { "Create an app" }
            form #app-form data-api="POST /v2/apps" novalidate {
                div.fields {
                    label { "ID" input name="id" data-path="/id" placeholder="/my-app"; span.err data-for="/id" {} }
                    label { "Command" input name="cmd" data-path="/cmd" placeholder="python3 -m http.server $PORT0"; span.err data-for="/cmd" {} }
                    label { "CPUs" input name="cpus" data-path="/cpus" data-type="number" value="0.1"; span.err data-for="/cpus" {} }
                    label { "Memory (MiB)" input name="mem" data-path="/mem" data-type="number" value="64"; span.err data-for="/mem" {} }
                    label { "Instances" input name="instances" data-path="/instances" data-type="number" value="1"; span.err data-for="/instances" {} }
                    label { "GPUs" input name="gpus" data-path="/gpus" data-type="number" value="0"; span.err data-for="/gpus" {} }
                }
                label.json { "More of the AppDefinition, as JSON (the fields above win)"
                    textarea name="json" rows="5" placeholder="{\"labels\": {\"team\": \"ml\"}}" {}
                    span.err data-for="" {}
                }
                button type="submit" { "Create" }
            }
        }
    }
}

/// `GET /ui/services`.
pub async fn page(
    State(core): State<Arc<Core>>,
    Query(f): Query<Filters>,
    headers: HeaderMap,
) -> Response {
    let (rows, deploying) = {
        let st = core.state().await;
        (app_rows(&st), plans(&st, None))
    };
    let page = Page {
        title: "Services".into(),
        section: Section::Services,
        top: filter_bar(&f),
        live: html! { (services_markup(&rows, &f)) (deployments_markup(&deploying)) },
        fixed: create_form(),
    };
    respond(&headers, page)
}

fn app_markup(
    r: &AppRow,
    tasks: &[(String, String, String, String)],
    failure: Option<&Value>,
) -> Markup {
    html! {
        h1 { (r.id) }
        p.meta {
            span class=(format!("pill {}", r.status.name())) { (r.status.name()) }
            " · " span.instances { (r.running) " of " (r.instances) } " running"
            " · " (cpus(r.cpus)) " CPUs · " (mib(r.mem)) @if r.gpus > 0 { " · " (r.gpus) " GPUs" }
        }
        @if let Some(w) = &r.why { p.why { (w) } }
        @if let Some(f) = failure {
            div.failure {
                b { "Last task failure" } " (" (f["state"].as_str().unwrap_or("")) ", " (f["timestamp"].as_str().unwrap_or("")) "): "
                (f["message"].as_str().unwrap_or(""))
            }
        }
        p.cmd { code { (r.cmd) } }
        h2 { "Tasks" }
        @if tasks.is_empty() { p.empty { "No tasks." } } @else {
            table.grid #app-tasks { thead { tr { th { "Task" } th { "Host" } th { "State" } th { "Ports" } } }
                tbody { @for (id, host, state, ports) in tasks {
                    tr { td { a.mono href=(format!("/ui/tasks/{}", enc(id))) { (id) } } td { (host) } td { span class=(format!("pill {}", state.to_lowercase())) { (state) } } td { (ports) } }
                } } }
        }
    }
}

fn app_actions(id: &str, instances: u32, json: &str) -> Markup {
    let api = format!("/v2/apps{id}");
    html! {
        div.actions {
            form.inline #scale-form data-api=(format!("PUT {api}")) {
                label { "Instances " input name="instances" data-path="/instances" data-type="number" value=(instances) min="0"; }
                button type="submit" { "Scale" }
                span.err data-for="/instances" {}
            }
            button data-method="POST" data-url=(format!("{api}/restart")) { "Restart" }
            button.danger #destroy-app data-method="DELETE" data-url=(api.clone()) data-confirm=(format!("Destroy {id} and kill its tasks?")) data-then="/ui/services" { "Destroy" }
        }
        details.create {
            summary { "Edit the definition" }
            form #edit-form data-api=(format!("PUT {api}")) {
                label.json { textarea name="json" rows="16" { (json) } span.err data-for="" {} }
                button type="submit" { "Save (starts a deployment)" }
            }
        }
    }
}

/// `GET /ui/services/{id}`.
pub async fn app_page(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = format!("/{}", id.trim_matches('/'));
    let found = {
        let st = core.state().await;
        st.services.apps.get(&id).map(|app| {
            let c = counts(&st)
                .get(app.id.as_str())
                .copied()
                .unwrap_or_default();
            let r = row(&st, app, c, now_secs());
            let tasks: Vec<(String, String, String, String)> = st
                .cluster
                .app_tasks(&id)
                .map(|t| {
                    let host = st
                        .cluster
                        .agents
                        .get(&t.info.agent_id)
                        .map(|a| a.record.info.hostname.clone())
                        .unwrap_or_default();
                    let ports = t.info.ports.iter().map(u16::to_string).collect::<Vec<_>>();
                    (
                        t.info.task_id.0.clone(),
                        host,
                        t.state.name().to_owned(),
                        ports.join(", "),
                    )
                })
                .collect();
            let info = crate::api::marathon::render::app_info(&st, app, true);
            let json = serde_json::to_string_pretty(app).unwrap_or_default();
            let deploying = plans(&st, Some(&id));
            let failure = info.get("lastTaskFailure").cloned();
            (r, tasks, failure, json, deploying)
        })
    };
    match found {
        Some((r, tasks, failure, json, deploying)) => {
            let page = Page {
                title: r.id.clone(),
                section: Section::Services,
                top: html! {},
                live: html! { (app_markup(&r, &tasks, failure.as_ref())) (deployments_markup(&deploying)) },
                fixed: app_actions(&r.id, r.instances, &json),
            };
            respond(&headers, page)
        }
        None => not_found(
            &headers,
            Section::Services,
            &format!("No app has the id {id}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, status: Status, labels: &[(&str, &str)]) -> AppRow {
        AppRow {
            id: id.into(),
            cmd: "sleep 1".into(),
            cpus: 0.1,
            mem: 32.0,
            gpus: 0,
            instances: 3,
            running: 3,
            staged: 0,
            status,
            why: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn filters_keep_by_status_label_and_search() {
        let rows = [
            r("/web", Status::Running, &[("team", "a")]),
            r("/db", Status::Waiting, &[("team", "b")]),
        ];
        let f = |q: Option<&str>, s: Option<&str>, l: Option<&str>| Filters {
            q: q.map(String::from),
            status: s.map(String::from),
            label: l.map(String::from),
            page: None,
        };
        let kept = |f: Filters| {
            rows.iter()
                .filter(|r| f.keeps(r))
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(f(None, Some("waiting"), None)), ["/db"]);
        assert_eq!(kept(f(None, None, Some("team:a"))), ["/web"]);
        assert_eq!(kept(f(None, None, Some("team"))), ["/web", "/db"]);
        assert_eq!(kept(f(Some("WE"), None, None)), ["/web"]);
        let html = services_markup(&rows, &f(None, None, None)).into_string();
        assert!(html.contains("3 of 3"), "{html}");
        assert!(html.contains(r#"data-status="waiting""#), "{html}");
    }
}
