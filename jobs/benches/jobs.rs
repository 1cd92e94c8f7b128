//! Criterion benchmarks: next occurrence for 1,000,000 schedules (ISO 8601 mix, and cron per
//! schedule), and ready children / a full readiness sweep in a 10,000-job DAG.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gantry_jobs::{
    ready_children, ready_jobs, DagProgress, JobGraph, JobSpec, ReadinessRule, RunOutcome, Schedule,
};

const ZONES: &[&str] = &[
    "UTC",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Asia/Kolkata",
];
const PERIODS: &[&str] = &[
    "PT1H", "P1D", "PT15M", "P1M", "P1W", "PT24H", "P1DT6H", "P1Y",
];

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).expect("valid timestamp")
}

/// `n` distinct ISO 8601 schedules: anchors spread over ten years, several zones and periods.
fn iso_schedules(n: usize) -> Vec<Schedule> {
    let start = now() - Duration::days(3650);
    (0..n)
        .map(|i| {
            let anchor = start + Duration::seconds((i as i64 * 7919) % (3650 * 86_400));
            let text = format!(
                "R/{}/{}",
                anchor.format("%Y-%m-%dT%H:%M:%S"),
                PERIODS[i % PERIODS.len()]
            );
            Schedule::iso8601(&text, Some(ZONES[(i / 8) % ZONES.len()]), now())
                .expect("benchmark schedule parses")
        })
        .collect()
}

fn cron_schedules(n: usize) -> Vec<Schedule> {
    let exprs = [
        "*/5 * * * *",
        "30 2 * * *",
        "0 9 * * 1-5",
        "0 0 1 * *",
        "15 */6 * * *",
    ];
    (0..n)
        .map(|i| {
            Schedule::cron(exprs[i % exprs.len()], Some(ZONES[i % ZONES.len()]))
                .expect("benchmark cron parses")
        })
        .collect()
}

fn next_occurrence(c: &mut Criterion) {
    let mut group = c.benchmark_group("next_after");
    group
        .sample_size(10)
        .measurement_time(StdDuration::from_secs(20));
    let iso = iso_schedules(1_000_000);
    let t = now();
    group.throughput(Throughput::Elements(iso.len() as u64));
    group.bench_function("iso8601_1M_schedules", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for s in &iso {
                found += usize::from(black_box(s.next_after(black_box(t))).is_some());
            }
            found
        })
    });
    drop(iso);
    let cron = cron_schedules(10_000);
    group.throughput(Throughput::Elements(cron.len() as u64));
    group.bench_function("cron_10k_schedules", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for s in &cron {
                found += usize::from(black_box(s.next_after(black_box(t))).is_some());
            }
            found
        })
    });
    group.finish();
}

/// 100 layers of 100 jobs; each job below the first layer has 3 parents in the layer above.
fn layered_dag() -> (JobGraph, DagProgress) {
    let (layers, width) = (100usize, 100usize);
    let name = |l: usize, i: usize| format!("job-{l}-{i}");
    let mut jobs = Vec::with_capacity(layers * width);
    for l in 0..layers {
        for i in 0..width {
            if l == 0 {
                jobs.push(JobSpec::root(&name(l, i)));
            } else {
                let parents: Vec<String> = (0..3)
                    .map(|k| name(l - 1, (i * 7 + k * 31) % width))
                    .collect();
                let refs: Vec<&str> = parents.iter().map(String::as_str).collect();
                jobs.push(JobSpec::dependent(&name(l, i), &refs));
            }
        }
    }
    let mut progress = DagProgress::default();
    for j in &jobs {
        progress.register(&j.name);
    }
    let graph = JobGraph::new(jobs).expect("benchmark DAG is valid");
    // Every job in the first half of the layers has run once and succeeded.
    for l in 0..layers / 2 {
        for i in 0..width {
            progress.record_started(&name(l, i));
            progress.record_finished(&name(l, i), RunOutcome::Succeeded);
        }
    }
    (graph, progress)
}

fn dag_readiness(c: &mut Criterion) {
    let mut group = c.benchmark_group("dag_10k");
    let (graph, progress) = layered_dag();
    assert_eq!(graph.len(), 10_000);
    let rule = ReadinessRule::default();
    let guarded = ReadinessRule {
        await_pending_parents: true,
    };
    group.bench_function("ready_children_of_one_parent", |b| {
        b.iter(|| ready_children(&graph, &progress, black_box("job-49-17"), rule))
    });
    group.bench_function("ready_children_of_every_parent", |b| {
        b.iter(|| {
            let mut n = 0;
            for job in graph.jobs() {
                n += ready_children(&graph, &progress, &job.name, rule).len();
            }
            n
        })
    });
    group.bench_function("ready_jobs_full_sweep", |b| {
        b.iter(|| ready_jobs(&graph, black_box(&progress), rule))
    });
    group.bench_function("ready_jobs_full_sweep_await_pending", |b| {
        b.iter(|| ready_jobs(&graph, black_box(&progress), guarded))
    });
    group.bench_function("validate_10k_dag", |b| {
        let specs: Vec<JobSpec> = graph.jobs().cloned().collect();
        b.iter(|| JobGraph::new(specs.clone()).map(|g| g.len()))
    });
    group.finish();
}

criterion_group!(benches, next_occurrence, dag_readiness);
criterion_main!(benches);
