//! The typed views of `api::marathon::views` against the `serde_json::Value` rendering they
//! replaced (`benches/support/value_render.rs`): a varied state (health checks with results,
//! service ports, staging and unhealthy tasks, IP and named hosts, an unknown agent,
//! lastTaskFailure of both kinds, deployments, waiting and delayed apps, GPU readings) rendered
//! both ways must parse to equal JSON, for every embed of `GET /v2/apps`, for Tasks and for the
//! timestamps.

#[path = "../benches/support/value_render.rs"]
mod value_render;

use gantry_masterd::api::marathon::render::{self, iso};
use gantry_masterd::api::marathon::views::{Embeds, Iso, Renderer};
use gantry_masterd::cluster::AgentEntry;
use gantry_masterd::services::app_definition::AppDefinition;
use gantry_masterd::services::deployments::plan::ChangeKind;
use gantry_masterd::services::deployments::DeploymentPlan;
use gantry_masterd::services::launch::{new_task_id, task_info};
use gantry_masterd::services::state::{LaunchDelay, Waiting};
use gantry_masterd::state::MasterState;
use gantry_masterd::store::records::{AgentLifecycle, AgentRecord, TaskOwner, TaskRecord};
use gantry_proto::{AgentId, AgentInfo, GpuUsage, HealthResult, TaskState, TaskStatus, TaskUsage};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NOW: f64 = 1_764_680_000.25;

fn app(json: Value) -> AppDefinition {
    AppDefinition::parse(json.to_string().as_bytes()).expect("a valid app")
}

fn add_agent(st: &mut MasterState, id: &str, hostname: &str) {
    let id = AgentId(id.into());
    let record = AgentRecord {
        id: id.clone(),
        info: AgentInfo {
            hostname: hostname.into(),
            ..AgentInfo::default()
        },
        lifecycle: AgentLifecycle::Active,
        registered_at: 0.0,
        reregistered_at: None,
        unreachable_since: None,
    };
    st.cluster
        .agents
        .insert(id, AgentEntry::new(record, None, false));
}

fn record(
    app: &AppDefinition,
    agent: &str,
    state: TaskState,
    health: Vec<HealthResult>,
) -> TaskRecord {
    let info = task_info(
        app,
        new_task_id(&app.id),
        AgentId(agent.into()),
        vec![31000, 31001],
        None,
    );
    TaskRecord {
        info,
        owner: TaskOwner::App {
            id: app.id.clone(),
            version: app.version.clone(),
        },
        state,
        status: None,
        last_seq: 1,
        staged_at: NOW - 100.123,
        started_at: (state == TaskState::TaskRunning).then_some(NOW - 90.5),
        unreachable_since: None,
        expunged: false,
        kill_requested: false,
        health,
    }
}

fn alive() -> HealthResult {
    HealthResult {
        alive: true,
        consecutive_failures: 0,
        first_success: Some(NOW - 80.0),
        last_success: Some(NOW - 1.0),
        ..HealthResult::default()
    }
}

fn failing(n: u32) -> HealthResult {
    HealthResult {
        alive: false,
        consecutive_failures: n,
        first_success: None,
        last_success: Some(NOW - 30.0),
        last_failure: Some(NOW - 2.0),
        last_failure_cause: Some("HTTP 500 Internal Server Error".into()),
    }
}

fn status(t: &TaskRecord, state: TaskState, message: Option<&str>) -> TaskStatus {
    let mut s = TaskStatus::new(t.info.task_id.clone(), Some(t.info.agent_id.clone()), state);
    s.message = message.map(String::from);
    s.timestamp = NOW - 5.5;
    s
}

