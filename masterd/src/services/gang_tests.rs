//! Unit tests of the gang app decisions: when a gang is kept, killed whole, waited for, placed.

use super::*;
use gantry_proto::TaskInfo;

fn app(instances: u32) -> AppDefinition {
    let mut a = AppDefinition::with_defaults("/ddp");
    a.instances = instances;
    a.gang = true;
    a
}

fn task(id: &str, state: TaskState) -> TaskRecord {
    TaskRecord {
        info: TaskInfo {
            task_id: TaskId::from(id),
            ..TaskInfo::default()
        },
        owner: TaskOwner::App {
            id: "/ddp".into(),
            version: "v1".into(),
        },
        state,
        status: None,
        last_seq: 0,
        staged_at: 0.0,
        started_at: None,
        unreachable_since: None,
        expunged: false,
        kill_requested: false,
        health: Vec::new(),
    }
}

#[test]
fn a_whole_current_gang_is_kept() {
    let ts: Vec<TaskRecord> = (0..4)
        .map(|k| task(&k.to_string(), TaskState::TaskRunning))
        .collect();
    let all: Vec<&TaskRecord> = ts.iter().collect();
    assert_eq!(step(&app(4), &all, &all, |_| true), GangStep::Keep);
}

#[test]
fn a_gang_with_one_instance_ended_is_killed_whole() {
    let mut ts: Vec<TaskRecord> = (0..4)
        .map(|k| task(&k.to_string(), TaskState::TaskRunning))
        .collect();
    ts[1].state = TaskState::TaskFailed;
    let all: Vec<&TaskRecord> = ts.iter().collect();
    let active: Vec<&TaskRecord> = ts.iter().filter(|t| !t.state.is_terminal()).collect();
    let GangStep::Kill(ids) = step(&app(4), &all, &active, |_| true) else {
        panic!("the rest of the gang is killed");
    };
    let ids: Vec<String> = ids.iter().map(|t| t.0.clone()).collect();
    assert_eq!(ids, ["0", "2", "3"]);
}

#[test]
fn an_outdated_or_resized_gang_is_replaced_whole() {
    let ts: Vec<TaskRecord> = (0..4)
        .map(|k| task(&k.to_string(), TaskState::TaskRunning))
        .collect();
    let all: Vec<&TaskRecord> = ts.iter().collect();
    let old = |t: &TaskRecord| t.info.task_id.0 != "2";
    assert!(matches!(step(&app(4), &all, &all, old), GangStep::Kill(ids) if ids.len() == 4));
    assert!(matches!(step(&app(5), &all, &all, |_| true), GangStep::Kill(ids) if ids.len() == 4));
    assert!(matches!(step(&app(0), &all, &all, |_| true), GangStep::Kill(ids) if ids.len() == 4));
}

#[test]
fn a_new_gang_waits_until_the_old_one_has_ended() {
    let mut ts: Vec<TaskRecord> = (0..2)
        .map(|k| task(&k.to_string(), TaskState::TaskRunning))
        .collect();
    for t in &mut ts {
        t.kill_requested = true;
    }
    let all: Vec<&TaskRecord> = ts.iter().collect();
    assert_eq!(step(&app(2), &all, &[], |_| true), GangStep::Ending);
    ts[0].state = TaskState::TaskKilled;
    ts[1].state = TaskState::TaskUnreachable;
    let all: Vec<&TaskRecord> = ts.iter().collect();
    assert_eq!(
        step(&app(2), &all, &[], |_| true),
        GangStep::Place,
        "an unreachable task is not waited for"
    );
    assert_eq!(
        step(&app(0), &[], &[], |_| true),
        GangStep::Keep,
        "suspended"
    );
}

#[test]
fn rank_zero_asks_for_the_master_port() {
    let d = demand(&app(3));
    let ports: Vec<usize> = d.ranks.iter().map(|r| r.port_count).collect();
    assert_eq!(
        ports,
        [2, 1, 1],
        "the app's one port, and MASTER_PORT on rank 0"
    );
    assert!(d.ranks.iter().all(|r| r.group == "/ddp"));
}

#[test]
fn a_gang_times_out_after_waiting_and_backs_off() {
    let mut svc = ServiceState::default();
    let mut a = app(4);
    a.gang_timeout_seconds = Some(10);
    svc.waiting.insert(
        a.id.clone(),
        Waiting {
            since: 100.0,
            reason: "gang of 4 needs 4 placements; only 3 fit: cpus".into(),
            count: 4,
        },
    );
    assert_eq!(timed_out(&svc, &a, 105.0), None);
    let why = timed_out(&svc, &a, 110.0).expect("timed out");
    give_up(&mut svc, &a, &why, 110.0);
    let w = &svc.waiting[&a.id];
    assert!(
        w.reason.starts_with(
            "the gang could not be placed within gangTimeoutSeconds (10 s): gang of 4"
        ),
        "{}",
        w.reason
    );
    let until = svc.launch_delays[&a.id].until;
    assert!(until > 110.0);
    assert_eq!(
        timed_out(&svc, &a, until + 5.0),
        None,
        "the clock starts again"
    );
    a.gang_timeout_seconds = Some(0);
    assert_eq!(timed_out(&svc, &a, 1e9), None, "0 waits forever");
}

