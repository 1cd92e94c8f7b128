//! `GET /v2/apps?embed=apps.tasks` with 1,000 apps and 10,000 tasks on 100 agents (issue 16's
//! figure; goal ≤ 50 ms, Marathon took over 10 s with 1,000 tasks). Each sample is what the
//! handler does under the master's lock — every app's AppInfo with its counts, deployments and
//! tasks — and then the serialisation of the body. Beside it, in the same run, the lookup the
//! handler made before tasks were indexed by app: a scan of every task for each app (three per
//! AppInfo). `cargo bench -p gantry-masterd --bench marathon_apps`.

#[path = "support/big_state.rs"]
mod big_state;

use big_state::{state, AGENTS, APPS, PER_APP};
use gantry_masterd::api::marathon::render::app_info;
use serde_json::{json, Value};
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
    let (mut total, mut locked) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let apps: Vec<Value> = st
            .services
            .apps
            .values()
            .map(|a| app_info(&st, a, true))
            .collect();
        locked.push(t.elapsed());
        let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap_or_default();
        total.push(t.elapsed());
        bytes = body.len();
    }
    let (p50, p99) = percentiles(total);
    let (l50, l99) = percentiles(locked);
    println!(
        "GET /v2/apps?embed=apps.tasks             p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  (under the lock p50 {l50:.2} ms, p99 {l99:.2} ms)  {} KiB",
        bytes / 1024
    );
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
    println!("before: the per-app scans alone            p50 {s50:>7.2} ms  p99 {s99:>7.2} ms");
}
