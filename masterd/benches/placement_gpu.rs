//! GPU/NUMA placement benchmark: the pure allocator placing GPU tasks (1-8 GPUs, `require` or
//! `prefer`, whole cores and a memory node chosen for each) on 10,000 DGX-2-shaped simulated
//! agents on one core, next to CPU-only tasks on the same cluster; prints placements/s and checks
//! that every bound placement respects its node.
//!
//! The headline figure is the whole `place()` call (building the run's state for 10,000 agents
//! included), compared with the CPU-only baseline of the same run. Two more figures compare like
//! with like: a CPU-only baseline with as many tasks per call as the GPU scenarios (40,000), and
//! each scenario's cost per placement once the fixed setup (`place()` with no demand) is taken
//! out. The plan of the previous run is dropped outside the timed region, in every scenario.

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
    let cpu_only: Vec<TaskDemand> = demands(100_000, 10, 2)
        .into_iter()
        .filter(|d| d.resources.gpus == 0)
        .collect();
    let scenarios: [(&str, Vec<TaskDemand>); 6] = [
        (
            "CPU-only tasks (baseline, sim::demands without GPU apps)",
            cpu_only.clone(),
        ),
        (
            "CPU-only tasks, first 40,000 (baseline with the GPU scenarios' task count)",
            cpu_only[..40_000].to_vec(),
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
    let setup = median(&timed(&cluster, &[]).1);
    println!(
        "fixed setup (place() with no demand): median {:.2} ms",
        setup.as_secs_f64() * 1e3
    );
    let mut baselines: Vec<Rates> = Vec::new();
    // GANTRY_BENCH_ONLY=TEXT runs only the scenarios whose name holds TEXT (for profiling).
    let only = std::env::var("GANTRY_BENCH_ONLY").unwrap_or_default();
    for (name, demands) in scenarios.iter().filter(|(n, _)| n.contains(only.as_str())) {
        let (plan, times) = timed(&cluster, demands);
        let rates = report(name, &cluster, demands, &plan, &times, setup);
        for (b, base) in baselines.iter().enumerate() {
            println!(
                "  vs baseline {}: {:.0} % (median), {:.0} % (best), {:.0} % (per placement without setup)",
                b + 1,
                100.0 * rates.median / base.median,
                100.0 * rates.best / base.best,
                100.0 * rates.marginal / base.marginal
            );
        }
        if baselines.len() < 2 {
            baselines.push(rates);
        }
    }
}

/// `RUNS` calls of `place` (seeds 0..RUNS): the last plan and the sorted times. The previous plan
/// is dropped after the clock stops.
fn timed(cluster: &ClusterSnapshot, demands: &[TaskDemand]) -> (Plan, Vec<Duration>) {
    let mut times = Vec::with_capacity(RUNS);
    let mut plan = Plan::default();
    for run in 0..RUNS {
        let start = Instant::now();
        let next = black_box(place(black_box(cluster), black_box(demands), run as u64));
        times.push(start.elapsed());
        plan = next;
    }
    times.sort_unstable();
    (plan, times)
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

/// Placements/s of one scenario: whole call (median, best), and per placement without the setup.
struct Rates {
    median: f64,
    best: f64,
    marginal: f64,
}

fn report(
    name: &str,
    cluster: &ClusterSnapshot,
    demands: &[TaskDemand],
    plan: &Plan,
    times: &[Duration],
    setup: Duration,
) -> Rates {
    let median = median(times);
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
    let marginal = rate(median.saturating_sub(setup));
    println!(
        "  without the fixed setup: {:.0} ns per placement -> {:.0} placements/s",
        1e9 / marginal,
        marginal
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
    Rates {
        median: rate(median),
        best: rate(best),
        marginal,
    }
}
