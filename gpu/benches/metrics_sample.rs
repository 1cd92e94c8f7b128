//! Cost of one GPU metrics sample on the fixture path, as the agent's sampler thread takes it:
//! re-read and validate the 16-GPU DGX-2 metrics fixture, attribute it to 8 tasks of 2 GPUs each,
//! and render every task's usage (what `/monitor/statistics` and a heartbeat read):
//! `cargo bench -p gantry-gpu --bench metrics_sample --profile dev` (debug build; GANTRY_BENCH_N
//! samples, default 2000). Prints p50/p99 per sample.

use gantry_gpu::{FixtureMetrics, GpuAttribution, GpuHolder, GpuMetricsSource};
use gantry_proto::{GpuAssignment, TaskId};
use std::path::Path;
use std::time::Instant;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("GANTRY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let path = fixtures.join("dgx2-16gpu.metrics.json");
    let src = FixtureMetrics::open(&path).expect("the DGX-2 metrics fixture");
    let uuids: Vec<String> = src
        .sample()
        .expect("a first sample")
        .into_iter()
        .map(|r| r.uuid)
        .collect();
    let holders: Vec<GpuHolder> = uuids
        .chunks(2)
        .enumerate()
        .map(|(t, pair)| {
            let gpus = pair
                .iter()
                .enumerate()
                .map(|(i, u)| GpuAssignment {
                    index: (2 * t + i) as u32,
                    minor: (2 * t + i) as u32,
                    uuid: u.as_str().into(),
                    pci_bus_id: "".into(),
                    caps_minors: Vec::new(),
                })
                .collect();
            (TaskId(format!("task-{t}")), gpus)
        })
        .collect();
    let mut a = GpuAttribution::default();
    let mut sample_us = Vec::with_capacity(n);
    let mut render_us = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        let readings = src.sample().expect("sample");
        a.record(readings, &holders, i as f64);
        let t1 = Instant::now();
        let mut rendered = 0;
        for (task, gpus) in &holders {
            rendered += serde_json::to_vec(&a.usage_of(task, gpus))
                .expect("render")
                .len();
        }
        assert!(rendered > 0);
        sample_us.push(t1.duration_since(t0).as_secs_f64() * 1e6);
        render_us.push(t1.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "fixture sample (read + validate 16 GPUs + attribute to 8 tasks)  p50 {:>8.1} µs   p99 {:>8.1} µs   (n={n})",
        pct(&mut sample_us, 0.5),
        pct(&mut sample_us, 0.99)
    );
    println!(
        "usage of 8 tasks as JSON (statistics / heartbeat share)          p50 {:>8.1} µs   p99 {:>8.1} µs",
        pct(&mut render_us, 0.5),
        pct(&mut render_us, 0.99)
    );
}
