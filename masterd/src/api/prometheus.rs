//! `GET /metrics`: the master's figures in the Prometheus text exposition format (version 0.0.4),
//! written by hand (no metrics crate): agents by state, tasks by state, launches, status updates,
//! apps, waiting instances, launch delays, the store's write latency, GPU health, per-task GPU
//! readings ([`task_gpus`]), HTTP answers.
//! The Mesos names stay on `/metrics/snapshot`; every metric here is documented in
//! docs/operations.md.

use crate::cluster::Core;
use crate::metrics::{HistogramSnapshot, HTTP_ANSWERS, STORE_APPLY};
use crate::state::MasterState;
use crate::store::records::AgentLifecycle;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use gantry_proto::{Resources, TaskState};
use std::fmt::Write as _;
use std::sync::Arc;

mod task_gpus;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: Prometheus's text format for scrapers (which ask for `text/plain` or
/// OpenMetrics), Chronos's Codahale JSON for everyone else (chronos-python sends no `Accept`).
pub async fn metrics(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants_text = accept.contains("text/plain")
        || accept.contains("openmetrics")
        || (accept.contains("*/*") && !accept.contains("application/json"));
    if !wants_text {
        return axum::Json(crate::api::chronos::graph::codahale(&core).await).into_response();
    }
    prometheus_text(&core).await.into_response()
}

