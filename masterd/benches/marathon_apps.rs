//! `GET /v2/apps?embed=apps.tasks` with 1,000 apps and 10,000 tasks on 100 agents (issue 16's
//! figure; goal ≤ 50 ms, Marathon took over 10 s with 1,000 tasks). Each sample is what the
//! handler does under the master's lock: the typed views of every app with its counts,
//! deployments and tasks, serialised straight into the body (the handler releases the lock with
//! the body written). Beside it, in the same run, the two ways the handler worked before: the
//! `serde_json::Value` tree of every AppInfo (built under the lock) then serialised, and before
//! tasks were indexed by app, a scan of every task for each app (three per AppInfo).
//! `cargo bench -p gantry-masterd --bench marathon_apps`.

#[path = "support/big_state.rs"]
mod big_state;
#[path = "support/value_render.rs"]
mod value_render;

use big_state::{state, AGENTS, APPS, PER_APP};
use gantry_masterd::api::marathon::views::{Embeds, Renderer};
use serde_json::Value;
use std::time::{Duration, Instant};

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    (p(0.5), p(0.99))
}

fn main() {
    let n: usize = std::env::var("APPS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let st = state();
    println!(
        "{APPS} apps x {PER_APP} tasks on {AGENTS} agents ({} tasks); {n} samples",
        st.cluster.tasks().len()
    );
    let embeds = Embeds {
        tasks: true,
        ..Embeds::default()
    };
    let mut typed = Vec::new();
    let mut body = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        body = Renderer::new(&st, embeds)
            .apps_body(st.services.apps.values())
            .unwrap_or_default();
        typed.push(t.elapsed());
    }
    let (p50, p99) = percentiles(typed);
    println!(
        "GET /v2/apps?embed=apps.tasks             p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  (all under the lock)  {} KiB",
        body.len() / 1024
    );
    let (mut defs, mut tasks) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let mut out = Vec::with_capacity(body.len());
        for a in st.services.apps.values() {
            serde_json::to_writer(&mut out, a).unwrap_or_default();
        }
        defs.push(t.elapsed());
        let t = Instant::now();
        let r = Renderer::new(&st, embeds);
        out.clear();
        for task in st.cluster.tasks().values() {
            serde_json::to_writer(&mut out, &r.task(task)).unwrap_or_default();
        }
        tasks.push(t.elapsed());
    }
    let (d50, d99) = percentiles(defs);
    let (t50, t99) = percentiles(tasks);
    println!("  of it: the {APPS} apps' definitions alone  p50 {d50:>7.2} ms  p99 {d99:>7.2} ms");
    println!("  of it: the tasks alone                   p50 {t50:>7.2} ms  p99 {t99:>7.2} ms");

    let (mut total, mut locked) = (Vec::new(), Vec::new());
    let mut before = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let apps: Vec<Value> = st
            .services
            .apps
            .values()
            .map(|a| value_render::app_info(&st, a, true))
            .collect();
        locked.push(t.elapsed());
        before = serde_json::to_vec(&serde_json::json!({ "apps": apps })).unwrap_or_default();
        total.push(t.elapsed());
    }
    let (p50, p99) = percentiles(total);
    let (l50, l99) = percentiles(locked);
    println!(
        "before: Value trees, then serialised      p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  (under the lock p50 {l50:.2} ms, p99 {l99:.2} ms)  {} KiB",
        before.len() / 1024
    );
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    assert_eq!(parse(&body), parse(&before), "the typed body differs");

    let mut scans = Vec::new();
    for _ in 0..n.min(5) {
        let t = Instant::now();
        let mut found = 0usize;
        for a in st.services.apps.values() {
            for _ in 0..3 {
                found += st
                    .cluster
                    .tasks()
                    .values()
                    .filter(|t| t.app_id() == Some(a.id.as_str()))
                    .count();
            }
        }
        scans.push(t.elapsed());
        assert_eq!(found, 3 * APPS * PER_APP);
    }
    let (s50, s99) = percentiles(scans);
    println!("before that: the per-app scans alone      p50 {s50:>7.2} ms  p99 {s99:>7.2} ms");
}
