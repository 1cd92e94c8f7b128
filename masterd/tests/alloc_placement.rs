//! Placement examples: spreading an app's instances, packing different apps, host ports, unreachable
//! agents and the reasons given for tasks that fit nowhere.

use gantry_masterd::alloc::{place, AgentSnapshot, ClusterSnapshot, NumaPolicy, Plan, TaskDemand};
use gantry_proto::{PortRanges, Resources};
use std::collections::HashMap;

fn agent(id: &str, cpus: f64, mem: f64) -> AgentSnapshot {
    AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: Resources {
            ports: PortRanges::new([(31000, 31009)]),
            ..Resources::scalars(cpus, mem, 10_000.0)
        },
        used: Resources::default(),
        attributes: Default::default(),
        group_counts: HashMap::new(),
        topology: None,
    }
}

fn task(id: &str, group: &str, cpus: f64, mem: f64, ports: usize) -> TaskDemand {
    TaskDemand {
        task_id: id.into(),
        group: group.into(),
        resources: Resources::scalars(cpus, mem, 0.0),
        port_count: ports,
        numa: NumaPolicy::None,
        gpu_profile: None,
    }
}

fn per_agent(plan: &Plan) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for p in &plan.placements {
        *m.entry(p.agent_id.to_string()).or_default() += 1;
    }
    m
}

#[test]
fn four_instances_of_one_app_spread_two_and_two_over_two_agents() {
    let cluster = ClusterSnapshot {
        agents: vec![agent("a", 4.0, 4096.0), agent("b", 4.0, 4096.0)],
    };
    let demands: Vec<_> = (0..4)
        .map(|i| task(&format!("web.{i}"), "/web", 0.5, 256.0, 1))
        .collect();
    for seed in 0..20 {
        let plan = place(&cluster, &demands, seed);
        assert!(plan.unplaced.is_empty(), "{:?}", plan.unplaced);
        let counts = per_agent(&plan);
        assert_eq!(counts.get("a"), Some(&2), "seed {seed}: {counts:?}");
        assert_eq!(counts.get("b"), Some(&2), "seed {seed}: {counts:?}");
    }
}

#[test]
fn instances_already_running_count_for_spreading() {
    let mut a = agent("a", 8.0, 8192.0);
    a.group_counts.insert("/web".into(), 2);
    a.used = Resources::scalars(1.0, 512.0, 0.0);
    let cluster = ClusterSnapshot {
        agents: vec![a, agent("b", 8.0, 8192.0)],
    };
    let demands: Vec<_> = (0..2)
        .map(|i| task(&format!("web.{i}"), "/web", 0.5, 256.0, 0))
        .collect();
    let plan = place(&cluster, &demands, 7);
    assert_eq!(per_agent(&plan).get("b"), Some(&2), "{plan:?}");
}

#[test]
fn different_apps_pack_onto_the_fuller_agent() {
    let mut busy = agent("busy", 8.0, 8192.0);
    busy.used = Resources::scalars(6.0, 6144.0, 0.0);
    let cluster = ClusterSnapshot {
        agents: vec![agent("idle", 8.0, 8192.0), busy],
    };
    let demands: Vec<_> = (0..2)
        .map(|i| task(&format!("t{i}"), &format!("/app-{i}"), 1.0, 1024.0, 0))
        .collect();
    for seed in 0..10 {
        let plan = place(&cluster, &demands, seed);
        assert_eq!(
            per_agent(&plan).get("busy"),
            Some(&2),
            "seed {seed}: {plan:?}"
        );
    }
}

#[test]
fn a_task_too_big_for_the_fuller_agent_goes_to_the_other() {
    let mut busy = agent("busy", 8.0, 8192.0);
    busy.used = Resources::scalars(6.0, 6144.0, 0.0);
    let cluster = ClusterSnapshot {
        agents: vec![busy, agent("idle", 8.0, 8192.0)],
    };
    let plan = place(&cluster, &[task("big", "/big", 4.0, 1024.0, 0)], 1);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].agent_id.as_str(), "idle");
}

#[test]
fn host_ports_are_the_lowest_free_ones_and_never_shared() {
    let mut a = agent("a", 8.0, 8192.0);
    a.used.ports = PortRanges::from_ports(&[31000, 31002]);
    let cluster = ClusterSnapshot { agents: vec![a] };
    let demands = [
        task("t0", "/x", 0.1, 10.0, 2),
        task("t1", "/y", 0.1, 10.0, 3),
        task("t2", "/z", 0.1, 10.0, 4),
    ];
    let plan = place(&cluster, &demands, 0);
    assert_eq!(plan.placements[0].ports, vec![31001, 31003]);
    assert_eq!(plan.placements[1].ports, vec![31004, 31005, 31006]);
    assert_eq!(plan.placements.len(), 2, "only 3 ports are left for t2");
    assert_eq!(plan.unplaced[0].task_id.as_str(), "t2");
    assert_eq!(
        plan.unplaced[0].reason,
        "no agent can run it: 1 agent has too few free ports (3 free, 4 asked)"
    );
}