/// The Prometheus text of `/metrics`.
async fn prometheus_text(core: &Core) -> impl IntoResponse {
    let now = gantry_proto::time::now_secs();
    let text = {
        let st = core.state().await;
        let figures = Figures {
            uptime_secs: now - core.started_at,
            now,
            store_apply: STORE_APPLY.snapshot(),
            http: HTTP_ANSWERS.snapshot(),
        };
        render(&st, &figures)
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

/// What `render` needs besides the cluster state.
pub struct Figures {
    pub uptime_secs: f64,
    /// Now, in seconds since the epoch (launch delays end at an absolute time).
    pub now: f64,
    pub store_apply: HistogramSnapshot,
    pub http: [(&'static str, u64); 5],
}

/// The text format, one metric family at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled as Prometheus does.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn lifecycle_name(l: AgentLifecycle) -> &'static str {
    match l {
        AgentLifecycle::Active => "active",
        AgentLifecycle::Unreachable => "unreachable",
        AgentLifecycle::Gone => "gone",
    }
}

/// Renders every metric from `st` and `f`.
pub fn render(st: &MasterState, f: &Figures) -> String {
    let mut e = Exposition(String::with_capacity(8192));
    e.one(
        "gantry_master_uptime_seconds",
        "gauge",
        "Seconds since this master started.",
        f.uptime_secs,
    );

    e.family(
        "gantry_agents",
        "gauge",
        "Agents the master knows, by lifecycle state.",
    );
    for l in [
        AgentLifecycle::Active,
        AgentLifecycle::Unreachable,
        AgentLifecycle::Gone,
    ] {
        let n = st
            .cluster
            .agents
            .values()
            .filter(|a| a.record.lifecycle == l)
            .count();
        e.sample("gantry_agents", &[("state", lifecycle_name(l))], n as f64);
    }
    let connected = st
        .cluster
        .agents
        .values()
        .filter(|a| a.conn.is_some())
        .count();
    e.one(
        "gantry_agents_connected",
        "gauge",
        "Agents with a live connection to this master.",
        connected as f64,
    );
    let c = &st.cluster.counters;
    e.one(
        "gantry_agent_registrations_total",
        "counter",
        "First registrations of agents since this master started.",
        c.slave_registrations as f64,
    );
    e.one(
        "gantry_agent_reregistrations_total",
        "counter",
        "Re-registrations of known agents since this master started.",
        c.slave_reregistrations as f64,
    );
    e.one(
        "gantry_agents_marked_unreachable_total",
        "counter",
        "Times an agent was marked unreachable after missed heartbeats.",
        c.slave_unreachable as f64,
    );

    let mut live = std::collections::HashMap::<TaskState, u64>::new();
    for t in st.cluster.tasks().values() {
        *live.entry(t.state).or_default() += 1;
    }
    e.family(
        "gantry_tasks",
        "gauge",
        "Tasks the master tracks (not ended), by state.",
    );
    for s in &TaskState::ALL {
        let n = live.get(s).copied().unwrap_or(0);
        e.sample("gantry_tasks", &[("state", s.name())], n as f64);
    }
    let mut ended = std::collections::HashMap::<TaskState, u64>::new();
    for t in &st.cluster.completed {
        *ended.entry(t.state).or_default() += 1;
    }
    e.family(
        "gantry_tasks_completed",
        "gauge",
        "Ended tasks the master remembers (the last 1000), by state.",
    );
    for s in &TaskState::ALL {
        let n = ended.get(s).copied().unwrap_or(0);
        e.sample("gantry_tasks_completed", &[("state", s.name())], n as f64);
    }
    e.one(
        "gantry_tasks_launched_total",
        "counter",
        "Tasks sent to agents to launch since this master started.",
        c.tasks_launched as f64,
    );
    e.family(
        "gantry_status_updates_total",
        "counter",
        "Task status updates received from agents, valid (new) or duplicate (redelivered).",
    );
    e.sample(
        "gantry_status_updates_total",
        &[("kind", "valid")],
        c.valid_status_updates as f64,
    );
    e.sample(
        "gantry_status_updates_total",
        &[("kind", "duplicate")],
        c.duplicate_status_updates as f64,
    );

    e.one(
        "gantry_apps",
        "gauge",
        "Marathon apps defined.",
        st.services.apps.len() as f64,
    );
    e.one(
        "gantry_jobs",
        "gauge",
        "Batch (Chronos) jobs defined.",
        st.batch.jobs.len() as f64,
    );
    e.family(
        "gantry_job_runs",
        "gauge",
        "Job run attempts that are queued or launched (running).",
    );
    for (state, label) in [
        (crate::batch::run::RunState::Queued, "queued"),
        (crate::batch::run::RunState::Launched, "launched"),
    ] {
        let n = st
            .batch
            .active
            .values()
            .filter(|r| r.state == state)
            .count();
        e.sample("gantry_job_runs", &[("state", label)], n as f64);
    }
    let waiting: usize = st.services.waiting.values().map(|w| w.count).sum();
    e.one(
        "gantry_app_instances_waiting",
        "gauge",
        "App instances that are wanted but not placed (GET /v2/queue says why).",
        waiting as f64,
    );
    let delayed: Vec<_> = st
        .services
        .launch_delays
        .iter()
        .filter(|(_, d)| d.until > f.now)
        .collect();
    e.one(
        "gantry_apps_launch_delayed",
        "gauge",
        "Apps whose relaunches are held back by their failure backoff now.",
        delayed.len() as f64,
    );
    e.family(
        "gantry_app_launch_delay_seconds",
        "gauge",
        "The current backoff delay of each app that has one.",
    );
    let mut delays: Vec<_> = st.services.launch_delays.iter().collect();
    delays.sort_by(|a, b| a.0.cmp(b.0));
    for (app, d) in delays {
        e.sample(
            "gantry_app_launch_delay_seconds",
            &[("app", app)],
            d.delay_secs,
        );
    }

    store_latency(&mut e, &f.store_apply);
    resources(&mut e, st);

    e.family(
        "gantry_gpus",
        "gauge",
        "GPUs each agent reports, by health (unhealthy GPUs are not offered).",
    );
    for a in st
        .cluster
        .agents
        .values()
        .filter(|a| a.record.lifecycle != AgentLifecycle::Gone)
    {
        let gpus = &a.record.info.gpus;
        let healthy = gpus.iter().filter(|g| g.healthy).count();
        let id = a.record.id.as_str();
        let host = a.record.info.hostname.as_str();
        for (health, n) in [("healthy", healthy), ("unhealthy", gpus.len() - healthy)] {
            e.sample(
                "gantry_gpus",
                &[("agent", id), ("hostname", host), ("health", health)],
                n as f64,
            );
        }
    }

    task_gpus::render(&mut e, st);

    e.family(
        "gantry_http_responses_total",
        "counter",
        "HTTP answers of this master's API since it started, by status class.",
    );
    for (class, n) in f.http {
        e.sample("gantry_http_responses_total", &[("code", class)], n as f64);
    }
    e.0
}

fn store_latency(e: &mut Exposition, h: &HistogramSnapshot) {
    let name = "gantry_store_apply_seconds";
    e.family(
        name,
        "histogram",
        "Time the store takes to apply one batch of writes (durable before the API answers).",
    );
    for (bound, n) in &h.buckets {
        let le = number(*bound);
        e.sample(&format!("{name}_bucket"), &[("le", &le)], *n as f64);
    }
    e.sample(&format!("{name}_bucket"), &[("le", "+Inf")], h.count as f64);
    e.sample(&format!("{name}_sum"), &[], h.sum_secs);
    e.sample(&format!("{name}_count"), &[], h.count as f64);
}

fn resources(e: &mut Exposition, st: &MasterState) {
    let total = st
        .cluster
        .agents
        .values()
        .filter(|a| a.record.lifecycle == AgentLifecycle::Active)
        .fold(Resources::default(), |acc, a| {
            acc.plus(&a.record.info.resources)
        });
    let used = st
        .cluster
        .tasks()
        .values()
        .fold(Resources::default(), |acc, t| acc.plus(&t.info.resources));
    let rows = |r: &Resources| {
        [
            ("cpus", r.cpus),
            ("mem", r.mem),
            ("disk", r.disk),
            ("gpus", f64::from(r.gpus)),
        ]
    };
    e.family(
        "gantry_resources_total",
        "gauge",
        "Resources of the active agents (cpus, mem and disk in MiB, gpus).",
    );
    for (k, v) in rows(&total) {
        e.sample("gantry_resources_total", &[("resource", k)], v);
    }
    e.family(
        "gantry_resources_used",
        "gauge",
        "Resources held by tasks that are not terminal.",
    );
    for (k, v) in rows(&used) {
        e.sample("gantry_resources_used", &[("resource", k)], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::state::LaunchDelay;

    fn figures() -> Figures {
        let h = crate::metrics::LatencyHistogram::new();
        h.observe(std::time::Duration::from_millis(2));
        Figures {
            uptime_secs: 12.5,
            now: 1000.0,
            store_apply: h.snapshot(),
            http: [("1xx", 0), ("2xx", 7), ("3xx", 0), ("4xx", 1), ("5xx", 0)],
        }
    }

    #[test]
    fn an_empty_master_renders_every_family_with_zeros() {
        let text = render(&MasterState::default(), &figures());
        for line in [
            "gantry_master_uptime_seconds 12.5",
            "gantry_agents{state=\"active\"} 0",
            "gantry_tasks{state=\"TASK_RUNNING\"} 0",
            "gantry_tasks_completed{state=\"TASK_FAILED\"} 0",
            "gantry_apps 0",
            "gantry_store_apply_seconds_bucket{le=\"0.0025\"} 1",
            "gantry_store_apply_seconds_bucket{le=\"0.001\"} 0",
            "gantry_store_apply_seconds_bucket{le=\"+Inf\"} 1",
            "gantry_store_apply_seconds_count 1",
            "gantry_http_responses_total{code=\"2xx\"} 7",
            "# TYPE gantry_store_apply_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn launch_delays_count_only_when_in_force_and_labels_are_escaped() {
        let mut st = MasterState::default();
        st.services.launch_delays.insert(
            "/a\"b".into(),
            LaunchDelay {
                delay_secs: 1.15,
                until: 2000.0,
            },
        );
        st.services.launch_delays.insert(
            "/old".into(),
            LaunchDelay {
                delay_secs: 1.0,
                until: 10.0,
            },
        );
        let text = render(&st, &figures());
        assert!(text.contains("gantry_apps_launch_delayed 1\n"), "{text}");
        assert!(
            text.contains("gantry_app_launch_delay_seconds{app=\"/a\\\"b\"} 1.15\n"),
            "{text}"
        );
    }

    #[test]
    fn numbers_are_spelled_as_prometheus_does() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(escape("a\\b\nc"), "a\\\\b\\nc");
    }
}
