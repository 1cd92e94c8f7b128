//! Property tests of placement's safety rules on generated clusters: nothing overcommitted, nothing
//! on an unreachable agent, no task placed twice, every demand answered, same seed same plan, and
//! `check` catching what a newer snapshot invalidates.

use gantry_masterd::alloc::{
    check, place, sim, AgentSnapshot, ClusterSnapshot, ConflictCause, NumaPolicy, Plan, TaskDemand,
};
use gantry_proto::{PortRanges, Resources};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const GROUPS: [&str; 4] = ["/a", "/b", "/c", "/d"];
/// The slack placement allows on cpus, mem and disk sums (Mesos's 1/1000), plus float noise.
const SLACK: f64 = 1e-3 + 1e-9;

fn agent_strategy() -> impl Strategy<Value = AgentSnapshot> {
    (
        (any::<bool>(), 0u32..5),
        (0u32..64, 0u32..16, 0u32..1000, 0u32..4),
        (31000u16..31010, 0u16..8),
        (0.0f64..1.2, prop::collection::vec(31000u16..31020, 0..4)),
        prop::collection::vec((0usize..4, 1u32..3), 0..3),
    )
        .prop_map(
            |(
                (reach, unreach_roll),
                (cpu_q, mem_k, disk, gpus),
                (port0, nports),
                (busy, used_ports),
                groups,
            )| {
                let cpus = f64::from(cpu_q) * 0.25;
                let mem = f64::from(mem_k) * 512.0;
                let ports = if nports == 0 {
                    PortRanges::default()
                } else {
                    PortRanges::new([(port0, port0 + nports - 1)])
                };
                AgentSnapshot {
                    id: "placeholder".into(),
                    reachable: reach || unreach_roll > 0,
                    total: Resources {
                        gpus,
                        ports,
                        ..Resources::scalars(cpus, mem, f64::from(disk))
                    },
                    used: Resources {
                        gpus: (f64::from(gpus) * busy) as u32,
                        ports: PortRanges::from_ports(&used_ports),
                        ..Resources::scalars(cpus * busy, mem * busy, 0.0)
                    },
                    attributes: Default::default(),
                    group_counts: groups
                        .into_iter()
                        .map(|(g, n)| (GROUPS[g].to_owned(), n))
                        .collect(),
                    topology: None,
                }
            },
        )
}

fn cluster_strategy() -> impl Strategy<Value = ClusterSnapshot> {
    prop::collection::vec((agent_strategy(), 0usize..12), 0..10).prop_map(|v| ClusterSnapshot {
        // Ids drawn from a small set so that an agent listed twice happens now and then.
        agents: v
            .into_iter()
            .enumerate()
            .map(|(i, (mut a, dup))| {
                a.id = if dup == 0 && i > 0 {
                    format!("agent-{}", i - 1).into()
                } else {
                    format!("agent-{i}").into()
                };
                a
            })
            .collect(),
    })
}

fn demands_strategy() -> impl Strategy<Value = Vec<TaskDemand>> {
    prop::collection::vec(
        (
            0u32..40,
            0usize..4,
            0u32..17,
            0u32..9,
            0u32..300,
            0u32..3,
            0usize..4,
        ),
        0..30,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(id, g, cpu_q, mem_q, disk, gpus, ports)| TaskDemand {
                // Ids from 0..40 for up to 30 demands: the same id given twice happens.
                task_id: format!("t{id}").into(),
                group: GROUPS[g].to_owned(),
                resources: Resources {
                    gpus: u32::from(gpus == 2),
                    ..Resources::scalars(
                        f64::from(cpu_q) * 0.25,
                        f64::from(mem_q) * 256.0,
                        f64::from(disk),
                    )
                },
                port_count: ports,
                numa: NumaPolicy::None,
                gpu_profile: None,
            })
            .collect()
    })
}

/// Checks the plan against the snapshot independently of the allocator's own bookkeeping.
fn verify(
    snapshot: &ClusterSnapshot,
    demands: &[TaskDemand],
    plan: &Plan,
) -> Result<(), TestCaseError> {
    let mut agents: HashMap<&str, &AgentSnapshot> = HashMap::new();
    for a in &snapshot.agents {
        agents.entry(a.id.as_str()).or_insert(a);
    }
    let mut by_task: HashMap<&str, &TaskDemand> = HashMap::new();
    for d in demands {
        by_task.entry(d.task_id.as_str()).or_insert(d);
    }
    let mut placed: HashSet<&str> = HashSet::new();
    let mut sums: HashMap<&str, (f64, f64, f64, u32)> = HashMap::new();
    let mut ports_taken: HashSet<(&str, u16)> = HashSet::new();
    for p in &plan.placements {
        prop_assert!(
            placed.insert(p.task_id.as_str()),
            "{} placed twice",
            p.task_id
        );
        let a = agents.get(p.agent_id.as_str());
        prop_assert!(
            a.is_some(),
            "{} placed on unknown agent {}",
            p.task_id,
            p.agent_id
        );
        let a = a
            .copied()
            .ok_or_else(|| TestCaseError::fail("unknown agent"))?;
        prop_assert!(
            a.reachable,
            "{} placed on unreachable agent {}",
            p.task_id,
            p.agent_id
        );
        let d = by_task
            .get(p.task_id.as_str())
            .ok_or_else(|| TestCaseError::fail("placed task not demanded"))?;
        prop_assert_eq!(p.ports.len(), d.port_count);
        let free_ports = a.total.ports.difference(&a.used.ports);
        for &port in &p.ports {
            prop_assert!(
                free_ports.contains(port),
                "port {} not free on {}",
                port,
                a.id
            );
            prop_assert!(
                ports_taken.insert((a.id.as_str(), port)),
                "port {} given twice",
                port
            );
        }
        let s = sums.entry(a.id.as_str()).or_default();
        s.0 += d.resources.cpus;
        s.1 += d.resources.mem;
        s.2 += d.resources.disk;
        s.3 += d.resources.gpus;
    }
    for (id, (cpus, mem, disk, gpus)) in sums {
        let a = agents[id];
        let (t, u) = (&a.total, &a.used);
        prop_assert!(
            cpus <= t.cpus - u.cpus + SLACK,
            "cpus overcommitted on {}",
            id
        );
        prop_assert!(mem <= t.mem - u.mem + SLACK, "mem overcommitted on {}", id);
        prop_assert!(
            disk <= t.disk - u.disk + SLACK,
            "disk overcommitted on {}",
            id
        );
        prop_assert!(
            gpus <= t.gpus.saturating_sub(u.gpus),
            "gpus overcommitted on {}",
            id
        );
    }
    Ok(())
}

