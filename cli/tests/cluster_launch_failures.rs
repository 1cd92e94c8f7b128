//! Whole-cluster tests of what a user sees when instances do not run: a task that cannot start
//! (its program missing) fails with the init's own words in `lastTaskFailure`, and its relaunches
//! back off; the seed's Docker app, with no agent running Docker, is never launched and the queue,
//! the app's `waiting` and `gantry apps list` say exactly what is missing; `DELETE
//! /v2/queue/{app}/delay` ends a launch delay at once.

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:1024;disk:1000;ports:[31000-31099]";

/// The seed's simple-nginx app, verbatim.
const SIMPLE_NGINX: &str = r#"{
  "id": "simple-nginx",
  "instances": 1,
  "cpus": 0.25,
  "mem": 64,
  "container": {
    "type": "DOCKER",
    "docker": {
      "image": "nginx:1.11",
      "network": "BRIDGE",
      "portMappings": [
        {
          "containerPort": 80,
          "hostPort": 0
        }
      ]
    }
  }
}"#;

/// The row of `app` in `gantry apps list` (the table's whole text when there is none).
fn apps_list_row(c: &Cluster, app: &str) -> String {
    let list = c
        .cli()
        .args(["apps", "list"])
        .output()
        .expect("gantry apps list");
    let out = String::from_utf8_lossy(&list.stdout).into_owned();
    let prefix = format!("{app} ");
    out.lines()
        .find(|l| l.starts_with(&prefix))
        .map(String::from)
        .unwrap_or(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_cannot_start_says_why_and_backs_off() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (native containers)"
    );
    let mut c = Cluster::new();
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the test dir");
    let token = c.token.clone();
    c.start_agent_with(0, AGENT, &token, &["--containerizer", "native"], &[]);
    c.wait_agents(1).await;
    let app = json!({"id": "/noprog", "args": ["/no/such/program", "x"], "env": c.marker_env(),
                     "cpus": 0.1, "mem": 32, "backoffSeconds": 1, "backoffFactor": 2.0});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);

    let failure = eventually(Duration::from_secs(30), "a lastTaskFailure", || async {
        let f = c.get("/v2/apps/noprog").await["app"]["lastTaskFailure"].clone();
        f.is_object().then_some(f)
    })
    .await;
    let msg = failure["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("could not start") && msg.contains("/no/such/program"),
        "lastTaskFailure carries the init's error, not an exit code: {msg}"
    );
    assert!(msg.contains("No such file or directory"), "{msg}");

    // Backoff: 1 s, 2 s, 4 s, ... so the queue shows a delay and few launches happen.
    let item = eventually(
        Duration::from_secs(20),
        "the app delayed in the queue",
        || async {
            let q = c.get("/v2/queue").await;
            q["queue"]
                .as_array()?
                .iter()
                .find(|i| {
                    i["app"]["id"] == "/noprog" && i["delay"]["timeLeftSeconds"].as_i64() > Some(0)
                })
                .cloned()
        },
    )
    .await;
    assert_eq!(item["count"], 1, "one instance missing: {item}");
    assert_eq!(item["delay"]["overdue"], false);
    assert!(
        item["app"]["lastTaskFailure"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not start")),
        "the queue entry shows why: {item}"
    );
    let waiting = c.get("/v2/apps/noprog?embed=app.waiting").await["app"]["waiting"].clone();
    assert!(
        waiting["lastFailureMessage"]
            .as_str()
            .is_some_and(|m| m.contains("/no/such/program")),
        "{waiting}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let launched = c.get("/metrics/snapshot").await["master/messages_launch_tasks"]
        .as_f64()
        .unwrap_or(f64::MAX);
    // Without backoff a failing task is relaunched every controller run (several a second).
    assert!(
        launched <= 5.0,
        "relaunches back off (1+2+4 s): {launched} launches in ~8 s"
    );
    let row = apps_list_row(&c, "/noprog");
    assert!(
        row.contains("could not start") || row.contains("launch delayed"),
        "gantry apps list says why: {row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_app_without_a_docker_containerizer_waits_and_says_why() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let (code, body) = c.post("/v2/apps", SIMPLE_NGINX).await;
    assert_eq!(code, 201, "the seed app is accepted: {body}");

    let item: Value = eventually(Duration::from_secs(10), "the queue to say why", || async {
        let q = c.get("/v2/queue").await;
        q["queue"]
            .as_array()?
            .iter()
            .find(|i| i["app"]["id"] == "/simple-nginx")
            .cloned()
    })
    .await;
    let reason = item["processedOffersSummary"]["rejectSummaryLastOffers"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("Docker containerizer") && reason.contains("agents here run: process"),
        "the reason names what is missing and what agents offer: {reason}"
    );
    assert_eq!(item["count"], 1, "{item}");
    let waiting = c.get("/v2/apps/simple-nginx?embed=app.waiting").await["app"]["waiting"].clone();
    assert_eq!(waiting["reason"], reason.as_str(), "{waiting}");
    assert!(
        c.get("/v2/apps/simple-nginx").await["app"]
            .get("waiting")
            .is_none(),
        "strict clients never see the extension unasked"
    );

    // Never launched: no task, no launch, no failure, however long it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(c.tasks("simple-nginx").await.is_empty());
    let m = c.get("/metrics/snapshot").await;
    assert_eq!(m["master/messages_launch_tasks"], 0.0, "{m}");
    assert!(c.get("/v2/apps/simple-nginx").await["app"]["lastTaskFailure"].is_null());

    let row = apps_list_row(&c, "/simple-nginx");
    assert!(
        row.contains("image nginx:1.11") && row.contains("Docker containerizer"),
        "gantry apps list shows the image and why it waits: {row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_delay_resets_on_request() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let launches = || async {
        c.get("/metrics/snapshot").await["master/messages_launch_tasks"]
            .as_f64()
            .unwrap_or(0.0)
    };
    // A 10-minute backoff after the first failure.
    let app = json!({"id": "/flaky", "cmd": "exit 3", "env": c.marker_env(), "cpus": 0.1,
                     "mem": 32, "backoffSeconds": 600});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    eventually(
        Duration::from_secs(30),
        "the app delayed in the queue",
        || async {
            let q = c.get("/v2/queue").await;
            q["queue"].as_array()?.iter().find(|i| {
                i["app"]["id"] == "/flaky" && i["delay"]["timeLeftSeconds"].as_i64() > Some(60)
            })?;
            Some(())
        },
    )
    .await;
    let before = launches().await;
    let r = c
        .request(reqwest::Method::DELETE, "/v2/queue//flaky/delay")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 204);
    eventually(
        Duration::from_secs(30),
        "a launch right after the reset",
        || async { (launches().await > before).then_some(()) },
    )
    .await;
    let r = c
        .request(reqwest::Method::DELETE, "/v2/queue/nothing-here/delay")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(
        body["message"],
        "Application /nothing-here not found in tasks queue."
    );
}