#[test]
fn reasons_count_agents_per_cause() {
    let mut b = agent("b", 0.5, 8192.0);
    b.total.cpus = 0.5;
    let mut c = agent("c", 0.25, 8192.0);
    c.reachable = true;
    let mut gone = agent("d", 64.0, 65536.0);
    gone.reachable = false;
    let cluster = ClusterSnapshot {
        agents: vec![b, c, gone],
    };
    let plan = place(&cluster, &[task("big", "/big", 4.0, 128.0, 0)], 3);
    assert!(plan.placements.is_empty());
    assert_eq!(
        plan.unplaced[0].reason,
        "no agent can run it: 2 agents have too few cpus (at most 0.5 free, 4 asked), 1 unreachable"
    );
}

#[test]
fn with_no_agents_registered_every_task_says_so() {
    let plan = place(
        &ClusterSnapshot::default(),
        &[task("t0", "/a", 1.0, 1.0, 0), task("t1", "/a", 1.0, 1.0, 0)],
        0,
    );
    assert!(plan.placements.is_empty());
    assert_eq!(plan.unplaced.len(), 2);
    assert!(plan
        .unplaced
        .iter()
        .all(|u| u.reason == "no agents are registered"));
}

#[test]
fn nothing_goes_to_an_unreachable_agent_even_if_it_is_the_only_fit() {
    let mut big = agent("big", 64.0, 65536.0);
    big.reachable = false;
    let cluster = ClusterSnapshot {
        agents: vec![big, agent("small", 2.0, 2048.0)],
    };
    let plan = place(
        &cluster,
        &[
            task("t0", "/a", 1.0, 1024.0, 0),
            task("t1", "/b", 8.0, 1024.0, 0),
        ],
        0,
    );
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].agent_id.as_str(), "small");
    assert_eq!(
        plan.unplaced[0].reason,
        "no agent can run it: 1 agent has too few cpus (1 free, 8 asked), 1 unreachable"
    );
}

#[test]
fn gpus_and_disk_are_respected() {
    let mut g = agent("gpu", 8.0, 8192.0);
    g.total.gpus = 2;
    g.used.gpus = 1;
    let cluster = ClusterSnapshot {
        agents: vec![agent("cpu", 8.0, 8192.0), g],
    };
    let mut t = task("train", "/train", 1.0, 1024.0, 0);
    t.resources.gpus = 1;
    let mut t2 = t.clone();
    t2.task_id = "train2".into();
    let mut d = task("disky", "/disky", 0.1, 1.0, 0);
    d.resources.disk = 20_000.0;
    let plan = place(&cluster, &[t, t2, d], 0);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].agent_id.as_str(), "gpu");
    let reasons: Vec<&str> = plan.unplaced.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "no agent can run it: 2 agents have too few gpus (at most 0 free, 1 asked)",
            "no agent can run it: 2 agents have too little disk (at most 10000 MiB free, 20000 MiB asked)",
        ]
    );
}

#[test]
fn a_task_id_given_twice_is_placed_once_and_bad_amounts_are_refused() {
    let cluster = ClusterSnapshot {
        agents: vec![agent("a", 8.0, 8192.0)],
    };
    let bad = task("neg", "/n", -1.0, 10.0, 0);
    let plan = place(
        &cluster,
        &[
            task("t", "/a", 1.0, 1.0, 0),
            task("t", "/a", 1.0, 1.0, 0),
            bad,
        ],
        0,
    );
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.unplaced.len(), 2);
    assert!(
        plan.unplaced[0].reason.contains("appears earlier"),
        "{:?}",
        plan.unplaced
    );
    assert!(
        plan.unplaced[1].reason.starts_with("invalid demand: cpus"),
        "{:?}",
        plan.unplaced
    );
}

#[test]
fn an_agent_listed_twice_is_filled_once() {
    let cluster = ClusterSnapshot {
        agents: vec![agent("a", 2.0, 2048.0), agent("a", 2.0, 2048.0)],
    };
    let demands: Vec<_> = (0..4)
        .map(|i| task(&format!("t{i}"), &format!("/g{i}"), 1.0, 512.0, 0))
        .collect();
    let plan = place(&cluster, &demands, 0);
    assert_eq!(plan.placements.len(), 2, "{plan:?}");
}

#[test]
fn many_identical_tasks_that_fit_nowhere_all_get_the_reason() {
    let cluster = ClusterSnapshot {
        agents: (0..50)
            .map(|i| agent(&format!("a{i}"), 1.0, 1024.0))
            .collect(),
    };
    let mut demands: Vec<_> = (0..1000)
        .map(|i| task(&format!("big{i}"), "/big", 2.0, 512.0, 0))
        .collect();
    demands.push(task("small", "/small", 0.5, 512.0, 0));
    let plan = place(&cluster, &demands, 9);
    assert_eq!(plan.unplaced.len(), 1000);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].task_id.as_str(), "small");
    // Written against the state after the run: the small task took half of one agent's cpus.
    assert_eq!(
        plan.unplaced[999].reason,
        "no agent can run it: 50 agents have too few cpus (at most 1 free, 2 asked)"
    );
}
