//! GPU/NUMA placement on DGX-2-shaped simulated agents: `require` tasks get GPUs, cores and
//! memory of one NUMA node; a `require` that cannot be met waits and says why; `prefer` falls back;
//! CPU-only tasks avoid GPU agents; unhealthy GPUs are skipped; `check` sees GPUs taken meanwhile.

use gantry_masterd::alloc::sim::{dgx2_cluster, dgx2_topology};
use gantry_masterd::alloc::{
    check, place, place_with, AgentSnapshot, ClusterSnapshot, ConflictCause, GpuAgentRule,
    NumaPolicy, PlaceOptions, Placement, TaskDemand, TopologyUse,
};
use gantry_proto::{NumaPlacement, PortRanges, Resources};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

fn gpu_task(id: &str, gpus: u32, cpus: f64, numa: NumaPolicy) -> TaskDemand {
    TaskDemand {
        task_id: id.into(),
        group: format!("/{id}"),
        resources: Resources {
            gpus,
            ..Resources::scalars(cpus, 8192.0, 0.0)
        },
        port_count: 0,
        numa,
        gpu_profile: None,
    }
}

fn cpu_agent(id: &str, cpus: f64) -> AgentSnapshot {
    AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: Resources {
            ports: PortRanges::new([(31000, 31010)]),
            ..Resources::scalars(cpus, 65536.0, 100000.0)
        },
        used: Resources::default(),
        attributes: Default::default(),
        group_counts: HashMap::new(),
        topology: None,
    }
}

/// One DGX-2 with the given GPUs already held by tasks.
fn dgx2_with_taken(id: &str, taken: &[u32]) -> AgentSnapshot {
    let mut a = dgx2_cluster(1, 0, 0, 1).agents.remove(0);
    a.id = id.into();
    a.used.gpus = taken.len() as u32;
    if let Some(t) = &mut a.topology {
        t.taken_gpus = taken.to_vec();
    }
    a
}

fn numa_of(p: &Placement) -> &NumaPlacement {
    p.numa.as_ref().expect("a bound placement")
}

#[test]
fn two_gpu_require_tasks_land_on_one_numa_node_with_its_cores_and_memory() {
    let cluster = dgx2_cluster(50, 0, 0, 7);
    let topo = dgx2_topology();
    let demands: Vec<TaskDemand> = (0..300)
        .map(|i| gpu_task(&format!("t{i}"), 2, 4.0, NumaPolicy::Require))
        .collect();
    let plan = place(&cluster, &demands, 3);
    assert_eq!(plan.placements.len(), 300, "{:?}", plan.unplaced.first());
    let mut given: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut pinned: BTreeSet<(String, u32)> = BTreeSet::new();
    for p in &plan.placements {
        let n = numa_of(p);
        let node = n.numa_node.expect("require binds to a node");
        let domain = topo.domains.iter().find(|d| d.id == node).expect("node");
        assert_eq!(n.gpus.len(), 2);
        for g in &n.gpus {
            assert_eq!(g.index / 8, node, "GPU {} is on node {node}", g.index);
            assert!(g.uuid.starts_with("GPU-sim-"));
            assert!(
                given.insert((p.agent_id.to_string(), g.index)),
                "GPU given twice"
            );
        }
        assert_eq!(n.cpus.len(), 4);
        let node_pus: BTreeSet<u32> = domain.cores.iter().flatten().copied().collect();
        assert!(n.cpus.iter().all(|c| node_pus.contains(c)), "{n:?}");
        // Whole cores: both hyperthreads (c, c + 48) of two cores.
        let cores: BTreeSet<u32> = n.cpus.iter().map(|c| c % 48).collect();
        assert_eq!(cores.len(), 2, "{n:?}");
        assert_eq!(n.mems, vec![node]);
        for &c in &n.cpus {
            assert!(
                pinned.insert((p.agent_id.to_string(), c)),
                "cpu pinned twice"
            );
        }
    }
    assert!(check(&cluster, &plan, &demands).is_empty());
}

#[test]
fn a_require_that_cannot_be_met_waits_and_says_why_while_prefer_spans_nodes() {
    // 3 free GPUs on each node: 4 GPUs on one node cannot be had.
    let taken = [0, 1, 2, 3, 4, 8, 9, 10, 11, 12];
    let cluster = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &taken)],
    };
    let req = gpu_task("req", 4, 4.0, NumaPolicy::Require);
    let plan = place(&cluster, std::slice::from_ref(&req), 1);
    assert!(plan.placements.is_empty());
    let reason = &plan.unplaced[0].reason;
    assert!(
        reason.contains("no NUMA node with 4 free GPUs, 4 free cpus and 8192 MiB free together")
            && reason.contains("numaPolicy require"),
        "{reason}"
    );

    let pref = gpu_task("pref", 4, 4.0, NumaPolicy::Prefer);
    let plan = place(&cluster, &[pref], 1);
    let n = numa_of(&plan.placements[0]);
    assert_eq!(n.gpus.len(), 4);
    assert_eq!(n.numa_node, None, "spans both nodes");
    assert!(n.cpus.is_empty() && n.mems.is_empty(), "not pinned: {n:?}");
    assert!(n.gpus.iter().all(|g| !taken.contains(&g.index)));

    // Enough GPUs on a node but not enough cores there (48 PUs per node).
    let free = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &[])],
    };
    let wide = gpu_task("wide", 8, 60.0, NumaPolicy::Require);
    let plan = place(&free, &[wide], 1);
    assert!(plan.placements.is_empty());
    assert!(
        plan.unplaced[0].reason.contains("60 free cpus"),
        "{}",
        plan.unplaced[0].reason
    );
}