/// Five apps on an IPv4, an IPv6 and a named host (and one task on an agent the master does not
/// know), with everything an AppInfo or Task can show.
fn varied_state() -> MasterState {
    let mut st = MasterState::default();
    add_agent(&mut st, "agent-0", "10.0.0.5");
    add_agent(&mut st, "agent-1", "fe80::1");
    add_agent(&mut st, "agent-2", "node2.example");

    let web = app(json!({
        "id": "/prod/web", "cmd": "python3 -m http.server $PORT0", "instances": 5,
        "cpus": 0.5, "mem": 128.5, "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 10050, "protocol": "udp"}],
        "healthChecks": [
            {"protocol": "HTTP", "path": "/", "portIndex": 0, "maxConsecutiveFailures": 3},
            {"protocol": "TCP", "portIndex": 1}
        ],
        "env": {"A": "1"}, "constraints": [["hostname", "UNIQUE"]]
    }));
    let mut web = web;
    web.port_definitions[0].port = 10001;
    let db = app(json!({"id": "/db/postgres", "cmd": "postgres", "instances": 2, "mem": 1024}));
    let gpu = app(json!({"id": "/gpu/train", "cmd": "train.py", "gpus": 2, "instances": 2}));
    let empty = app(json!({"id": "/empty", "cmd": "sleep 1", "instances": 3}));
    let docker = app(json!({
        "id": "/bridge", "instances": 1, "container": {"type": "DOCKER", "docker": {
            "image": "nginx", "network": "BRIDGE",
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}}
    }));

    let tasks = vec![
        record(
            &web,
            "agent-0",
            TaskState::TaskRunning,
            vec![alive(), alive()],
        ),
        record(
            &web,
            "agent-1",
            TaskState::TaskRunning,
            vec![failing(2), alive()],
        ),
        record(
            &web,
            "agent-2",
            TaskState::TaskRunning,
            vec![alive(), HealthResult::default()],
        ),
        record(&web, "agent-2", TaskState::TaskStaging, Vec::new()),
        record(
            &web,
            "agent-x",
            TaskState::TaskStarting,
            vec![HealthResult::default()],
        ),
        record(&db, "agent-0", TaskState::TaskRunning, Vec::new()),
        record(&gpu, "agent-1", TaskState::TaskRunning, Vec::new()),
        record(&gpu, "agent-2", TaskState::TaskRunning, Vec::new()),
        record(&docker, "agent-0", TaskState::TaskKilling, Vec::new()),
    ];
    let gpu_task = tasks[6].info.task_id.clone();
    for t in tasks {
        st.cluster.put_task(t);
    }
    st.cluster.usage.insert(
        gpu_task.clone(),
        TaskUsage {
            task_id: gpu_task,
            gpu_usage: vec![
                GpuUsage {
                    uuid: "GPU-a".into(),
                    index: 0,
                    timestamp: NOW - 0.75,
                    gpu_util_percent: Some(87.5),
                    memory_util_percent: Some(0.1),
                    memory_used_bytes: Some(5 << 30),
                    memory_total_bytes: Some(16 << 30),
                    power_watts: Some(250.0),
                    temperature_celsius: Some(71.0),
                    xid_events: 2,
                    xids: vec![13, 31],
                },
                GpuUsage {
                    uuid: "GPU-b".into(),
                    index: 3,
                    timestamp: NOW,
                    ..GpuUsage::default()
                },
            ],
            ..TaskUsage::default()
        },
    );

    // Completed: /prod/web's latest failure is a health kill, /db/postgres's a TASK_FAILED with
    // a message (an older one without); a job's failure and a finished task count for no app.
    let mut killed = record(
        &web,
        "agent-1",
        TaskState::TaskKilled,
        vec![failing(3), alive()],
    );
    killed.status = Some(status(&killed, TaskState::TaskKilled, Some("killed")));
    let mut old_failure = record(&db, "agent-2", TaskState::TaskFailed, Vec::new());
    old_failure.status = Some(status(&old_failure, TaskState::TaskFailed, None));
    let mut failed = record(&db, "agent-0", TaskState::TaskFailed, Vec::new());
    failed.status = Some(status(
        &failed,
        TaskState::TaskFailed,
        Some("exited with status 1"),
    ));
    let finished = record(&web, "agent-0", TaskState::TaskFinished, Vec::new());
    let mut no_status = record(&empty, "agent-x", TaskState::TaskFailed, Vec::new());
    no_status.staged_at = NOW - 7.0;
    let mut job = record(&web, "agent-0", TaskState::TaskFailed, Vec::new());
    job.owner = TaskOwner::JobRun {
        job: "nightly".into(),
        run: 7,
    };
    st.cluster
        .completed
        .extend([old_failure, killed, failed, finished, no_status, job]);

    st.services.deployments.insert(
        "dep-1".into(),
        DeploymentPlan::new(
            "dep-1".into(),
            "2026-12-02T10:00:00.000Z".into(),
            &[
                ("/db/postgres".into(), ChangeKind::Scale),
                ("/prod/web".into(), ChangeKind::Restart),
            ],
            BTreeMap::new(),
            &BTreeMap::new(),
        ),
    );
    st.services.deployments.insert(
        "dep-2".into(),
        DeploymentPlan::new(
            "dep-2".into(),
            "2026-12-02T10:01:00.000Z".into(),
            &[("/db/postgres".into(), ChangeKind::Scale)],
            BTreeMap::new(),
            &BTreeMap::new(),
        ),
    );
    st.services.waiting.insert(
        "/gpu/train".into(),
        Waiting {
            since: NOW - 60.0,
            reason: "no agent offers 2 GPUs on one NUMA node".into(),
            count: 1,
        },
    );
    let far = LaunchDelay {
        delay_secs: 3600.0,
        until: gantry_proto::time::now_secs() + 3600.0,
    };
    st.services
        .launch_delays
        .insert("/empty".into(), far.clone());
    st.services.launch_delays.insert("/db/postgres".into(), far);
    for a in [web, db, gpu, empty, docker] {
        st.services.apps.insert(a.id.clone(), a);
    }
    st
}

