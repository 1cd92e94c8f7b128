//! Server render time of the UI's services and tasks pages with 1,000 apps and 10,000 tasks on
//! 100 agents (issue 13's figure; goal ≤ 100 ms). Each sample is what the handler does: copy the
//! rows out of the state (the part done under the master's lock, timed alone as well), then
//! render the HTML. `cargo bench -p gantry-masterd --bench ui_render`.

#[path = "support/big_state.rs"]
mod big_state;

use big_state::{state, AGENTS, APPS, PER_APP};
use gantry_masterd::ui::{services, tasks};
use std::time::{Duration, Instant};

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
        "{APPS} apps x {PER_APP} tasks on {AGENTS} agents ({} tasks); {n} renders each",
        st.cluster.tasks().len()
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
