//! Placement benchmark: the pure allocator placing 100,000 tasks on 10,000 simulated agents on one
//! core, without and with group spreading; prints placements/s and the quality of the result.

use gantry_masterd::alloc::{check, place, sim, ClusterSnapshot, Plan, TaskDemand};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

struct Scenario {
    name: &'static str,
    agents: usize,
    tasks: usize,
    per_group: usize,
}

fn main() {
    let scenarios = [
        Scenario {
            name: "no spreading (every task its own app)",
            agents: 10_000,
            tasks: 100_000,
            per_group: 1,
        },
        Scenario {
            name: "group spreading (apps of 10 instances)",
            agents: 10_000,
            tasks: 100_000,
            per_group: 10,
        },
        Scenario {
            name: "group spreading (apps of 100 instances)",
            agents: 10_000,
            tasks: 100_000,
            per_group: 100,
        },
        Scenario {
            name: "oversubscribed (1,000 agents, most tasks fit nowhere)",
            agents: 1_000,
            tasks: 100_000,
            per_group: 10,
        },
    ];
    println!(
        "placement benchmark: {RUNS} runs each, one thread; times include building the run's state"
    );
    for s in &scenarios {
        let cluster = sim::cluster(s.agents, 50, 1);
        let demands = sim::demands(s.tasks, s.per_group, 2);
        let mut times = Vec::with_capacity(RUNS);
        let mut plan = Plan::default();
        for run in 0..RUNS {
            let start = Instant::now();
            let next = black_box(place(black_box(&cluster), black_box(&demands), run as u64));
            times.push(start.elapsed());
            // The previous plan is dropped after the clock stops.
            plan = next;
        }
        times.sort_unstable();
        report(s, &cluster, &demands, &plan, &times);
        let start = Instant::now();
        let conflicts = black_box(check(&cluster, &plan, &demands));
        let took = start.elapsed();
        println!(
            "  check() of the plan against its snapshot: {:.1} ms ({:.0} placements/s), {} conflicts",
            took.as_secs_f64() * 1e3,
            plan.placements.len() as f64 / took.as_secs_f64(),
            conflicts.len()
        );
    }
}

fn report(
    s: &Scenario,
    cluster: &ClusterSnapshot,
    demands: &[TaskDemand],
    plan: &Plan,
    times: &[Duration],
) {
    let median = times[times.len() / 2];
    let best = times[0];
    let rate = |d: Duration| plan.placements.len() as f64 / d.as_secs_f64();
    let decided = |d: Duration| s.tasks as f64 / d.as_secs_f64();
    let group_of: HashMap<&str, &str> = demands
        .iter()
        .map(|d| (d.task_id.as_str(), d.group.as_str()))
        .collect();
    let mut per_agent_group: HashMap<(&str, &str), u32> = HashMap::new();
    let mut per_agent: HashMap<&str, u32> = HashMap::new();
    for p in &plan.placements {
        let g = group_of.get(p.task_id.as_str()).copied().unwrap_or("");
        *per_agent_group.entry((p.agent_id.as_str(), g)).or_default() += 1;
        *per_agent.entry(p.agent_id.as_str()).or_default() += 1;
    }
    let most_of_one_group = per_agent_group.values().copied().max().unwrap_or(0);
    let reachable = cluster.agents.iter().filter(|a| a.reachable).count();
    println!(
        "\n{}: {} tasks on {} agents ({} reachable)",
        s.name, s.tasks, s.agents, reachable
    );
    println!(
        "  place(): median {:.1} ms -> {:.0} placements/s, {:.0} tasks decided/s (best {:.1} ms -> {:.0} placements/s)",
        median.as_secs_f64() * 1e3,
        rate(median),
        decided(median),
        best.as_secs_f64() * 1e3,
        rate(best)
    );
    println!(
        "  placed {}, unplaced {}, agents used {}, most tasks of one app on one agent {}",
        plan.placements.len(),
        plan.unplaced.len(),
        per_agent.len(),
        most_of_one_group
    );
    if let Some(u) = plan.unplaced.first() {
        println!("  e.g. {} unplaced: {}", u.task_id, u.reason);
    }
}