fn parsed(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

#[test]
fn apps_list_is_the_same_json_for_every_embed() {
    let st = varied_state();
    let now = gantry_proto::time::now_secs();
    for tasks in [false, true] {
        for waiting in [false, true] {
            for gpu_usage in [false, true] {
                let embeds = Embeds {
                    tasks,
                    waiting,
                    gpu_usage,
                    ..Embeds::default()
                };
                let typed = Renderer::new(&st, embeds)
                    .apps_body(st.services.apps.values())
                    .expect("rendered");
                let reference = value_render::apps_body(&st, tasks, waiting, gpu_usage, now);
                assert_eq!(
                    parsed(&typed),
                    parsed(&reference),
                    "embeds tasks={tasks} waiting={waiting} gpuUsage={gpu_usage}"
                );
            }
        }
    }
}

#[test]
fn the_state_shows_what_it_should() {
    // The comparison above means something only if the state has all of it.
    let st = varied_state();
    let embeds = Embeds {
        tasks: true,
        waiting: true,
        gpu_usage: true,
        ..Embeds::default()
    };
    let body = parsed(
        &Renderer::new(&st, embeds)
            .apps_body(st.services.apps.values())
            .expect("rendered"),
    );
    let apps: BTreeMap<String, Value> = body["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| (a["id"].as_str().unwrap_or_default().to_owned(), a.clone()))
        .collect();
    let web = &apps["/prod/web"];
    assert_eq!(web["tasksHealthy"], 1);
    assert_eq!(web["tasksUnhealthy"], 1);
    assert_eq!(web["tasksStaged"], 2);
    assert_eq!(web["deployments"], json!([{"id": "dep-1"}]));
    assert_eq!(
        web["lastTaskFailure"]["message"],
        "Task was killed since health check failed. Reason: HTTP 500 Internal Server Error"
    );
    assert!(web["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .any(|t| t["healthCheckResults"]
            .as_array()
            .is_some_and(|r| r.len() == 2)));
    assert!(web["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .any(|t| t["ipAddresses"] == json!([{"ipAddress": "fe80::1", "protocol": "IPv6"}])));
    let db = &apps["/db/postgres"];
    assert_eq!(db["lastTaskFailure"]["message"], "exited with status 1");
    assert_eq!(db["deployments"], json!([{"id": "dep-1"}, {"id": "dep-2"}]));
    assert!(db["waiting"]["delay"]["timeLeftSeconds"].is_i64());
    assert_eq!(apps["/gpu/train"]["waiting"]["count"], 1);
    assert!(apps["/gpu/train"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .any(|t| t["gpuUsage"].as_array().is_some_and(|g| g.len() == 2)));
    assert_eq!(apps["/empty"]["lastTaskFailure"]["message"], "");
    assert!(apps["/bridge"].get("portDefinitions").is_none());
}

#[test]
fn tasks_are_the_same_json_with_and_without_service_ports_and_gpus() {
    let st = varied_state();
    let live: Vec<&TaskRecord> = st.cluster.tasks().values().collect();
    let completed: Vec<&TaskRecord> = st.cluster.completed.iter().collect();
    for service_ports in [false, true] {
        for gpu_usage in [false, true] {
            let embeds = Embeds {
                service_ports,
                gpu_usage,
                ..Embeds::default()
            };
            let r = Renderer::new(&st, embeds);
            for t in live.iter().chain(&completed) {
                let typed = serde_json::to_value(r.task(t)).expect("rendered");
                let mut reference = json!({"tasks": [value_render::task(&st, t, service_ports)]});
                if gpu_usage {
                    value_render::add_gpu_usage(&st, &mut reference);
                }
                assert_eq!(typed, reference["tasks"][0], "task {}", t.info.task_id.0);
            }
        }
    }
}

#[test]
fn app_info_values_and_queue_failures_are_the_same_json() {
    let st = varied_state();
    let r = Renderer::new(&st, Embeds::default());
    for app in st.services.apps.values() {
        for full in [false, true] {
            assert_eq!(
                render::app_info(&st, app, full),
                value_render::app_info(&st, app, full),
                "{} full={full}",
                app.id
            );
        }
        let mut queued = r.app(app);
        queued.last_task_failure = r.last_failure(&app.id);
        let mut reference = value_render::app_info(&st, app, false);
        value_render::add_last_failure(&st, &app.id, &mut reference);
        assert_eq!(
            serde_json::to_value(queued).ok(),
            Some(reference),
            "{}",
            app.id
        );
    }
}

#[test]
fn timestamps_are_the_same_text_as_chrono_writes() {
    let mut secs = vec![
        0.0,
        -0.001,
        -1.5,
        1443194028.343,
        NOW,
        951_782_400.0,       // 2000-02-29
        4_102_444_799.999,   // 2099-12-31T23:59:59.999
        253_402_300_799.999, // 9999-12-31T23:59:59.999
        253_402_300_800.0,   // year 10000: chrono's own text
        -62_167_219_200.0,   // 0000-01-01
        -62_167_219_200.001, // year -1: chrono's own text
        f64::NAN,
        f64::INFINITY,
    ];
    let mut x = 12_345.678_9_f64;
    for _ in 0..20_000 {
        x = (x * 1.000_37 + 7_919.123) % 4_200_000_000.0;
        secs.push(x);
        secs.push(-x / 3.0);
    }
    for s in secs {
        assert_eq!(Iso(s).to_string(), iso(s), "{s}");
        assert_eq!(
            serde_json::to_value(Iso(s)).ok(),
            Some(json!(iso(s))),
            "{s}"
        );
    }
}
