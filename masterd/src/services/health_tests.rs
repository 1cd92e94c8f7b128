//! Which checks a task gets, which tasks count as healthy, and when an unhealthy one is killed.

use super::*;
use crate::services::app::{CommandCheck, HealthCheck};
use crate::store::records::TaskOwner;
use gantry_proto::{HealthResult, TaskInfo};

fn app(instances: u32, over: f64) -> AppDefinition {
    let mut a = AppDefinition::with_defaults("/web");
    a.instances = instances;
    a.upgrade_strategy.maximum_over_capacity = over;
    a.health_checks = vec![HealthCheck {
        max_consecutive_failures: 2,
        ..HealthCheck::with_protocol(HealthCheckProtocol::Http)
    }];
    a
}

fn task(id: &str, staged_at: f64, health: Vec<HealthResult>) -> TaskRecord {
    let a = app(1, 1.0);
    TaskRecord {
        info: TaskInfo {
            task_id: id.into(),
            health_checks: task_checks(&a, &[31000]),
            ..TaskInfo::default()
        },
        owner: TaskOwner::App {
            id: "/web".into(),
            version: "v".into(),
        },
        state: TaskState::TaskRunning,
        status: None,
        last_seq: 0,
        staged_at,
        started_at: Some(staged_at),
        unreachable_since: None,
        expunged: false,
        kill_requested: false,
        health,
    }
}

fn failing(n: u32) -> HealthResult {
    HealthResult {
        alive: false,
        consecutive_failures: n,
        last_failure: Some(1.0),
        last_failure_cause: Some("HTTP status 500".into()),
        ..HealthResult::default()
    }
}

fn alive() -> HealthResult {
    HealthResult::default().succeeded(1.0)
}

#[test]
fn checks_resolve_ports_and_protocols() {
    let mut a = app(1, 1.0);
    a.health_checks.push(HealthCheck {
        port_index: Some(1),
        ..HealthCheck::with_protocol(HealthCheckProtocol::MesosTcp)
    });
    a.health_checks.push(HealthCheck {
        port: Some(8080),
        port_index: Some(0),
        ..HealthCheck::with_protocol(HealthCheckProtocol::Https)
    });
    a.health_checks.push(HealthCheck {
        command: Some(CommandCheck {
            value: "true".into(),
        }),
        ..HealthCheck::with_protocol(HealthCheckProtocol::Command)
    });
    a.health_checks[0].port_index = Some(0);
    let c = task_checks(&a, &[31000, 31001]);
    assert_eq!(c[0].protocol, HealthProtocol::Http);
    assert_eq!((c[0].port, c[0].path.as_str()), (Some(31000), "/"));
    assert!(!c[0].mesos_level);
    assert_eq!(
        (c[1].protocol, c[1].port),
        (HealthProtocol::Tcp, Some(31001))
    );
    assert!(c[1].mesos_level);
    assert_eq!(c[2].port, Some(8080), "port wins over portIndex");
    assert_eq!(c[3].command.as_deref(), Some("true"));
    assert_eq!(c[3].port, None);
    assert_eq!(c[0].grace_period_secs, 300.0);
}

#[test]
fn healthy_and_unhealthy_counts() {
    assert!(is_healthy(&task("a", 0.0, vec![alive()])));
    assert!(!is_healthy(&task("b", 0.0, vec![])), "no result yet");
    let pending = vec![alive(), HealthResult::default()];
    assert!(
        !is_healthy(&task("p", 0.0, pending.clone())),
        "one check has no result yet"
    );
    assert!(
        !is_unhealthy(&task("p", 0.0, pending)),
        "nor is it a failure"
    );
    assert!(!is_unhealthy(&task("b", 0.0, vec![])));
    assert!(is_unhealthy(&task("c", 0.0, vec![failing(1)])));
    assert!(!is_doomed(&task("c", 0.0, vec![failing(1)])));
    assert!(is_doomed(&task("d", 0.0, vec![failing(2)])));
}

fn state(tasks: Vec<TaskRecord>) -> ClusterState {
    let mut st = ClusterState::default();
    for t in tasks {
        st.put_task(t);
    }
    st
}

fn services(a: AppDefinition) -> ServiceState {
    let mut svc = ServiceState::default();
    svc.apps.insert(a.id.clone(), a);
    svc
}

#[test]
fn the_replacement_starts_first_when_capacity_allows() {
    let doomed = task("old", 1.0, vec![failing(2)]);
    // Room for one over (maximumOverCapacity 1): kept until another task is healthy.
    let st = state(vec![doomed.clone()]);
    assert!(kills_due(&st, &services(app(1, 1.0))).is_empty());
    let mut starting = task("new", 2.0, vec![]);
    starting.state = TaskState::TaskStaging;
    let st = state(vec![doomed.clone(), starting]);
    assert!(kills_due(&st, &services(app(1, 1.0))).is_empty());
    let st = state(vec![doomed.clone(), task("new", 2.0, vec![alive()])]);
    assert_eq!(
        kills_due(&st, &services(app(1, 1.0))),
        vec![TaskId::from("old")]
    );
    // No room (maximumOverCapacity 0): killed at once.
    let st = state(vec![doomed.clone()]);
    assert_eq!(
        kills_due(&st, &services(app(1, 0.0))),
        vec![TaskId::from("old")]
    );
    // Two doomed of 2 instances with room for 1 (2 × 1.5 = 3): the oldest stays.
    let st = state(vec![doomed, task("old2", 0.5, vec![failing(3)])]);
    assert_eq!(
        kills_due(&st, &services(app(2, 0.5))),
        vec![TaskId::from("old")]
    );
}

#[test]
fn a_health_kill_is_a_failure_with_its_cause() {
    let mut t = task("old", 1.0, vec![failing(2)]);
    assert_eq!(t.health_kill_cause(), Some("HTTP status 500"));
    assert!(!t.killed_unhealthy());
    t.state = TaskState::TaskKilled;
    assert!(t.killed_unhealthy());
}
