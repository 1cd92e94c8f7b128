//! Whole-cluster tests of the first API cut: Marathon error bodies for bad input (and nothing
//! stored), an app too large for any agent waiting with its reason, and the Mesos endpoints.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

async fn assert_nothing_stored(c: &Cluster) {
    let apps = c.get("/v2/apps").await;
    assert_eq!(apps["apps"], json!([]), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_marathon_errors_and_stores_nothing() {
    let c = Cluster::new();
    eventually(Duration::from_secs(10), "the master", || async {
        c.try_get("/version").await.map(|_| ())
    })
    .await;

    let (s, b) = c.post("/v2/apps", "{\"id\": \"x\", ").await;
    assert_eq!(s, 400);
    assert_eq!(b["message"], "Invalid JSON");
    assert!(b["details"].is_string(), "{b}");

    let (s, b) = c
        .post("/v2/apps", r#"{"id": "x", "cmd": "true", "cpus": "lots"}"#)
        .await;
    assert_eq!(s, 422);
    assert_eq!(b["message"], "Invalid JSON");
    assert_eq!(b["details"][0]["path"], "/cpus");
    assert_eq!(b["details"][0]["errors"][0], "error.expected.jsnumber");

    let (s, b) = c
        .post("/v2/apps", r#"{"id": "Bad_Id!", "cmd": "true"}"#)
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["details"][0]["path"], "/id");

    for (field, value) in [("cpus", -1.0), ("mem", -5.0), ("instances", -2.0)] {
        let body = json!({"id": "neg", "cmd": "true", field: value});
        let (s, b) = c.post("/v2/apps", &body.to_string()).await;
        assert_eq!(s, 422, "{field}: {b}");
        assert_eq!(b["details"][0]["path"], format!("/{field}"), "{b}");
    }
    assert_nothing_stored(&c).await;

    let (s, _) = c
        .post("/v2/apps", r#"{"id": "dup", "cmd": "sleep 1"}"#)
        .await;
    assert_eq!(s, 201);
    let (s, b) = c
        .post("/v2/apps", r#"{"id": "dup", "cmd": "sleep 1"}"#)
        .await;
    assert_eq!(s, 409);
    assert_eq!(b["message"], "An app with id [/dup] already exists.");
    let missing = c.get("/v2/apps/nope").await;
    assert_eq!(missing["message"], "App '/nope' does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_larger_than_any_agent_waits_and_says_why() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:1;mem:256;disk:100;ports:[31000-31010]");
    c.wait_agents(1).await;
    let app =
        json!({"id": "/huge", "cmd": "sleep 100", "cpus": 8, "mem": 64, "env": c.marker_env()});
    let (s, b) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "accepted: an agent may join later: {b}");
    let reason = eventually(Duration::from_secs(10), "the queue to say why", || async {
        let q = c.get("/v2/queue").await;
        let item = q["queue"]
            .as_array()?
            .iter()
            .find(|i| i["app"]["id"] == "/huge")?
            .clone();
        item["processedOffersSummary"]["rejectSummaryLastOffers"][0]["reason"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    assert!(
        reason.contains("cpus"),
        "the reason names the resource: {reason}"
    );
    assert_eq!(c.tasks("huge").await.len(), 0);

    // A big enough agent joins: the app runs.
    c.start_agent(1, "cpus:10;mem:1024;disk:100;ports:[31000-31010]");
    c.wait_running("huge", 1).await;
    let q: Value = c.get("/v2/queue").await;
    assert_eq!(q["queue"], json!([]), "nothing waits any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_endpoints_have_the_shapes_clients_read() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:512;disk:100;ports:[31000-31010]");
    c.wait_agents(1).await;
    let v = c.get("/version").await;
    let version = v["version"].as_str().expect("a version");
    assert!(
        version.split('.').all(|n| n.parse::<u32>().is_ok()),
        "numeric, as pymesos parses it: {version}"
    );
    let state = c.get("/master/state").await;
    assert_eq!(c.get("/state.json").await["id"], state["id"]);
    assert!(state["leader"]
        .as_str()
        .is_some_and(|l| l.starts_with("master@")));
    let agent = &state["slaves"][0];
    assert!(agent["pid"]
        .as_str()
        .is_some_and(|p| p.starts_with("slave(1)@127.0.0.1:")));
    assert_eq!(agent["resources"]["ports"], "[31000-31010]");
    for k in ["cpus", "mem", "disk", "gpus"] {
        assert!(agent["resources"][k].is_number(), "{k} always present");
    }
    let m = c.get("/metrics/snapshot").await;
    assert_eq!(m["master/slaves_active"], 1.0);
    assert_eq!(m["master/cpus_total"], 2.0);
    let health = reqwest::get(format!("{}/health", c.url()))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    // The agent's own /state.
    let agent_state = eventually(Duration::from_secs(5), "agent /state", || async {
        let port = u16::try_from(state["slaves"][0]["port"].as_u64()?).ok()?;
        c.agent_get(port, "/state")
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()
    })
    .await;
    assert_eq!(agent_state["id"], state["slaves"][0]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_tasks_replaces_them_or_scales_the_app_down() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:512;disk:100;ports:[31000-31010]");
    c.wait_agents(1).await;
    let app = json!({"id": "/k", "cmd": "sleep 3600", "instances": 3, "cpus": 0.1, "mem": 16,
                     "env": c.marker_env()});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let tasks = c.wait_running("k", 3).await;
    // A kill with scale=true is a deployment: it waits until the create's deployment has ended
    // (else 409, the app is locked), as on Marathon.
    eventually(
        Duration::from_secs(20),
        "the create deployment to end",
        || async { (c.get("/v2/deployments").await == json!([])).then_some(()) },
    )
    .await;
    let delete = |path: String| {
        let req = c.request(reqwest::Method::DELETE, &path);
        async move {
            let r = req.send().await.expect("DELETE");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // One task with scale=true: a deployment result, and the app shrinks to 2.
    let victim = tasks[0]["id"].as_str().expect("id").to_string();
    let (s, b) = delete(format!("/v2/apps/k/tasks/{victim}?scale=True")).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["deploymentId"].is_string(), "{b}");
    assert_eq!(c.get("/v2/apps/k").await["app"]["instances"], 2);
    let left = c.wait_running("k", 2).await;
    assert!(left.iter().all(|t| t["id"] != victim.as_str()));

    // All tasks without scale: they are listed as killed and replaced.
    let (s, b) = delete("/v2/apps/k/tasks".into()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tasks"].as_array().map(Vec::len), Some(2), "{b}");
    let replaced = eventually(Duration::from_secs(20), "replacements", || async {
        let t = c.tasks("k").await;
        let fresh = t.iter().all(|t| left.iter().all(|l| l["id"] != t["id"]));
        (t.len() == 2 && fresh && t.iter().all(|t| t["state"] == "TASK_RUNNING")).then_some(t)
    })
    .await;
    assert_eq!(replaced.len(), 2);

    let (s, b) = delete("/v2/apps/k/tasks?scale=true&wipe=true".into()).await;
    assert_eq!(s, 400);
    assert_eq!(
        b["message"],
        "You cannot use scale and wipe at the same time."
    );
    let (s, b) = delete("/v2/apps/k/tasks/k.instance-nope._app.1".into()).await;
    assert_eq!(s, 404);
    assert_eq!(b["message"], "Task 'k.instance-nope._app.1' does not exist");
    let (s, _) = delete("/v2/apps/nope/tasks".into()).await;
    assert_eq!(s, 404);
}
