//! Readiness checks (spec §2.7), run by the master during deployments: which new tasks to probe
//! and when, the results kept in memory per task (a master restart probes again), and the prober
//! that GETs `path` on each task's named port without holding the master's lock.

use super::app_definition::AppDefinition;
use super::deployments::config::CurrentConfig;
use super::deployments::ActionKind;
use super::state::ServiceState;
use crate::cluster::{ClusterState, Core};
use crate::store::records::TaskRecord;
use gantry_proto::{TaskId, TaskState};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often the prober looks for tasks whose probe is due.
const TICK: Duration = Duration::from_millis(250);

/// The most of a response body kept with `preserveLastResponse`.
const MAX_BODY: usize = 64 * 1024;

/// A response as `lastResponse` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One task's latest readiness result (`readinessCheckResults` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessResult {
    pub name: String,
    pub task_id: TaskId,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_response: Option<LastResponse>,
}

/// What one probe got: a response, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Response(LastResponse),
    Failed(String),
}

/// One probe to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub task_id: TaskId,
    pub name: String,
    pub url: String,
    pub timeout: Duration,
    pub ready_codes: Vec<u32>,
    pub preserve_last_response: bool,
}

/// The readiness results and probe schedule, in the master's state next to the apps.
#[derive(Debug, Default)]
pub struct ReadinessState {
    results: HashMap<TaskId, ReadinessResult>,
    /// When each probed task is next due (seconds since the epoch).
    next_due: HashMap<TaskId, f64>,
}

impl ReadinessState {
    /// Has the task's readiness check passed?
    pub fn is_ready(&self, task: &TaskId) -> bool {
        self.results.get(task).is_some_and(|r| r.ready)
    }

    /// The task's latest result, if it was probed.
    pub fn result(&self, task: &TaskId) -> Option<&ReadinessResult> {
        self.results.get(task)
    }

    /// Records a probe's outcome; returns whether the task is now ready. A ready task is not
    /// probed again.
    pub fn record(&mut self, probe: &Probe, outcome: ProbeOutcome) -> bool {
        let (ready, last) = match outcome {
            ProbeOutcome::Response(r) => (
                probe.ready_codes.contains(&u32::from(r.status)),
                Some(r).filter(|_| probe.preserve_last_response),
            ),
            ProbeOutcome::Failed(_) => (false, None),
        };
        if !self.next_due.contains_key(&probe.task_id) {
            return false; // the task ended while it was probed
        }
        if ready {
            self.next_due.remove(&probe.task_id);
        }
        self.results.insert(
            probe.task_id.clone(),
            ReadinessResult {
                name: probe.name.clone(),
                task_id: probe.task_id.clone(),
                ready,
                last_response: last,
            },
        );
        ready
    }

    /// Forgets tasks that are gone or ended.
    pub fn retain_live(&mut self, st: &ClusterState) {
        let live = |t: &TaskId| {
            st.tasks()
                .get(t)
                .is_some_and(|r| !r.state.is_terminal() && !r.expunged)
        };
        self.results.retain(|t, _| live(t));
        self.next_due.retain(|t, _| live(t));
    }
}

/// Does readiness gate this task, and has it passed? Only tasks of the app's current configuration
/// are checked (old ones count once running and healthy, as Marathon's); `current` says whether
/// `t` runs it.
pub fn passed(svc: &ServiceState, app: &AppDefinition, t: &TaskRecord, current: bool) -> bool {
    !current || app.readiness_checks.is_empty() || svc.readiness.is_ready(&t.info.task_id)
}

/// The apps whose tasks a deployment step in progress starts, scales or restarts.
fn deploying_apps(svc: &ServiceState) -> BTreeSet<&str> {
    svc.deployments
        .values()
        .flat_map(|d| d.current_actions())
        .filter(|a| a.action != ActionKind::StopApplication)
        .map(|a| a.app.as_str())
        .collect()
}

/// The host port of the port named `name` (a port definition on host networking, a port mapping
/// otherwise) for a task with host `ports`.
pub fn named_port(app: &AppDefinition, ports: &[u16], name: &str) -> Option<u16> {
    let index = if app.is_host_networking() {
        app.port_definitions
            .iter()
            .position(|p| p.name.as_deref() == Some(name))?
    } else {
        app.port_mappings()
            .iter()
            .position(|m| m.name.as_deref() == Some(name))?
    };
    super::health::host_port_at(app, ports, index)
}

