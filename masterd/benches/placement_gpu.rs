//! GPU/NUMA placement benchmark: the pure allocator placing GPU tasks (1-8 GPUs, `require` or
//! `prefer`, whole cores and a memory node chosen for each) on 10,000 DGX-2-shaped simulated
//! agents on one core, next to CPU-only tasks on the same cluster; prints placements/s and checks
//! that every bound placement respects its node.

use gantry_masterd::alloc::sim::{demands, dgx2_cluster, gpu_demands};
use gantry_masterd::alloc::{check, place, ClusterSnapshot, NumaPolicy, Plan, TaskDemand};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const AGENTS: usize = 10_000;

fn main() {
    // Each agent starts with 0-4 of its 16 GPUs taken; 1 in 50 has an unhealthy GPU.
    let cluster = dgx2_cluster(AGENTS, 4, 50, 1);
    let two_gpu_require: Vec<TaskDemand> = gpu_demands(40_000, 1, 9)
        .into_iter()
        .map(|mut d| {
            d.resources.gpus = 2;
            d.resources.cpus = 8.0;
            d.numa = NumaPolicy::Require;
            d
        })
        .collect();
    let mut mixed = gpu_demands(20_000, 10, 5);
    mixed.extend(
        demands(80_000, 10, 6)
            .into_iter()
            .filter(|d| d.resources.gpus == 0),
    );
    let scenarios: [(&str, Vec<TaskDemand>); 5] = [
        (
            "CPU-only tasks (baseline, sim::demands without GPU apps)",
            {
                demands(100_000, 10, 2)
                    .into_iter()
                    .filter(|d| d.resources.gpus == 0)
                    .collect()
            },
        ),
        (
            "GPU tasks, apps of 10 (1-8 GPUs, require/prefer)",
            gpu_demands(40_000, 10, 3),
        ),
        (
            "GPU tasks, every task its own app",
            gpu_demands(40_000, 1, 4),
        ),
        ("2-GPU require tasks, 8 cpus each", two_gpu_require),
        ("mixed: 20,000 GPU tasks + CPU-only tasks", mixed),
    ];
    println!(
        "GPU/NUMA placement benchmark: {AGENTS} DGX-2-shaped agents (2 NUMA nodes x 24 cores x 2 PUs, \
         16 GPUs), {RUNS} runs each, one thread; times include building the run's state"
    );
    for (name, demands) in &scenarios {
        let mut times = Vec::with_capacity(RUNS);
        let mut plan = Plan::default();
        for run in 0..RUNS {
            let start = Instant::now();
            plan = black_box(place(black_box(&cluster), black_box(demands), run as u64));
            times.push(start.elapsed());
        }
        times.sort_unstable();
        report(name, &cluster, demands, &plan, &times);
    }
}

fn report(
    name: &str,
    cluster: &ClusterSnapshot,
    demands: &[TaskDemand],
    plan: &Plan,
    times: &[Duration],
) {
    let median = times[times.len() / 2];
    let best = times[0];
    let rate = |d: Duration| plan.placements.len() as f64 / d.as_secs_f64();
    let bound = plan.placements.iter().filter(|p| p.numa.is_some()).count();
    let gpus: usize = plan
        .placements
        .iter()
        .filter_map(|p| p.numa.as_ref())
        .map(|n| n.gpus.len())
        .sum();
    let one_node = plan
        .placements
        .iter()
        .filter_map(|p| p.numa.as_ref())
        .filter(|n| n.numa_node.is_some())
        .count();
    println!("\n{name}: {} tasks", demands.len());
    println!(
        "  place(): median {:.1} ms -> {:.0} placements/s (best {:.1} ms -> {:.0} placements/s)",
        median.as_secs_f64() * 1e3,
        rate(median),
        best.as_secs_f64() * 1e3,
        rate(best)
    );
    println!(
        "  placed {}, unplaced {}; bound {} ({} on one NUMA node), GPUs given {}",
        plan.placements.len(),
        plan.unplaced.len(),
        bound,
        one_node,
        gpus
    );
    if let Some(u) = plan.unplaced.first() {
        println!("  e.g. {} unplaced: {}", u.task_id, u.reason);
    }
    let start = Instant::now();
    let conflicts = check(cluster, plan, demands);
    println!(
        "  check(): {:.1} ms, {} conflicts",
        start.elapsed().as_secs_f64() * 1e3,
        conflicts.len()
    );
}