#[test]
fn unhealthy_gpus_are_never_given() {
    let mut agent = dgx2_with_taken("dgx", &[]);
    let mut topo = dgx2_topology();
    for g in topo.gpus.iter_mut().filter(|g| g.index < 7) {
        g.health = gantry_gpu::GpuHealth::Unhealthy {
            reason: "critical XID 79".into(),
        };
    }
    let domains: Vec<gantry_proto::NumaDomain> = topo
        .domains
        .iter()
        .map(|d| gantry_proto::NumaDomain {
            id: d.id,
            cpus: d.cores.iter().flatten().copied().collect(),
            mem: d.mem,
            gpus: vec![],
            cores: d.cores.clone(),
        })
        .collect();
    let sick = gantry_masterd::alloc::NodeTopology::new(topo.gpus, &domains);
    agent.total.gpus = 9;
    agent.topology = Some(TopologyUse::idle(Arc::new(sick)));
    let cluster = ClusterSnapshot {
        agents: vec![agent],
    };
    let demands: Vec<TaskDemand> = (0..5)
        .map(|i| gpu_task(&format!("t{i}"), 2, 1.0, NumaPolicy::Require))
        .collect();
    let plan = place(&cluster, &demands, 2);
    // Node 0 has one healthy GPU (7), node 1 eight: four 2-GPU tasks fit, all on node 1.
    assert_eq!(plan.placements.len(), 4);
    for p in &plan.placements {
        assert!(numa_of(p).gpus.iter().all(|g| g.index >= 8), "{p:?}");
    }
    assert_eq!(plan.unplaced.len(), 1);
}

#[test]
fn cpu_only_tasks_avoid_gpu_agents_or_are_kept_off_them() {
    let cluster = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &[]), cpu_agent("plain", 8.0)],
    };
    let cpu: Vec<TaskDemand> = (0..8)
        .map(|i| gpu_task(&format!("c{i}"), 0, 1.0, NumaPolicy::None))
        .collect();
    let plan = place(&cluster, &cpu, 4);
    assert!(plan
        .placements
        .iter()
        .all(|p| p.agent_id.as_str() == "plain"));
    assert!(plan.placements.iter().all(|p| p.numa.is_none()));
    // The plain agent is full: `avoid` overflows to the GPU agent, `never` waits and says why.
    let more = gpu_task("c9", 0, 1.0, NumaPolicy::None);
    let all: Vec<TaskDemand> = cpu.iter().cloned().chain([more]).collect();
    let plan = place(&cluster, &all, 4);
    assert_eq!(plan.placements.len(), 9);
    let never = PlaceOptions {
        cpu_tasks_on_gpu_agents: GpuAgentRule::Never,
    };
    let plan = place_with(&cluster, &all, 4, never);
    assert_eq!(plan.placements.len(), 8);
    assert!(
        plan.unplaced[0]
            .reason
            .contains("1 agents with GPUs are kept for GPU tasks"),
        "{}",
        plan.unplaced[0].reason
    );
    let allow = PlaceOptions {
        cpu_tasks_on_gpu_agents: GpuAgentRule::Allow,
    };
    assert_eq!(place_with(&cluster, &all, 4, allow).placements.len(), 9);
}

#[test]
fn cpu_only_tasks_with_a_numa_policy_are_pinned_to_one_node() {
    let cluster = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &[0, 1, 2])],
    };
    let t = gpu_task("pinned", 0, 3.0, NumaPolicy::Require);
    let plan = place(&cluster, &[t], 1);
    let n = numa_of(&plan.placements[0]);
    assert_eq!(n.numa_node, Some(0), "the node with fewer free GPUs");
    assert_eq!(n.cpus.len(), 3);
    assert!(n.gpus.is_empty());
}

#[test]
fn check_refuses_a_gpu_taken_meanwhile() {
    let older = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &[])],
    };
    let demands = [gpu_task("t", 2, 2.0, NumaPolicy::Require)];
    let plan = place(&older, &demands, 1);
    let chosen = numa_of(&plan.placements[0]).gpus[0].index;
    let newer = ClusterSnapshot {
        agents: vec![dgx2_with_taken("dgx", &[chosen])],
    };
    let conflicts = check(&newer, &plan, &demands);
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].cause, ConflictCause::GpuTaken(chosen));
    let mut pinned = dgx2_with_taken("dgx", &[]);
    if let Some(t) = &mut pinned.topology {
        t.pinned_cpus = numa_of(&plan.placements[0]).cpus.clone();
    }
    let conflicts = check(
        &ClusterSnapshot {
            agents: vec![pinned],
        },
        &plan,
        &demands,
    );
    assert!(matches!(conflicts[0].cause, ConflictCause::CpuTaken(_)));
}