/// The probes due at `now`: new running tasks of apps a deployment step is changing, not ready
/// yet, whose last probe was `intervalSeconds` ago (the first at once). Each is scheduled for its
/// next interval as it is handed out.
pub fn due_probes(svc: &mut ServiceState, st: &ClusterState, now: f64) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut scheduled: Vec<(TaskId, f64)> = Vec::new();
    for app_id in deploying_apps(svc) {
        let Some(app) = svc.apps.get(app_id) else {
            continue;
        };
        let Some(rc) = app.readiness_checks.first() else {
            continue;
        };
        let mut config = CurrentConfig::new(svc, app);
        for t in st.app_tasks(app_id) {
            let id = &t.info.task_id;
            if t.state != TaskState::TaskRunning || t.kill_requested || t.expunged {
                continue;
            }
            if svc.readiness.is_ready(id)
                || svc.readiness.next_due.get(id).is_some_and(|d| *d > now)
            {
                continue;
            }
            if !config.runs_current(t) {
                continue;
            }
            let next = now + rc.interval_seconds.max(1) as f64;
            let Some(port) = named_port(app, &t.info.ports, &rc.port_name) else {
                // A port mapping without a host port: nothing to probe from the master.
                tracing::warn!(task = %id, port = %rc.port_name, "readiness check names no host port of the task");
                scheduled.push((id.clone(), next));
                continue;
            };
            let scheme = if rc.protocol.eq_ignore_ascii_case("HTTPS") {
                "https"
            } else {
                "http"
            };
            let path = if rc.path.starts_with('/') {
                rc.path.clone()
            } else {
                format!("/{}", rc.path)
            };
            out.push(Probe {
                task_id: id.clone(),
                name: rc.name.clone(),
                url: format!("{scheme}://{}:{port}{path}", st.hostname(t)),
                timeout: Duration::from_secs(rc.timeout_seconds).max(Duration::from_millis(500)),
                ready_codes: rc.http_status_codes_for_ready.clone(),
                preserve_last_response: rc.preserve_last_response,
            });
            scheduled.push((id.clone(), next));
        }
    }
    svc.readiness.next_due.extend(scheduled);
    out
}

/// The results of `app_id`'s tasks of its current configuration while a deployment changes it
/// (Marathon shows none otherwise), by task id.
pub fn results_of(svc: &ServiceState, st: &ClusterState, app_id: &str) -> Vec<ReadinessResult> {
    let Some(app) = svc.apps.get(app_id) else {
        return Vec::new();
    };
    if !deploying_apps(svc).contains(app_id) {
        return Vec::new();
    }
    let mut config = CurrentConfig::new(svc, app);
    let mut out: Vec<ReadinessResult> = st
        .app_tasks(app_id)
        .filter(|t| config.runs_current(t))
        .filter_map(|t| svc.readiness.result(&t.info.task_id).cloned())
        .collect();
    out.sort_by(|a, b| a.task_id.0.cmp(&b.task_id.0));
    out
}

/// Runs one probe: a GET without following redirects; the body is kept up to 64 KiB.
pub async fn probe(client: &reqwest::Client, p: &Probe) -> ProbeOutcome {
    let resp = match client.get(&p.url).timeout(p.timeout).send().await {
        Ok(r) => r,
        Err(e) => return ProbeOutcome::Failed(e.to_string()),
    };
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match resp.bytes().await {
        Ok(b) => String::from_utf8_lossy(&b[..b.len().min(MAX_BODY)]).into_owned(),
        Err(e) => return ProbeOutcome::Failed(e.to_string()),
    };
    ProbeOutcome::Response(LastResponse {
        status,
        content_type,
        body,
    })
}

/// The client probes use: HTTPS accepts any certificate (Marathon does not verify either), and
/// redirects are answers, not followed.
fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| tracing::error!(error = %e, "no HTTP client for readiness checks"))
        .ok()
}

/// Runs the prober until the process ends: every tick, the due probes are taken under the lock
/// and run without it, each recording its result when it answers; a task turning ready wakes the
/// services controller.
pub async fn run(core: Arc<Core>) {
    let Some(client) = client() else {
        return;
    };
    loop {
        tokio::time::sleep(TICK).await;
        let due = {
            let mut guard = core.state().await;
            let state = &mut *guard;
            state.services.readiness.retain_live(&state.cluster);
            due_probes(
                &mut state.services,
                &state.cluster,
                gantry_proto::time::now_secs(),
            )
        };
        for p in due {
            let (core, client) = (core.clone(), client.clone());
            tokio::spawn(async move {
                let outcome = probe(&client, &p).await;
                if let ProbeOutcome::Failed(why) = &outcome {
                    tracing::debug!(task = %p.task_id, url = %p.url, why, "readiness probe failed");
                }
                let ready = core.state().await.services.readiness.record(&p, outcome);
                if ready {
                    tracing::info!(task = %p.task_id, "task is ready");
                    core.wake();
                }
            });
        }
    }
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
