//! Gang placement benchmark: the pure allocator's `place_gangs` placing multi-node jobs (each
//! gang's ranks all together or none) on 10,000 DGX-2-shaped simulated agents, on one core;
//! prints gangs/s and ranks/s per scenario and checks the result (every gang whole or absent, no
//! agent overcommitted, no GPU given twice: `check` over every placement).
//!
//! Each scenario is one `place_gangs` call (the run's state for 10,000 agents built once per
//! call, included in the time) with more gangs than fit, so late gangs are refused whole and
//! undone, which is the path a waiting gang takes each pass.

use gantry_masterd::alloc::sim::dgx2_cluster;
use gantry_masterd::alloc::{
    check, place_gangs, ClusterSnapshot, GangDemand, GangOutcome, NumaPolicy, PlaceOptions, Plan,
    TaskDemand,
};
use gantry_proto::Resources;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const AGENTS: usize = 10_000;

/// `gangs` gangs of `ranks` ranks, each rank `gpus` GPUs and `cpus` cpus with `numa`.
fn gangs(gangs: usize, ranks: usize, gpus: u32, cpus: f64, numa: NumaPolicy) -> Vec<GangDemand> {
    (0..gangs)
        .map(|g| GangDemand {
            ranks: (0..ranks)
                .map(|r| TaskDemand {
                    task_id: format!("ct:0:0:gang-{g}#{r}:").into(),
                    group: format!("job:gang-{g}"),
                    resources: Resources {
                        gpus,
                        ..Resources::scalars(cpus, 16_384.0, 1_000.0)
                    },
                    port_count: usize::from(r == 0),
                    gpu_profile: None,
                    numa,
                })
                .collect(),
        })
        .collect()
}

fn main() {
    // Each agent starts with 0-4 of its 16 GPUs taken; 1 in 50 has an unhealthy GPU.
    let cluster = dgx2_cluster(AGENTS, 4, 50, 1);
    let scenarios: [(&str, Vec<GangDemand>); 4] = [
        (
            "2,000 gangs of 8 ranks x 8 GPUs (prefer), 16 cpus a rank",
            gangs(2_000, 8, 8, 16.0, NumaPolicy::Prefer),
        ),
        (
            "1,000 gangs of 16 ranks x 16 GPUs (whole DGX-2s), 64 cpus a rank",
            gangs(1_000, 16, 16, 64.0, NumaPolicy::Prefer),
        ),
        (
            "10,000 gangs of 4 ranks x 2 GPUs (require), 8 cpus a rank",
            gangs(10_000, 4, 2, 8.0, NumaPolicy::Require),
        ),
        (
            "500 gangs of 64 ranks x 4 GPUs (prefer), 8 cpus a rank",
            gangs(500, 64, 4, 8.0, NumaPolicy::Prefer),
        ),
    ];
    println!(
        "Gang placement benchmark: {AGENTS} DGX-2-shaped agents (2 NUMA nodes x 24 cores x 2 PUs, \
         16 GPUs, 0-4 taken), {RUNS} runs each, one thread; one place_gangs() call per run"
    );
    let only = std::env::var("GANTRY_BENCH_ONLY").unwrap_or_default();
    for (name, demand) in scenarios.iter().filter(|(n, _)| n.contains(only.as_str())) {
        let (out, times) = timed(&cluster, demand);
        report(name, &cluster, demand, &out, &times);
    }
}

/// `RUNS` calls (seeds 0..RUNS): the last outcome and the sorted times.
fn timed(cluster: &ClusterSnapshot, demand: &[GangDemand]) -> (Vec<GangOutcome>, Vec<Duration>) {
    let only_on = HashMap::new();
    let mut times = Vec::with_capacity(RUNS);
    let mut out = Vec::new();
    for run in 0..RUNS {
        let start = Instant::now();
        let next = black_box(place_gangs(
            black_box(cluster),
            black_box(demand),
            &only_on,
            run as u64,
            PlaceOptions::default(),
        ));
        times.push(start.elapsed());
        out = next;
    }
    times.sort_unstable();
    (out, times)
}

fn report(
    name: &str,
    cluster: &ClusterSnapshot,
    demand: &[GangDemand],
    out: &[GangOutcome],
    times: &[Duration],
) {
    let median = times[times.len() / 2];
    let placed = out
        .iter()
        .filter(|o| matches!(o, GangOutcome::Placed(_)))
        .count();
    let ranks: usize = out.iter().map(|o| o.placements().len()).sum();
    let whole = demand
        .iter()
        .zip(out)
        .all(|(d, o)| o.placements().is_empty() || o.placements().len() == d.ranks.len());
    let secs = median.as_secs_f64();
    println!("\n{name}");
    println!(
        "  place_gangs(): median {:.1} ms (best {:.1} ms) -> {:.0} gangs/s tried, {:.0} ranks/s placed",
        secs * 1e3,
        times[0].as_secs_f64() * 1e3,
        demand.len() as f64 / secs,
        ranks as f64 / secs
    );
    println!(
        "  placed {placed} gangs ({ranks} ranks), waiting {}; every gang whole or absent: {whole}",
        demand.len() - placed
    );
    if let Some(GangOutcome::Waiting { reason, .. }) = out
        .iter()
        .find(|o| matches!(o, GangOutcome::Waiting { .. }))
    {
        println!("  e.g. waiting: {reason}");
    }
    let plan = Plan {
        placements: out.iter().flat_map(|o| o.placements().to_vec()).collect(),
        unplaced: Vec::new(),
    };
    let demands: Vec<TaskDemand> = demand.iter().flat_map(|g| g.ranks.clone()).collect();
    let conflicts = check(cluster, &plan, &demands);
    println!("  check(): {} conflicts", conflicts.len());
    assert!(
        whole && conflicts.is_empty(),
        "gang placement broke its promise"
    );
}
