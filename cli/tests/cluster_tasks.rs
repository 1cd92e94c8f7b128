//! Whole-cluster tests of what a task sees and how it ends: the Mesos/Marathon environment, exit
//! codes turned into TASK_FINISHED / TASK_FAILED, and SIGTERM then SIGKILL after the grace period.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:512;disk:100;ports:[31000-31010]";

fn completed(state: &Value, app: &str) -> Vec<Value> {
    state["frameworks"][0]["completed_tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["id"].as_str().is_some_and(|id| id.starts_with(app)))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_its_environment_and_ports() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let app = json!({"id": "/envy", "cmd": "env > $MESOS_SANDBOX/env; exec sleep 3600",
                     "cpus": 0.1, "mem": 16, "env": c.marker_env(), "labels": {"team": "hpc"},
                     "portDefinitions": [{"port": 0}, {"port": 0}]});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = c.wait_running("envy", 1).await.remove(0);
    let id = task["id"].as_str().expect("id").to_string();
    let env_file = c.sandbox(0, &id).join("env");
    let env = eventually(Duration::from_secs(10), "the task's env file", || async {
        std::fs::read_to_string(&env_file)
            .ok()
            .filter(|e| e.contains("PORTS="))
    })
    .await;
    let var = |k: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} is set: {env}"))
            .to_string()
    };
    assert_eq!(var("MESOS_TASK_ID"), id);
    assert_eq!(
        var("MESOS_SANDBOX"),
        c.sandbox(0, &id).display().to_string()
    );
    assert_eq!(var("HOST"), "127.0.0.1");
    let ports: Vec<u64> = task["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(var("PORT0"), ports[0].to_string());
    assert_eq!(var("PORT1"), ports[1].to_string());
    assert_eq!(var("PORT"), ports[0].to_string());
    assert_eq!(var("PORTS"), format!("{},{}", ports[0], ports[1]));
    assert_eq!(var("MARATHON_APP_ID"), "/envy");
    assert_eq!(var("MARATHON_APP_LABEL_TEAM"), "hpc");
    assert!(
        !env.contains("GANTRY_TOKEN") && !env.contains(&c.token),
        "the join token stays with the agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_become_finished_or_failed_with_a_message() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    for (id, cmd) in [("/ok", "exit 0"), ("/bad", "exit 3")] {
        let app = json!({"id": id, "cmd": cmd, "cpus": 0.1, "mem": 16, "backoffSeconds": 3600});
        assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    }
    let state = eventually(Duration::from_secs(20), "both tasks to end", || async {
        let s = c.get("/master/state").await;
        (!completed(&s, "ok.").is_empty() && !completed(&s, "bad.").is_empty()).then_some(s)
    })
    .await;
    assert_eq!(completed(&state, "ok.")[0]["state"], "TASK_FINISHED");
    assert_eq!(completed(&state, "bad.")[0]["state"], "TASK_FAILED");
    let app = c.get("/v2/apps/bad").await;
    assert_eq!(
        app["app"]["lastTaskFailure"]["message"],
        "Command exited with status 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_ignoring_sigterm_is_killed_after_its_grace_period() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    // The shell and its sleep ignore SIGTERM; a grandchild does too.
    let cmd = "trap '' TERM; (sleep 3600 & wait) & sleep 3600";
    let app = json!({"id": "/stubborn", "cmd": cmd, "cpus": 0.1, "mem": 16,
                     "env": c.marker_env(), "taskKillGracePeriodSeconds": 1});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    c.wait_running("stubborn", 1).await;
    eventually(Duration::from_secs(10), "the task's processes", || async {
        (c.task_processes().len() == 2).then_some(())
    })
    .await;
    let deleted = Instant::now();
    let r = c
        .request(reqwest::Method::DELETE, "/v2/apps/stubborn")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    eventually(
        Duration::from_secs(15),
        "every process of the task to be gone",
        || async { c.task_processes().is_empty().then_some(()) },
    )
    .await;
    let took = deleted.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "SIGTERM alone did not end it: {took:?}"
    );
    let state = eventually(Duration::from_secs(10), "TASK_KILLED", || async {
        let s = c.get("/master/state").await;
        completed(&s, "stubborn.").first().cloned()
    })
    .await;
    assert_eq!(state["state"], "TASK_KILLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_each_tasks_usage_to_the_master() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let app = json!({"id": "/busy", "cmd": "while :; do :; done", "cpus": 0.5, "mem": 16,
                     "env": c.marker_env()});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = c.wait_running("busy", 1).await.remove(0);
    let stats = eventually(
        Duration::from_secs(20),
        "usage in /master/state",
        || async {
            let s = c.get("/master/state").await;
            let t = s["frameworks"][0]["tasks"]
                .as_array()?
                .iter()
                .find(|t| t["id"] == task["id"])?
                .clone();
            let user = t["statistics"]["cpus_user_time_secs"].as_f64()?;
            (user > 0.3).then_some(t["statistics"].clone())
        },
    )
    .await;
    assert!(
        stats["timestamp"].as_f64().is_some_and(|ts| ts > 1e9),
        "{stats}"
    );
    assert!(
        stats["mem_rss_bytes"].as_u64().is_some_and(|m| m > 0),
        "{stats}"
    );
    // The shell loop is killed with the app (it carries no marker in its command line).
    let r = c
        .request(reqwest::Method::DELETE, "/v2/apps/busy")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
}
