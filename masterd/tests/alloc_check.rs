//! Re-checking a plan against a newer snapshot: each kind of conflict, and dropping conflicts so the
//! tasks go back to the queue with a reason.

use gantry_masterd::alloc::{
    check, place, AgentSnapshot, ClusterSnapshot, ConflictCause, NumaPolicy, Placement, Plan,
    ResourceKind, TaskDemand,
};
use gantry_proto::{PortRanges, Resources};
use std::collections::HashMap;

fn agent(id: &str, cpus: f64) -> AgentSnapshot {
    AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: Resources {
            gpus: 1,
            ports: PortRanges::new([(31000, 31009)]),
            ..Resources::scalars(cpus, 4096.0, 1000.0)
        },
        used: Resources::default(),
        attributes: Default::default(),
        group_counts: HashMap::new(),
        topology: None,
    }
}

fn task(id: &str, cpus: f64, ports: usize) -> TaskDemand {
    TaskDemand {
        task_id: id.into(),
        group: format!("/{id}"),
        resources: Resources::scalars(cpus, 256.0, 0.0),
        port_count: ports,
        numa: NumaPolicy::None,
        gpu_profile: None,
    }
}

fn placement(task: &str, agent: &str, ports: &[u16]) -> Placement {
    Placement {
        task_id: task.into(),
        agent_id: agent.into(),
        ports: ports.to_vec(),
        numa: None,
    }
}

#[test]
fn each_kind_of_conflict_is_named() {
    let mut busy = agent("busy", 4.0);
    busy.used.cpus = 3.5;
    busy.used.ports = PortRanges::from_ports(&[31000]);
    let mut away = agent("away", 4.0);
    away.reachable = false;
    let newer = ClusterSnapshot {
        agents: vec![busy, away, agent("ok", 4.0)],
    };
    let demands = [
        task("fits", 0.5, 0),
        task("cpu", 1.0, 0),
        task("port", 0.1, 1),
        task("away", 0.1, 0),
        task("gone", 0.1, 0),
        task("count", 0.1, 2),
    ];
    let plan = Plan {
        placements: vec![
            placement("fits", "busy", &[]),
            placement("cpu", "busy", &[]),
            placement("port", "ok", &[31000]),
            placement("port", "ok", &[31001]),
            placement("away", "away", &[]),
            placement("gone", "gone", &[]),
            placement("count", "ok", &[31002]),
            placement("stranger", "ok", &[]),
        ],
        unplaced: vec![],
    };
    let conflicts = check(&newer, &plan, &demands);
    let got: Vec<(usize, &str, &ConflictCause)> = conflicts
        .iter()
        .map(|c| (c.index, c.task_id.as_str(), &c.cause))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                "cpu",
                &ConflictCause::TooFew {
                    resource: ResourceKind::Cpus,
                    free: 0.0,
                    asked: 1.0
                }
            ),
            (3, "port", &ConflictCause::PlacedTwice),
            (4, "away", &ConflictCause::AgentUnreachable),
            (5, "gone", &ConflictCause::AgentGone),
            (
                6,
                "count",
                &ConflictCause::PortCount {
                    chosen: 1,
                    asked: 2
                }
            ),
            (7, "stranger", &ConflictCause::UnknownTask),
        ]
    );
    assert_eq!(
        conflicts[0].to_string(),
        "task cpu on agent busy: too little cpus left on the agent (0 free, 1 asked)"
    );
}

#[test]
fn a_port_taken_meanwhile_or_twice_in_one_plan_is_flagged() {
    let plan = Plan {
        placements: vec![
            placement("a", "x", &[31001]),
            placement("b", "x", &[31001]),
            placement("c", "x", &[31005]),
            placement("d", "x", &[31050]),
        ],
        unplaced: vec![],
    };
    let demands = [
        task("a", 0.1, 1),
        task("b", 0.1, 1),
        task("c", 0.1, 1),
        task("d", 0.1, 1),
    ];
    let mut x = agent("x", 4.0);
    x.used.ports = PortRanges::from_ports(&[31005]);
    let conflicts = check(&ClusterSnapshot { agents: vec![x] }, &plan, &demands);
    let causes: Vec<_> = conflicts
        .iter()
        .map(|c| (c.index, c.cause.clone()))
        .collect();
    assert_eq!(
        causes,
        vec![
            (1, ConflictCause::PortTaken(31001)),
            (2, ConflictCause::PortTaken(31005)),
            (3, ConflictCause::PortTaken(31050)),
        ]
    );
}

#[test]
fn a_plan_checked_against_a_newer_snapshot_keeps_what_still_fits() {
    let older = ClusterSnapshot {
        agents: vec![agent("a", 4.0), agent("b", 4.0)],
    };
    let demands: Vec<_> = (0..6).map(|i| task(&format!("t{i}"), 1.0, 1)).collect();
    let mut plan = place(&older, &demands, 5);
    assert_eq!(plan.placements.len(), 6);
    assert!(check(&older, &plan, &demands).is_empty());

    // Meanwhile agent b went away and someone took 2 cpus and port 31000 on agent a.
    let mut a = agent("a", 4.0);
    a.used.cpus = 2.0;
    a.used.ports = PortRanges::from_ports(&[31000]);
    let newer = ClusterSnapshot { agents: vec![a] };
    let conflicts = check(&newer, &plan, &demands);
    let on_a = plan
        .placements
        .iter()
        .filter(|p| p.agent_id.as_str() == "a")
        .count();
    let on_b = 6 - on_a;
    assert_eq!(
        conflicts
            .iter()
            .filter(|c| c.cause == ConflictCause::AgentGone)
            .count(),
        on_b
    );
    plan.drop_conflicts(&conflicts);
    assert!(check(&newer, &plan, &demands).is_empty());
    assert!(
        plan.placements.len() <= 2,
        "only 2 cpus are left on a: {plan:?}"
    );
    assert_eq!(plan.placements.len() + plan.unplaced.len(), 6);
    assert!(plan
        .unplaced
        .iter()
        .all(|u| u.reason.starts_with("its place on agent ")));
    assert!(plan
        .unplaced
        .iter()
        .any(|u| u.reason == "its place on agent b was lost: the agent is no longer registered"));
}
