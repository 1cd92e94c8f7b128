//! Server render time of the UI's services and tasks pages with 1,000 apps and 10,000 tasks on
//! 100 agents (issue 13's figure; goal ≤ 100 ms). Each sample is what the handler does: copy the
//! rows out of the state (the part done under the master's lock, timed alone as well), then
//! render the HTML. `cargo bench -p gantry-masterd --bench ui_render`.

use gantry_masterd::cluster::AgentEntry;
use gantry_masterd::services::app_definition::AppDefinition;
use gantry_masterd::services::launch::task_info;
use gantry_masterd::state::MasterState;
use gantry_masterd::store::records::{AgentLifecycle, AgentRecord, TaskOwner, TaskRecord};
use gantry_masterd::ui::{services, tasks};
use gantry_proto::{AgentId, AgentInfo, TaskId, TaskState};
use std::time::{Duration, Instant};

const APPS: usize = 1_000;
const PER_APP: usize = 10;
const AGENTS: usize = 100;

fn state() -> MasterState {
    let mut st = MasterState::default();
    for a in 0..AGENTS {
        let id = AgentId(format!("agent-{a}"));
        let info = AgentInfo {
            hostname: format!("node{a}.example"),
            ..AgentInfo::default()
        };
        let record = AgentRecord {
            id: id.clone(),
            info,
            lifecycle: AgentLifecycle::Active,
            registered_at: 0.0,
            reregistered_at: None,
            unreachable_since: None,
        };
        st.cluster
            .agents
            .insert(id, AgentEntry::new(record, None, false));
    }
    for i in 0..APPS {
        let json = format!(
            r#"{{"id":"/team{}/app-{i}","cmd":"sleep 3600","cpus":0.1,"mem":32,"instances":{PER_APP},"labels":{{"team":"t{}"}}}}"#,
            i % 20,
            i % 20
        );
        let app = AppDefinition::parse(json.as_bytes()).expect("a valid app");
        for k in 0..PER_APP {
            let tid = TaskId(format!(
                "{}.{k}",
                app.id.trim_start_matches('/').replace('/', "_")
            ));
            let agent = AgentId(format!("agent-{}", (i * PER_APP + k) % AGENTS));
            let info = task_info(&app, tid.clone(), agent, vec![31000], None);
            let rec = TaskRecord {
                info,
                owner: TaskOwner::App {
                    id: app.id.clone(),
                    version: app.version.clone(),
                },
                state: TaskState::TaskRunning,
                status: None,
                last_seq: 1,
                staged_at: 1.0,
                started_at: Some(2.0),
                unreachable_since: None,
                expunged: false,
                kill_requested: false,
                health: Vec::new(),
            };
            st.cluster.tasks.insert(tid, rec);
        }
        st.services.apps.insert(app.id.clone(), app);
    }
    st
}

fn measure(name: &str, n: usize, mut f: impl FnMut() -> (Duration, usize)) {
    let mut total = Vec::with_capacity(n);
    let mut locked = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let (under_lock, b) = f();
        total.push(t.elapsed());
        locked.push(under_lock);
        bytes = b;
    }
    total.sort();
    locked.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<44} p50 {:>6.2} ms  p99 {:>6.2} ms  (under the lock p50 {:.2} ms, p99 {:.2} ms)  {} KiB of HTML",
        p(&total, 0.5),
        p(&total, 0.99),
        p(&locked, 0.5),
        p(&locked, 0.99),
        bytes / 1024
    );
}

fn main() {
    let n: usize = std::env::var("UI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let st = state();
    println!(
        "{} apps, {} tasks, {} agents; {n} renders each",
        st.services.apps.len(),
        st.cluster.tasks.len(),
        st.cluster.agents.len()
    );
    let all = services::Filters::default();
    measure("services page (all apps, first 200 rows)", n, || {
        let t = Instant::now();
        let rows = services::app_rows(&st);
        let locked = t.elapsed();
        let html = services::services_markup(&rows, &all).into_string();
        (locked, html.len())
    });
    let label = services::Filters {
        label: Some("team:t7".into()),
        ..services::Filters::default()
    };
    measure("services page, label filter (50 apps)", n, || {
        let t = Instant::now();
        let rows = services::app_rows(&st);
        let locked = t.elapsed();
        let html = services::services_markup(&rows, &label).into_string();
        (locked, html.len())
    });
    for (name, f) in [
        (
            "tasks page (first 100 of 10,000)",
            tasks::Filters::default(),
        ),
        (
            "tasks page, last page",
            tasks::Filters {
                page: Some(99),
                ..tasks::Filters::default()
            },
        ),
        (
            "tasks page, search (10 matches)",
            tasks::Filters {
                q: Some("app-777.".into()),
                ..tasks::Filters::default()
            },
        ),
    ] {
        measure(name, n, || {
            let t = Instant::now();
            let (rows, total) = tasks::task_rows(&st.cluster, &f);
            let locked = t.elapsed();
            let html = tasks::tasks_markup(&rows, total, &f).into_string();
            (locked, html.len())
        });
    }
}
