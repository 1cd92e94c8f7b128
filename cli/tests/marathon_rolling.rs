//! Whole-cluster tests of deployments that wait for their tasks: an app's `deployments` list
//! empties only once its tasks run, and a rolling upgrade of 10 instances with
//! minimumHealthCapacity 0.5 never has fewer than 5 running (sampled every 100 ms), also across a
//! master `kill -9` in the middle, after which the same plan resumes.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{eventually, Cluster};

async fn put(c: &Cluster, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .request(Method::PUT, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("PUT reaches the master");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_listed_until_all_its_tasks_run() {
    let mut c = Cluster::unstarted();
    c.tolerate_missed_heartbeats(40);
    c.start_master();
    // Room for 3 of the 5 instances: the rest wait for a second agent.
    c.start_agent(0, "cpus:0.3;mem:1024;disk:1000;ports:[31000-31100]");
    c.wait_agents(1).await;
    let app = json!({"id": "/five", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 5,
        "env": c.marker_env()});
    let (s, b) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{b}");
    let dep = b["deployments"][0]["id"].clone();
    let three = eventually(Duration::from_secs(20), "3 running", || async {
        let a = c.get("/v2/apps/five").await["app"].clone();
        (a["tasksRunning"] == 3).then_some(a)
    })
    .await;
    assert_eq!(
        three["deployments"],
        json!([{ "id": dep }]),
        "still deploying: {three}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = c.get("/v2/apps/five").await["app"].clone();
    assert_eq!(
        still["deployments"],
        json!([{ "id": dep }]),
        "still deploying: {still}"
    );
    assert_eq!(c.get("/v2/deployments").await[0]["id"], dep);

    c.start_agent(1, "cpus:1;mem:1024;disk:1000;ports:[31200-31300]");
    // Every answer either lists the deployment or has all five running.
    let done = eventually(Duration::from_secs(30), "the deployment to end", || async {
        let a = c.get("/v2/apps/five").await["app"].clone();
        let running = a["tasks"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").count())
            .unwrap_or(0);
        if a["deployments"] == json!([]) {
            assert_eq!(running, 5, "the deployment ended before its tasks ran: {a}");
            return Some(a);
        }
        None
    })
    .await;
    assert_eq!(done["tasksRunning"], 5);
    assert_eq!(c.get("/v2/deployments").await, json!([]));
}

/// Running tasks of `/roll` now: (all, of `version`); `None` when the master does not answer.
async fn running(c: &Cluster, version: &str) -> Option<(usize, usize)> {
    let t = c.try_get("/v2/apps/roll/tasks").await?;
    let t = t["tasks"].as_array()?.clone();
    let run: Vec<&Value> = t.iter().filter(|t| t["state"] == "TASK_RUNNING").collect();
    let new = run.iter().filter(|t| t["version"] == version).count();
    Some((run.len(), new))
}

/// Upgrades 10 instances with minimumHealthCapacity 0.5 and maximumOverCapacity 0, sampling the
/// running count every 100 ms; with `crash`, the master is killed (-9) right after the upgrade is
/// accepted and started again, and the same deployment must be listed and finish.
async fn rolling_upgrade(crash: bool) {
    let mut c = Cluster::unstarted();
    c.tolerate_missed_heartbeats(40);
    c.start_master();
    c.start_agent(0, "cpus:4;mem:2048;disk:1000;ports:[31000-31100]");
    c.wait_agents(1).await;
    // Each task turns healthy 4 s after it starts, so the upgrade (two batches of five) takes at
    // least 8 s: long enough that the plan is still running when the master comes back from a
    // kill, however fast tasks start (without a check they count healthy as soon as they run,
    // and the upgrade could end before the kill).
    let app = json!({"id": "/roll", "cmd": "sleep 4 && touch ready && exec sleep 3600",
        "cpus": 0.1, "mem": 16, "instances": 10,
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "test -f ready"},
            "gracePeriodSeconds": 120, "intervalSeconds": 1, "maxConsecutiveFailures": 3}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
        "env": c.marker_env()});
    let (s, b) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{b}");
    c.wait_running("roll", 10).await;
    eventually(
        Duration::from_secs(20),
        "the create deployment to end",
        || async { (c.get("/v2/deployments").await == json!([])).then_some(()) },
    )
    .await;

    let mut env = c.marker_env();
    env["VERSION"] = json!("2");
    let (s, b) = put(&c, "/v2/apps/roll", json!({ "env": env })).await;
    assert_eq!(s, 200, "{b}");
    let dep = b["deploymentId"].as_str().unwrap_or_default().to_string();
    let version = b["version"].as_str().unwrap_or_default().to_string();
    let listed = c.get("/v2/deployments").await;
    assert_eq!(listed[0]["id"], dep.as_str(), "{listed}");
    assert_eq!(
        listed[0]["steps"][0]["actions"][0]["action"],
        "RestartApplication"
    );
    if crash {
        c.kill_master();
        c.start_master();
        c.wait_agents(1).await;
        let again = c.get("/v2/deployments").await;
        assert_eq!(
            again[0]["id"],
            dep.as_str(),
            "the same plan after the restart: {again}"
        );
    }
    let start = Instant::now();
    let mut lowest = usize::MAX;
    let mut samples = 0;
    loop {
        if let Some((all, new)) = running(&c, &version).await {
            samples += 1;
            lowest = lowest.min(all);
            assert!(
                all >= 5,
                "{all} running during the upgrade (sample {samples}): {:?}\n{}",
                c.tasks("roll")
                    .await
                    .iter()
                    .map(|t| (t["state"].clone(), t["version"].clone()))
                    .collect::<Vec<_>>(),
                c.log_tails(60)
            );
            let deploying = c.get("/v2/deployments").await != json!([]);
            if new == 10 && all == 10 && !deploying {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the upgrade did not finish: {:?}\n{}",
            running(&c, &version).await,
            c.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lowest >= 5 && samples > 0,
        "lowest {lowest} over {samples} samples"
    );
    let tasks = c.wait_running("roll", 10).await;
    assert!(tasks.iter().all(|t| t["version"] == version.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_keeps_minimum_health_capacity() {
    rolling_upgrade(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_resumes_the_same_plan_after_a_master_kill_9() {
    rolling_upgrade(true).await;
}
