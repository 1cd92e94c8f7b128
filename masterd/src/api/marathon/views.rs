//! Marathon's response shapes (spec §3.1, §3.2) as typed views that borrow from the master's
//! state and serialise straight into the response body: AppInfo (the app, its counts and
//! deployments and, when asked, its tasks and lastTaskFailure), Task (with healthCheckResults and,
//! when asked, gpuUsage) and the app's last failure. No `serde_json::Value` tree is built in
//! between, so `GET /v2/apps?embed=apps.tasks` with 1,000 apps and 10,000 tasks renders in one
//! pass under the master's lock (BENCHMARKS.md has the figures).

use super::gpu_usage::GpuUsageView;
use super::render::waiting;
use crate::services::app_definition::{AppDefinition, PortDefinition};
use crate::services::health::{is_healthy, is_unhealthy};
use crate::state::MasterState;
use crate::store::records::{TaskOwner, TaskRecord};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Timelike};
use gantry_proto::{AgentId, GpuUsage, HealthResult, TaskId, TaskState};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// What a rendering embeds beyond Marathon's defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Embeds {
    /// AppInfo: the app's `tasks` and `lastTaskFailure`.
    pub tasks: bool,
    /// AppInfo: `lastTaskFailure` without the tasks (`embed=apps.lastTaskFailure`).
    pub last_task_failure: bool,
    /// AppInfo: `taskStats` (`embed=apps.taskStats`).
    pub task_stats: bool,
    /// AppInfo: the Gantry `waiting` extension (see [`super::render::waiting`]).
    pub waiting: bool,
    /// Task: the Gantry `gpuUsage` extension (see [`super::gpu_usage`]).
    pub gpu_usage: bool,
    /// Task: its app's service ports in `servicePorts` (empty otherwise, as Marathon's app tasks).
    pub service_ports: bool,
    /// AppInfo: `readinessCheckResults` (`embed=app.readiness`).
    pub readiness: bool,
}

impl Embeds {
    /// What `embed` values ask for (spec §1.1): any of the prefixes `apps.`, `app.`,
    /// `group.apps.` or none; `failures` is tasks and lastTaskFailure; unknown values are ignored.
    pub fn asked<'q>(embeds: impl Iterator<Item = &'q str>) -> Embeds {
        let embeds: Vec<&str> = embeds.collect();
        let all = || embeds.iter().copied();
        let has = |name: &str| {
            all().any(|e| {
                let bare = ["group.apps.", "apps.", "app."]
                    .iter()
                    .find_map(|p| e.strip_prefix(p))
                    .unwrap_or(e);
                bare == name
            })
        };
        Embeds {
            tasks: has("tasks") || has("failures"),
            last_task_failure: has("lastTaskFailure") || has("failures"),
            task_stats: has("taskStats"),
            waiting: super::render::embeds_waiting(all()),
            gpu_usage: super::gpu_usage::embeds_gpu_usage(all()),
            readiness: super::render::embeds_readiness(all()),
            service_ports: false,
        }
    }
}

/// Renders the apps and tasks of one state, finding each app's last failure in one pass over the
/// completed tasks the first time one is asked for.
pub struct Renderer<'a> {
    st: &'a MasterState,
    embeds: Embeds,
    now: f64,
    failures: OnceCell<HashMap<&'a str, &'a TaskRecord>>,
}

impl<'a> Renderer<'a> {
    pub fn new(st: &'a MasterState, embeds: Embeds) -> Self {
        Renderer {
            st,
            embeds,
            now: gantry_proto::time::now_secs(),
            failures: OnceCell::new(),
        }
    }

