//! Property tests of GPU/NUMA placement on generated DGX-2-shaped clusters (random unhealthy and
//! taken GPUs, pinned PUs, demands with 0-9 GPUs and every policy): no GPU given twice, no
//! unhealthy GPU given, no PU pinned twice, `require` always on one node, and `check` agrees.

use gantry_masterd::alloc::sim::dgx2_topology;
use gantry_masterd::alloc::{
    check, place, AgentSnapshot, ClusterSnapshot, NodeTopology, NumaPolicy, TaskDemand, TopologyUse,
};
use gantry_proto::{NumaDomain, Resources};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn topology_with_unhealthy(unhealthy: u16) -> Arc<NodeTopology> {
    let mut t = dgx2_topology();
    for g in &mut t.gpus {
        if unhealthy & (1 << g.index) != 0 {
            g.health = gantry_gpu::GpuHealth::Unhealthy {
                reason: "critical XID 79".into(),
            };
        }
    }
    let domains: Vec<NumaDomain> = t
        .domains
        .iter()
        .map(|d| NumaDomain {
            id: d.id,
            cpus: d.cores.iter().flatten().copied().collect(),
            mem: d.mem,
            gpus: vec![],
            cores: d.cores.clone(),
        })
        .collect();
    Arc::new(NodeTopology::new(t.gpus, &domains))
}

fn agent_strategy() -> impl Strategy<Value = AgentSnapshot> {
    (
        any::<u16>().prop_map(|m| m & m.rotate_left(3)),
        any::<u16>().prop_map(|m| m & m.rotate_left(5)),
        prop::collection::vec(0u32..96, 0..40),
    )
        .prop_map(|(unhealthy, taken, pinned)| {
            let topology = topology_with_unhealthy(unhealthy);
            let taken: Vec<u32> = (0..16).filter(|i| taken & (1 << i) != 0).collect();
            let mut pinned = pinned;
            pinned.sort_unstable();
            pinned.dedup();
            let healthy = topology.healthy_mask.count_ones();
            AgentSnapshot {
                id: "placeholder".into(),
                reachable: true,
                total: Resources {
                    gpus: healthy,
                    ..Resources::scalars(96.0, 1_500_000.0, 1_000_000.0)
                },
                used: Resources {
                    gpus: taken.len() as u32,
                    ..Resources::scalars(pinned.len() as f64, 0.0, 0.0)
                },
                attributes: Default::default(),
                group_counts: HashMap::new(),
                topology: Some(TopologyUse {
                    topology,
                    taken_gpus: taken,
                    pinned_cpus: pinned,
                    mem_bound: vec![],
                }),
            }
        })
}

fn cluster_strategy() -> impl Strategy<Value = ClusterSnapshot> {
    prop::collection::vec(agent_strategy(), 1..5).prop_map(|v| ClusterSnapshot {
        agents: v
            .into_iter()
            .enumerate()
            .map(|(i, mut a)| {
                a.id = format!("dgx-{i}").into();
                a
            })
            .collect(),
    })
}

fn demands_strategy() -> impl Strategy<Value = Vec<TaskDemand>> {
    prop::collection::vec((0u32..10, 0u8..3, 1u32..64), 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (gpus, policy, cpu_q))| TaskDemand {
                task_id: format!("t{i}").into(),
                group: format!("/g{}", i % 3),
                resources: Resources {
                    gpus,
                    ..Resources::scalars(f64::from(cpu_q) * 0.5, 4096.0, 0.0)
                },
                port_count: 0,
                numa: [NumaPolicy::None, NumaPolicy::Prefer, NumaPolicy::Require]
                    [usize::from(policy)],
                gpu_profile: None,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn gpus_and_pinned_cpus_are_never_given_twice_nor_unhealthy_gpus(
        cluster in cluster_strategy(),
        demands in demands_strategy(),
        seed in any::<u64>(),
    ) {
        let plan = place(&cluster, &demands, seed);
        prop_assert_eq!(plan.placements.len() + plan.unplaced.len(), demands.len());
        let agents: HashMap<&str, &AgentSnapshot> =
            cluster.agents.iter().map(|a| (a.id.as_str(), a)).collect();
        let demand: HashMap<&str, &TaskDemand> =
            demands.iter().map(|d| (d.task_id.as_str(), d)).collect();
        let mut gpus_held: HashSet<(String, u32)> = HashSet::new();
        let mut pus_held: HashSet<(String, u32)> = HashSet::new();
        for a in &cluster.agents {
            let t = a.topology.as_ref().expect("topology");
            for g in &t.taken_gpus {
                gpus_held.insert((a.id.to_string(), *g));
            }
            for c in &t.pinned_cpus {
                pus_held.insert((a.id.to_string(), *c));
            }
        }
        for p in &plan.placements {
            let d = demand[p.task_id.as_str()];
            let a = agents[p.agent_id.as_str()];
            let topo = &a.topology.as_ref().expect("topology").topology;
            let Some(n) = &p.numa else {
                prop_assert!(d.resources.gpus == 0, "a GPU task got no GPUs: {:?}", p);
                prop_assert!(d.numa != NumaPolicy::Require, "require unbound: {:?}", p);
                continue;
            };
            prop_assert_eq!(n.gpus.len() as u32, d.resources.gpus);
            for g in &n.gpus {
                let gpu = topo.gpus.iter().find(|x| x.index == g.index).expect("a known GPU");
                prop_assert!(gpu.health.is_healthy(), "unhealthy GPU {} given", g.index);
                prop_assert_eq!(gpu.uuid.as_str(), &*g.uuid);
                prop_assert!(
                    gpus_held.insert((a.id.to_string(), g.index)),
                    "GPU {} on {} given twice", g.index, a.id
                );
            }
            for c in &n.cpus {
                prop_assert!(
                    pus_held.insert((a.id.to_string(), *c)),
                    "cpu {} on {} pinned twice", c, a.id
                );
            }
            if d.numa == NumaPolicy::Require {
                let node = n.numa_node.expect("require binds to a node");
                prop_assert!(n.gpus.iter().all(|g| g.index / 8 == node));
                prop_assert_eq!(n.cpus.len() as f64, (d.resources.cpus - 1e-3).ceil());
                let domain = topo.domains.iter().find(|x| x.id == node).expect("domain");
                prop_assert!(n.cpus.iter().all(|c| domain.cores.iter().flatten().any(|x| x == c)));
                prop_assert_eq!(&n.mems, &vec![node]);
            }
        }
        prop_assert!(check(&cluster, &plan, &demands).is_empty());
    }
}