#[test]
fn gang_fields_parse_render_and_are_validated() {
    let parse = |v: serde_json::Value| AppDefinition::from_json(&v, "/");
    let a = parse(serde_json::json!({"id": "/g", "cmd": "x", "instances": 4, "gang": true}))
        .expect("a gang app");
    assert!(a.gang);
    assert_eq!(timeout_secs(&a), DEFAULT_TIMEOUT_SECS);
    assert_eq!(
        a.upgrade_strategy.maximum_over_capacity, 0.0,
        "replaced whole"
    );
    let out = serde_json::to_value(&a).expect("renders");
    assert_eq!(out["gang"], true);
    assert!(out.get("gangTimeoutSeconds").is_none(), "only when given");
    let plain = parse(serde_json::json!({"id": "/p", "cmd": "x"})).expect("plain");
    let out = serde_json::to_value(&plain).expect("renders");
    assert!(out.get("gang").is_none(), "not rendered when not set");
    let back: AppDefinition =
        serde_json::from_value(serde_json::to_value(&a).expect("json")).expect("round trip");
    assert!(back.gang);

    let err = parse(serde_json::json!({"id": "/g", "cmd": "x", "gangTimeoutSeconds": 5}))
        .expect_err("timeout without gang");
    assert!(
        format!("{err:?}").contains("/gangTimeoutSeconds"),
        "{err:?}"
    );
    let err = parse(serde_json::json!({"id": "/g", "cmd": "x", "gang": true, "instances": 5000}))
        .expect_err("too many");
    assert!(format!("{err:?}").contains("/instances"), "{err:?}");
    let err = parse(serde_json::json!({"id": "/g", "cmd": "x", "gang": "yes"}))
        .expect_err("not a boolean");
    assert!(format!("{err:?}").contains("/gang"), "{err:?}");
    parse(serde_json::json!({"id": "/g", "cmd": "x", "gang": true, "instances": 0}))
        .expect("a suspended gang app");
}

fn agent(id: &str, cpus: f64) -> crate::alloc::AgentSnapshot {
    crate::alloc::AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: gantry_proto::Resources {
            ports: PortRanges::new([(31000, 31009)]),
            ..gantry_proto::Resources::scalars(cpus, 8192.0, 1000.0)
        },
        used: gantry_proto::Resources::default(),
        attributes: Default::default(),
        group_counts: HashMap::new(),
        topology: None,
    }
}

#[test]
fn a_gang_placed_whole_or_waiting_whole_and_rechecked_first() {
    let mut a = app(4);
    a.cpus = 1.0;
    let roomy = ClusterSnapshot {
        agents: vec![agent("a", 2.0), agent("b", 2.0)],
    };
    let gangs = place(
        &roomy,
        vec![(a.id.clone(), demand(&a))],
        &HashMap::new(),
        alloc::PlaceOptions::default(),
    );
    let placed = gangs[0].outcome.placements().to_vec();
    assert_eq!(placed.len(), 4, "{:?}", gangs[0].outcome);
    assert_eq!(placed[0].ports.len(), 2, "PORT0 and MASTER_PORT on rank 0");

    // Meanwhile one agent lost a cpu: the gang waits whole, the plain task keeps its place.
    let mut tight = roomy.clone();
    tight.agents[1].total.cpus = 1.0;
    tight.agents.push(agent("c", 1.0));
    let mut gangs = gangs;
    let plain = TaskDemand {
        task_id: "plain".into(),
        group: "/other".into(),
        resources: gantry_proto::Resources::scalars(1.0, 64.0, 0.0),
        port_count: 0,
        numa: alloc::NumaPolicy::None,
        gpu_profile: None,
    };
    let plan = Plan {
        placements: vec![alloc::Placement {
            task_id: "plain".into(),
            agent_id: "c".into(),
            ports: Vec::new(),
            numa: None,
        }],
        unplaced: Vec::new(),
    };
    let conflicts = check(&tight, &mut gangs, &plan, &[plain]);
    assert!(conflicts.is_empty(), "{conflicts:?}");
    match &gangs[0].outcome {
        GangOutcome::Waiting { reason, .. } => {
            assert!(
                reason.starts_with("gang of 4 needs 4 placements; rank "),
                "{reason}"
            )
        }
        placed => panic!("the gang must wait whole: {placed:?}"),
    }

    let small = ClusterSnapshot {
        agents: vec![agent("a", 2.0), agent("b", 1.0)],
    };
    let gangs = place(
        &small,
        vec![(a.id.clone(), demand(&a))],
        &HashMap::new(),
        alloc::PlaceOptions::default(),
    );
    match &gangs[0].outcome {
        GangOutcome::Waiting { fit, reason } => {
            assert_eq!(*fit, 3);
            assert!(reason.contains("only 3 fit"), "{reason}");
        }
        placed => panic!("room for 3 of 4: {placed:?}"),
    }
}