    /// The AppInfo of `app`.
    pub fn app(&self, app: &'a AppDefinition) -> AppInfoView<'a> {
        let tasks: Vec<&'a TaskRecord> = self.st.cluster.app_tasks(&app.id).collect();
        let mut view = AppInfoView {
            app,
            tasks_staged: 0,
            tasks_running: 0,
            tasks_healthy: 0,
            tasks_unhealthy: 0,
            deployments: self
                .st
                .services
                .deployments
                .values()
                .filter(|d| d.affects(&app.id))
                .map(|d| DeploymentRef { id: &d.id })
                .collect(),
            tasks: None,
            last_task_failure: None,
            waiting: None,
            readiness_check_results: None,
            task_stats: None,
        };
        for t in &tasks {
            match t.state {
                TaskState::TaskStaging | TaskState::TaskStarting => view.tasks_staged += 1,
                TaskState::TaskRunning => view.tasks_running += 1,
                _ => {}
            }
            view.tasks_healthy += usize::from(is_healthy(t));
            view.tasks_unhealthy += usize::from(is_unhealthy(t));
        }
        if self.embeds.task_stats {
            view.task_stats = Some(super::task_stats::of(app, &tasks, self.now));
        }
        if self.embeds.last_task_failure && !self.embeds.tasks {
            view.last_task_failure = self.last_failure(&app.id);
        }
        if self.embeds.tasks {
            view.last_task_failure = self.last_failure(&app.id);
            view.tasks = Some(TaskList {
                st: self.st,
                embeds: self.embeds,
                tasks,
            });
        }
        if self.embeds.waiting {
            view.waiting = waiting(self.st, app, self.now);
        }
        if self.embeds.readiness {
            view.readiness_check_results = Some(crate::services::readiness::results_of(
                &self.st.services,
                &self.st.cluster,
                &app.id,
            ));
        }
        view
    }

    /// A task as Marathon returns it.
    pub fn task(&self, t: &'a TaskRecord) -> TaskView<'a> {
        task_view(self.st, self.embeds, t)
    }

    /// The app's `lastTaskFailure`: its latest task that failed or was killed for failed health
    /// checks.
    pub fn last_failure(&self, app_id: &str) -> Option<FailureView<'a>> {
        let failures = self.failures.get_or_init(|| {
            let mut by_app = HashMap::new();
            for t in self.st.cluster.completed.iter().rev() {
                if let Some(app) = t.app_id().filter(|_| is_failure(t)) {
                    by_app.entry(app).or_insert(t);
                }
            }
            by_app
        });
        failures.get(app_id).map(|t| failure_view(self.st, t))
    }

    /// `{"apps": [...]}` of `apps`, serialised.
    pub fn apps_body(
        &self,
        apps: impl Iterator<Item = &'a AppDefinition>,
    ) -> Result<Vec<u8>, serde_json::Error> {
        let (lower, _) = apps.size_hint();
        let per_app = if self.embeds.tasks { 5_000 } else { 1_000 };
        let mut out = Vec::with_capacity(16 + lower.max(1) * per_app);
        out.extend_from_slice(b"{\"apps\":[");
        for (i, app) in apps.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &self.app(app))?;
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

/// `{"app": {...}}`.
#[derive(Serialize)]
pub struct AppBody<'a> {
    pub app: AppInfoView<'a>,
}

/// `{"task": {...}}`.
#[derive(Serialize)]
pub struct TaskBody<'a> {
    pub task: TaskView<'a>,
}

/// `{"tasks": [...]}`.
#[derive(Serialize)]
pub struct TasksBody<'a> {
    pub tasks: Vec<TaskView<'a>>,
}

/// An already serialised JSON body as a response (`application/json`, as axum's `Json` sends).
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `value` serialised as a 200 response, or a 500 saying why it could not be.
pub fn to_json_response<T: Serialize>(value: &T) -> Result<Response, super::error::MarathonError> {
    serde_json::to_vec(value)
        .map(|body| json_response(StatusCode::OK, body))
        .map_err(|e| super::error::MarathonError::Internal(format!("rendering the answer: {e}")))
}

/// A task that counts as its app's `lastTaskFailure`.
fn is_failure(t: &TaskRecord) -> bool {
    t.state == TaskState::TaskFailed || t.killed_unhealthy()
}

