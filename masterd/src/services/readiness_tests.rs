//! Which tasks are probed and when, how results are kept, and how they gate a deployment's census.

use super::*;
use crate::services::app::{PortDefinition, ReadinessCheck};
use crate::services::deployments::plan::{ChangeKind, DeploymentPlan};
use crate::services::deployments::progress::census;
use crate::services::deployments::rolling::Census;
use crate::store::records::TaskOwner;
use gantry_proto::TaskInfo;
use std::collections::BTreeMap;

fn check(preserve: bool) -> ReadinessCheck {
    ReadinessCheck {
        name: "ready".into(),
        protocol: "HTTP".into(),
        path: "ready".into(),
        port_name: "http-api".into(),
        interval_seconds: 5,
        timeout_seconds: 2,
        http_status_codes_for_ready: vec![200, 204],
        preserve_last_response: preserve,
    }
}

fn app() -> AppDefinition {
    let mut a = AppDefinition::with_defaults("/web");
    a.instances = 2;
    a.version = "v2".into();
    a.port_definitions = ["admin", "http-api"]
        .into_iter()
        .map(|n| PortDefinition {
            name: Some(n.into()),
            ..PortDefinition::default_port()
        })
        .collect();
    a.readiness_checks = vec![check(false)];
    a
}

fn task(id: &str, version: &str, state: TaskState) -> TaskRecord {
    TaskRecord {
        info: TaskInfo {
            task_id: id.into(),
            ports: vec![31000, 31001],
            ..TaskInfo::default()
        },
        owner: TaskOwner::App {
            id: "/web".into(),
            version: version.into(),
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

fn cluster(tasks: Vec<TaskRecord>) -> ClusterState {
    let mut st = ClusterState::default();
    for t in tasks {
        st.put_task(t);
    }
    st
}

/// `/web` being restarted (or, with `deploying` false, not deployed at all).
fn services(a: AppDefinition, deploying: bool) -> ServiceState {
    let mut svc = ServiceState::default();
    if deploying {
        let plan = DeploymentPlan::new(
            "d".into(),
            "v2".into(),
            &[(a.id.clone(), ChangeKind::Restart)],
            BTreeMap::new(),
            &BTreeMap::new(),
        );
        svc.deployments.insert(plan.id.clone(), plan);
    }
    svc.apps.insert(a.id.clone(), a);
    svc
}

fn answer(status: u16, body: &str) -> ProbeOutcome {
    ProbeOutcome::Response(LastResponse {
        status,
        content_type: "text/plain".into(),
        body: body.into(),
    })
}

#[test]
fn the_named_port_is_probed() {
    let a = app();
    assert_eq!(named_port(&a, &[31000, 31001], "http-api"), Some(31001));
    assert_eq!(named_port(&a, &[31000, 31001], "admin"), Some(31000));
    assert_eq!(named_port(&a, &[31000, 31001], "nope"), None);
}

#[test]
fn only_running_new_tasks_of_deploying_apps_are_probed_once_per_interval() {
    let st = cluster(vec![
        task("new", "v2", TaskState::TaskRunning),
        task("staging", "v2", TaskState::TaskStaging),
        // A version no longer stored counts as an old configuration: never probed.
        task("old", "v1", TaskState::TaskRunning),
    ]);
    let mut idle = services(app(), false);
    assert!(
        due_probes(&mut idle, &st, 100.0).is_empty(),
        "no deployment"
    );

    let mut svc = services(app(), true);
    let due = due_probes(&mut svc, &st, 100.0);
    assert_eq!(due.len(), 1, "{due:?}");
    let p = &due[0];
    assert_eq!(p.task_id, TaskId::from("new"));
    assert_eq!(p.url, "http://:31001/ready", "no agent: an empty host");
    assert_eq!(p.timeout, Duration::from_secs(2));
    assert!(
        due_probes(&mut svc, &st, 104.0).is_empty(),
        "within the interval"
    );
    assert_eq!(due_probes(&mut svc, &st, 105.0).len(), 1, "one interval on");

    assert!(!svc.readiness.record(p, answer(503, "starting")));
    assert!(!svc.readiness.is_ready(&p.task_id));
    assert!(svc.readiness.record(p, answer(204, "")));
    assert!(svc.readiness.is_ready(&p.task_id));
    assert!(
        due_probes(&mut svc, &st, 1000.0).is_empty(),
        "a ready task is not probed again"
    );
}

#[test]
fn results_keep_the_last_response_only_when_asked() {
    let st = cluster(vec![task("new", "v2", TaskState::TaskRunning)]);
    let mut svc = services(app(), true);
    let p = due_probes(&mut svc, &st, 0.0).remove(0);
    svc.readiness.record(&p, answer(503, "starting"));
    let shown = serde_json::to_value(results_of(&svc, &st, "/web")).unwrap_or_default();
    assert_eq!(
        shown,
        serde_json::json!([{"name": "ready", "taskId": "new", "ready": false}])
    );

    let mut a = app();
    a.readiness_checks = vec![check(true)];
    let mut svc = services(a, true);
    let p = due_probes(&mut svc, &st, 0.0).remove(0);
    svc.readiness.record(&p, answer(200, "all good"));
    let shown = serde_json::to_value(results_of(&svc, &st, "/web")).unwrap_or_default();
    assert_eq!(
        shown[0]["lastResponse"],
        serde_json::json!({"status": 200, "contentType": "text/plain", "body": "all good"})
    );
    assert_eq!(shown[0]["ready"], true);
    svc.readiness
        .record(&p, ProbeOutcome::Failed("connection refused".into()));
    assert!(results_of(&svc, &st, "/web")[0].ready, "stays ready");

    // Without a deployment the app shows none.
    svc.deployments.clear();
    assert!(results_of(&svc, &st, "/web").is_empty());
}

#[test]
fn ended_tasks_are_forgotten() {
    let st = cluster(vec![task("new", "v2", TaskState::TaskRunning)]);
    let mut svc = services(app(), true);
    let p = due_probes(&mut svc, &st, 0.0).remove(0);
    let ended = cluster(vec![task("new", "v2", TaskState::TaskKilled)]);
    svc.readiness.retain_live(&ended);
    assert!(
        !svc.readiness.record(&p, answer(200, "")),
        "a probe that answers after its task ended is dropped"
    );
    assert!(svc.readiness.result(&p.task_id).is_none());
}

#[test]
fn a_new_task_counts_as_ready_only_once_its_check_passed() {
    let st = cluster(vec![
        task("new", "v2", TaskState::TaskRunning),
        task("old", "v1", TaskState::TaskRunning),
    ]);
    let mut svc = services(app(), true);
    let tasks: Vec<&TaskRecord> = st.tasks().values().collect();
    let expect = |new_ready, new_unready| Census {
        old_ready: 1,
        old_unready: 0,
        new_ready,
        new_unready,
    };
    assert_eq!(census(&svc, "/web", &tasks), expect(0, 1));
    let p = due_probes(&mut svc, &st, 0.0).remove(0);
    svc.readiness.record(&p, answer(200, ""));
    assert_eq!(census(&svc, "/web", &tasks), expect(1, 0));

    // Without a readiness check, running is enough.
    let mut a = app();
    a.readiness_checks.clear();
    let svc = services(a, true);
    assert_eq!(census(&svc, "/web", &tasks), expect(1, 0));
}