/// Every demand is answered once: placed or unplaced with a non-empty reason, in demand order.
fn verify_answers(demands: &[TaskDemand], plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert_eq!(plan.placements.len() + plan.unplaced.len(), demands.len());
    let mut answered: Vec<&str> = plan
        .placements
        .iter()
        .map(|p| p.task_id.as_str())
        .chain(plan.unplaced.iter().map(|u| u.task_id.as_str()))
        .collect();
    let mut asked: Vec<&str> = demands.iter().map(|d| d.task_id.as_str()).collect();
    answered.sort_unstable();
    asked.sort_unstable();
    prop_assert_eq!(answered, asked);
    prop_assert!(plan.unplaced.iter().all(|u| !u.reason.is_empty()));
    Ok(())
}

/// A newer snapshot: each agent unchanged, gone, unreachable, or with more in use.
fn mutate(snapshot: &ClusterSnapshot, ops: &[u8]) -> (ClusterSnapshot, HashSet<String>) {
    let mut unchanged = HashSet::new();
    let mut agents = Vec::new();
    for (i, a) in snapshot.agents.iter().enumerate() {
        let mut a = a.clone();
        match ops.get(i).copied().unwrap_or(0) % 5 {
            0 | 1 => {
                unchanged.insert(a.id.to_string());
            }
            2 => continue,
            3 => a.reachable = false,
            _ => {
                a.used.cpus += a.total.cpus / 2.0;
                a.used.mem += a.total.mem / 3.0;
                a.used.gpus += 1;
                a.used.ports = a.used.ports.union(&PortRanges::new([(31003, 31005)]));
            }
        }
        agents.push(a);
    }
    // An id listed twice is only "unchanged" if every listing is.
    let ids: Vec<String> = snapshot.agents.iter().map(|a| a.id.to_string()).collect();
    let dup: HashSet<&String> = ids
        .iter()
        .filter(|id| ids.iter().filter(|x| x == id).count() > 1)
        .collect();
    unchanged.retain(|id| !dup.contains(id));
    (ClusterSnapshot { agents }, unchanged)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_are_safe_complete_and_deterministic(
        cluster in cluster_strategy(), demands in demands_strategy(), seed in any::<u64>()
    ) {
        let plan = place(&cluster, &demands, seed);
        verify(&cluster, &demands, &plan)?;
        verify_answers(&demands, &plan)?;
        prop_assert_eq!(&place(&cluster, &demands, seed), &plan);
        prop_assert_eq!(check(&cluster, &plan, &demands), vec![], "a fresh plan fits its own snapshot");
    }

    #[test]
    fn check_flags_what_a_newer_snapshot_invalidates(
        cluster in cluster_strategy(),
        demands in demands_strategy(),
        seed in any::<u64>(),
        ops in prop::collection::vec(any::<u8>(), 10),
    ) {
        let plan = place(&cluster, &demands, seed);
        let (newer, unchanged) = mutate(&cluster, &ops);
        let conflicts = check(&newer, &plan, &demands);
        for c in &conflicts {
            prop_assert!(!unchanged.contains(c.agent_id.as_str()), "flagged on an unchanged agent: {}", c);
        }
        for p in &plan.placements {
            let listed: Vec<&AgentSnapshot> = newer.agents.iter().filter(|a| a.id == p.agent_id).collect();
            let expected = match listed.first() {
                None => Some(ConflictCause::AgentGone),
                Some(a) if !a.reachable => Some(ConflictCause::AgentUnreachable),
                _ => None,
            };
            if let Some(cause) = expected {
                prop_assert!(
                    conflicts.iter().any(|c| c.task_id == p.task_id && c.cause == cause),
                    "{} on {} not flagged {:?}", p.task_id, p.agent_id, cause
                );
            }
        }
        let mut kept = plan.clone();
        kept.drop_conflicts(&conflicts);
        verify(&newer, &demands, &kept)?;
        verify_answers(&demands, &kept)?;
        prop_assert_eq!(check(&newer, &kept, &demands), vec![]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// The simulated-node harness at a larger scale: hundreds of heterogeneous agents, thousands of tasks.
    #[test]
    fn simulated_clusters_are_never_overcommitted(seed in any::<u64>(), per_group in 1usize..12) {
        let cluster = sim::cluster(300, 20, seed);
        let demands = sim::demands(6000, per_group, seed);
        let plan = place(&cluster, &demands, seed);
        verify(&cluster, &demands, &plan)?;
        verify_answers(&demands, &plan)?;
        prop_assert!(!plan.placements.is_empty());
        prop_assert_eq!(check(&cluster, &plan, &demands), vec![]);
    }
}