/// The app's `lastTaskFailure` without a [`Renderer`] (a scan of the completed tasks).
pub fn last_failure<'a>(st: &'a MasterState, app_id: &str) -> Option<FailureView<'a>> {
    let t = st
        .cluster
        .completed
        .iter()
        .rev()
        .find(|t| t.app_id() == Some(app_id) && is_failure(t))?;
    Some(failure_view(st, t))
}

/// The hostname of the agent `id` (empty when the agent is unknown).
fn hostname<'a>(st: &'a MasterState, id: &AgentId) -> &'a str {
    st.cluster
        .agents
        .get(id)
        .map_or("", |a| a.record.info.hostname.as_str())
}

/// The app version a task runs (empty for tasks that are not an app's).
fn app_version(t: &TaskRecord) -> &str {
    match &t.owner {
        TaskOwner::App { version, .. } => version,
        TaskOwner::JobRun { .. } | TaskOwner::Framework { .. } => "",
    }
}

fn task_view<'a>(st: &'a MasterState, embeds: Embeds, t: &'a TaskRecord) -> TaskView<'a> {
    let host = hostname(st, &t.info.agent_id);
    let service_ports = if embeds.service_ports {
        t.app_id()
            .and_then(|a| st.services.apps.get(a))
            .map_or(&[][..], |a| a.port_definitions.as_slice())
    } else {
        &[]
    };
    let gpu_usage = embeds.gpu_usage.then(|| {
        GpuUsages(
            st.cluster
                .usage
                .get(&t.info.task_id)
                .map_or(&[][..], |u| u.gpu_usage.as_slice()),
        )
    });
    TaskView {
        id: &t.info.task_id,
        app_id: t.owner.name(),
        host,
        slave_id: &t.info.agent_id,
        state: t.state.name(),
        staged_at: Iso(t.staged_at),
        started_at: t.started_at.map(Iso),
        version: app_version(t),
        ports: &t.info.ports,
        service_ports: ServicePorts(service_ports),
        ip_addresses: IpAddresses(host.parse().ok()),
        health_check_results: HealthResults(t),
        gpu_usage,
    }
}

fn failure_view<'a>(st: &'a MasterState, t: &'a TaskRecord) -> FailureView<'a> {
    let status = t.status.as_ref();
    let message = match t.health_kill_cause() {
        Some(cause) if t.state == TaskState::TaskKilled => Cow::Owned(format!(
            "Task was killed since health check failed. Reason: {cause}"
        )),
        _ => status
            .and_then(|s| s.message.as_deref())
            .map_or(Cow::Borrowed(""), Cow::Borrowed),
    };
    FailureView {
        app_id: t.owner.name(),
        host: hostname(st, &t.info.agent_id),
        message,
        state: t.state.name(),
        task_id: &t.info.task_id,
        timestamp: Iso(status.map_or(t.staged_at, |s| s.timestamp)),
        version: app_version(t),
        slave_id: &t.info.agent_id,
    }
}

/// An AppInfo: the app's canonical JSON followed by its counts and deployments, and with
/// [`Embeds::tasks`] its tasks and lastTaskFailure.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfoView<'a> {
    #[serde(flatten)]
    pub app: &'a AppDefinition,
    pub tasks_staged: usize,
    pub tasks_running: usize,
    pub tasks_healthy: usize,
    pub tasks_unhealthy: usize,
    pub deployments: Vec<DeploymentRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<TaskList<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_task_failure: Option<FailureView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness_check_results: Option<Vec<crate::services::readiness::ReadinessResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_stats: Option<super::task_stats::TaskStats>,
}

/// `{"id": ...}` of a deployment that changes the app.
#[derive(Serialize)]
pub struct DeploymentRef<'a> {
    pub id: &'a str,
}

/// An app's tasks, rendered one by one as they are written.
struct TaskList<'a> {
    st: &'a MasterState,
    embeds: Embeds,
    tasks: Vec<&'a TaskRecord>,
}

impl Serialize for TaskList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.tasks
                .iter()
                .map(|t| task_view(self.st, self.embeds, t)),
        )
    }
}

/// A Marathon Task.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView<'a> {
    id: &'a TaskId,
    app_id: &'a str,
    host: &'a str,
    slave_id: &'a AgentId,
    state: &'static str,
    staged_at: Iso,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Iso>,
    version: &'a str,
    ports: &'a [u16],
    service_ports: ServicePorts<'a>,
    ip_addresses: IpAddresses,
    health_check_results: HealthResults<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_usage: Option<GpuUsages<'a>>,
}

/// An app's `lastTaskFailure`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureView<'a> {
    app_id: &'a str,
    host: &'a str,
    pub message: Cow<'a, str>,
    state: &'static str,
    task_id: &'a TaskId,
    timestamp: Iso,
    version: &'a str,
    slave_id: &'a AgentId,
}

/// `servicePorts`: the ports of the app's port definitions.
struct ServicePorts<'a>(&'a [PortDefinition]);

impl Serialize for ServicePorts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| p.port))
    }
}

/// `ipAddresses` as Marathon writes them: the host's address when it is one.
struct IpAddresses(Option<IpAddr>);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IpAddressView {
    ip_address: IpAddr,
    protocol: &'static str,
}

impl Serialize for IpAddresses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.map(|ip| IpAddressView {
            ip_address: ip,
            protocol: if ip.is_ipv4() { "IPv4" } else { "IPv6" },
        }))
    }
}

/// The task's `healthCheckResults` (spec §3.3), one per check that has a result (in the order of
/// the app's checks), with both `taskId` and `instanceId` (marathon-python reads either).
struct HealthResults<'a>(&'a TaskRecord);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthView<'a> {
    alive: bool,
    consecutive_failures: u32,
    first_success: Option<Iso>,
    last_failure: Option<Iso>,
    last_success: Option<Iso>,
    last_failure_cause: &'a Option<String>,
    task_id: &'a TaskId,
    instance_id: &'a str,
}

impl Serialize for HealthResults<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let counted = || t.health.iter().filter(|r| !r.is_pending());
        if counted().next().is_none() {
            return s.serialize_seq(Some(0))?.end();
        }
        let instance = crate::services::path_id::instance_of(&t.info.task_id.0);
        s.collect_seq(counted().map(|r: &HealthResult| HealthView {
            alive: r.alive,
            consecutive_failures: r.consecutive_failures,
            first_success: r.first_success.map(Iso),
            last_failure: r.last_failure.map(Iso),
            last_success: r.last_success.map(Iso),
            last_failure_cause: &r.last_failure_cause,
            task_id: &t.info.task_id,
            instance_id: &instance,
        }))
    }
}

/// A task's `gpuUsage`: each GPU it holds as its agent last sampled it.
struct GpuUsages<'a>(&'a [GpuUsage]);

impl Serialize for GpuUsages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(GpuUsageView))
    }
}

/// Seconds since the epoch written as Marathon writes timestamps (`2015-09-25T15:13:48.343Z`):
/// the same text as [`super::render::iso`], without a format string parsed for each one.
#[derive(Clone, Copy, Debug)]
pub struct Iso(pub f64);

impl Iso {
    /// The text for years 0–9999 (all but the first character fixed-width digits); `None`
    /// outside them.
    fn ascii(self) -> Option<[u8; 24]> {
        let t =
            chrono::DateTime::from_timestamp_millis((self.0 * 1000.0) as i64).unwrap_or_default();
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let fields = [
            (0..4, year),
            (5..7, t.month()),
            (8..10, t.day()),
            (11..13, t.hour()),
            (14..16, t.minute()),
            (17..19, t.second()),
            (20..23, t.timestamp_subsec_millis()),
        ];
        for (range, mut v) in fields {
            for c in b[range].iter_mut().rev() {
                *c = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        Some(b)
    }
}

impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ascii() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => f.write_str(&super::render::iso(self.0)),
        }
    }
}

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.ascii() {
            Some(b) => match std::str::from_utf8(&b) {
                Ok(text) => s.serialize_str(text),
                Err(_) => s.collect_str(self),
            },
            None => s.collect_str(self),
        }
    }
}
