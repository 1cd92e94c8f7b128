//! Whole-cluster tests of app updates: every version stored and listed, PUT (create-or-update,
//! `partialUpdate`, rollback to a version), PATCH as a deep merge, bulk PUT, restart, the
//! deployment headers and bodies, locks (409 naming the deployment, `force`), deployment
//! cancelling, task kills, `/v2/info` and `/v2/leader`, with Marathon's status codes and errors.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

/// Sends `body` with `method`; returns status, headers and the JSON body (`Null` when none).
async fn send(
    c: &Cluster,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = c.request(method, path);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.expect("the master answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Asserts a deployment result: 200, `{"deploymentId","version"}`, the header naming the same id.
fn assert_dr(what: &str, s: u16, h: &reqwest::header::HeaderMap, b: &Value) -> String {
    assert_eq!(s, 200, "{what}: {b}");
    let id = b["deploymentId"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "{what}: {b}");
    assert!(
        b["version"].as_str().is_some_and(|v| v.ends_with('Z')),
        "{what}: {b}"
    );
    assert_eq!(header(h, "Marathon-Deployment-Id"), id, "{what}");
    id
}

async fn versions(c: &Cluster, app: &str) -> Vec<String> {
    c.get(&format!("/v2/apps/{app}/versions")).await["versions"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn no_deployments(c: &Cluster) {
    eventually(Duration::from_secs(30), "no deployment left", || async {
        (c.get("/v2/deployments").await == json!([])).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_put_patch_rollback_and_their_errors() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:4;mem:2048;disk:1000;ports:[31000-31100]");
    c.wait_agents(1).await;
    let app = json!({"id": "/web", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16,
        "instances": 1, "env": c.marker_env(), "labels": {"tier": "front"}});
    let (s, h, b) = send(&c, Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(header(&h, "location"), "/v2/apps/web");
    let dep = header(&h, "Marathon-Deployment-Id").to_string();
    assert_eq!(
        b["deployments"],
        json!([{ "id": dep }]),
        "POST names its deployment"
    );
    c.wait_running("web", 1).await;
    no_deployments(&c).await;
    let v1 = versions(&c, "web").await;
    assert_eq!(v1.len(), 1, "{v1:?}");

    // PUT with partialUpdate (the default): only `instances` changes, a scale.
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/web",
        Some(json!({"instances": 2})),
    )
    .await;
    assert_dr("scale by PUT", s, &h, &b);
    c.wait_running("web", 2).await;
    let app = c.get("/v2/apps/web").await["app"].clone();
    assert_eq!(app["cmd"], "sleep 3600", "fields not in the body are kept");
    assert_eq!(
        app["versionInfo"]["lastConfigChangeAt"], v1[0],
        "a scale keeps lastConfigChangeAt"
    );
    let v2 = versions(&c, "web").await;
    assert_eq!(v2.len(), 2);
    assert_eq!(v2[1], v1[0], "newest first");
    let old = c.get(&format!("/v2/apps/web/versions/{}", v1[0])).await;
    assert_eq!(old["instances"], 1, "the bare app as it was: {old}");
    assert_eq!(old["id"], "/web");
    let (s, _, b) = send(
        &c,
        Method::GET,
        "/v2/apps/web/versions/2001-01-01T00:00:00.000Z",
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        b["message"],
        "App '/web' does not exist in version 2001-01-01T00:00:00.000Z"
    );

    // PATCH merges deeply: the new env key joins the old ones.
    no_deployments(&c).await;
    let (s, h, b) = send(&c, Method::PATCH, "//v2/apps//web", None).await;
    assert!(
        s == 404 || s == 400,
        "a PATCH path with // and no body: {s} {b} {h:?}"
    );
    let (s, h, b) = send(
        &c,
        Method::PATCH,
        "/v2/apps/web",
        Some(json!({"env": {"EXTRA": "1"}, "id": "/elsewhere"})),
    )
    .await;
    assert_dr("PATCH", s, &h, &b);
    let app = c.get("/v2/apps/web").await["app"].clone();
    assert_eq!(app["env"]["EXTRA"], "1");
    assert_eq!(app["env"]["GANTRY_TEST_MARKER"], c.marker, "{app}");
    assert_ne!(
        app["versionInfo"]["lastConfigChangeAt"], v1[0],
        "an env change is a config change"
    );
    assert!(
        c.get("/v2/apps/elsewhere").await["app"].is_null(),
        "the body's id is ignored"
    );
    let (s, _, b) = send(
        &c,
        Method::PATCH,
        "/v2/apps/nope",
        Some(json!({"instances": 3})),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(b["message"], "App '/nope' does not exist");

    // The deployment of that change is listed until its new tasks run.
    no_deployments(&c).await;
    let tasks = c.wait_running("web", 2).await;
    let current = c.get("/v2/apps/web").await["app"]["version"].clone();
    assert!(
        tasks.iter().all(|t| t["version"] == current),
        "all tasks run the new config"
    );

    // Rollback: a body of only the version.
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/web",
        Some(json!({"version": v1[0]})),
    )
    .await;
    assert_dr("rollback", s, &h, &b);
    no_deployments(&c).await;
    let app = c.get("/v2/apps/web").await["app"].clone();
    assert_eq!(app["instances"], 1);
    assert!(app["env"].get("EXTRA").is_none(), "{app}");
    assert_eq!(app["versionInfo"]["lastConfigChangeAt"], v1[0]);
    let (s, _, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/web",
        Some(json!({"version": v1[0], "cmd": "x"})),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(
        b["message"],
        "The 'version' field may only be combined with the 'id' field."
    );
    let (s, _, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/web",
        Some(json!({"version": "2001-01-01T00:00:00.000Z"})),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    let before = c.get("/v2/apps/web").await["app"]["labels"].clone();
    assert_eq!(before, json!({"tier": "front"}), "the labels until now");
    // partialUpdate=false replaces the whole definition (the labels go). The env stays in the
    // new definition: every task of the test must carry the harness's marker, or one launched
    // before the next change could outlive the test.
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/web?partialUpdate=False",
        Some(
            json!({"cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 1,
            "env": c.marker_env()}),
        ),
    )
    .await;
    assert_dr("partialUpdate=false", s, &h, &b);
    let app = c.get("/v2/apps/web").await["app"].clone();
    assert!(
        app["labels"].as_object().is_none_or(|l| l.is_empty()),
        "the labels went: {app}"
    );
    let (s, ..) = send(
        &c,
        Method::PATCH,
        "/v2/apps/web?force=true",
        Some(json!({"env": c.marker_env()})),
    )
    .await;
    assert_eq!(s, 200);

    // PUT of an unknown id creates it: 201 with Location and the deployment header.
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/made-by-put",
        Some(json!({"cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "env": c.marker_env()})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(header(&h, "location"), "/v2/apps/made-by-put");
    assert_eq!(
        header(&h, "Marathon-Deployment-Id"),
        b["deploymentId"].as_str().unwrap_or("-")
    );

    c.wait_running("made-by-put", 1).await;
    no_deployments(&c).await;
    // PUT /v2/apps: several in one deployment; each needs an id.
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps",
        Some(json!([
            {"id": "/bulk-a", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "env": c.marker_env()},
            {"id": "made-by-put", "instances": 2},
        ])),
    )
    .await;
    let bulk = assert_dr("bulk PUT", s, &h, &b);
    let listed = c.get("/v2/deployments").await;
    let mine = listed
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == bulk.as_str()).cloned());
    if let Some(d) = mine {
        assert_eq!(d["affectedApps"], json!(["/bulk-a", "/made-by-put"]), "{d}");
    }
    let (s, _, b) = send(&c, Method::PUT, "/v2/apps", Some(json!([{"cmd": "true"}]))).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["details"][0]["path"], "/id");
    c.wait_running("made-by-put", 2).await;
    c.wait_running("bulk-a", 1).await;
    no_deployments(&c).await;

    // Restart: a new lastConfigChangeAt and new tasks; 404 for an unknown app.
    let before: Vec<Value> = c
        .tasks("bulk-a")
        .await
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let (s, h, b) = send(&c, Method::POST, "/v2/apps/bulk-a/restart", None).await;
    assert_dr("restart", s, &h, &b);
    no_deployments(&c).await;
    let after = c.wait_running("bulk-a", 1).await;
    assert_ne!(after[0]["id"], before[0], "the instance was replaced");
    let (s, _, b) = send(&c, Method::POST, "/v2/apps/nope/restart", None).await;
    assert_eq!(s, 404);
    assert_eq!(b["message"], "App '/nope' does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_cancels_task_kills_info_and_leader() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:1000;ports:[31000-31100]");
    c.wait_agents(1).await;
    // Too large for the agent: its deployment stays in progress.
    let big =
        json!({"id": "/big", "cmd": "sleep 3600", "cpus": 64, "mem": 16, "env": c.marker_env()});
    let (s, h, _) = send(&c, Method::POST, "/v2/apps", Some(big)).await;
    assert_eq!(s, 201);
    let dep = header(&h, "Marathon-Deployment-Id").to_string();
    let listed = c.get("/v2/deployments").await;
    assert_eq!(listed[0]["id"], dep.as_str(), "read-your-writes: {listed}");
    assert_eq!(listed[0]["affectedApps"], json!(["/big"]));
    assert_eq!(listed[0]["totalSteps"], 2);
    assert_eq!(
        listed[0]["steps"][0]["actions"][0]["action"],
        "StartApplication"
    );
    assert_eq!(
        listed[0]["steps"][1]["actions"][0]["action"],
        "ScaleApplication"
    );
    let step2 = eventually(Duration::from_secs(10), "the scale step", || async {
        let l = c.get("/v2/deployments").await;
        (l[0]["currentStep"] == 2).then_some(l)
    })
    .await;
    assert_eq!(
        step2[0]["currentActions"],
        json!([{"action": "ScaleApplication", "app": "/big", "readinessCheckResults": []}])
    );

    // Locked: 409 naming the deployment; force=true goes ahead and cancels it.
    let (s, _, b) = send(&c, Method::PUT, "/v2/apps/big", Some(json!({"cpus": 32}))).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        b["message"],
        format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{dep}'.")
    );
    assert_eq!(b["deployments"], json!([{ "id": dep }]));
    let (s, h, b) = send(
        &c,
        Method::PUT,
        "/v2/apps/big?force=TRUE",
        Some(json!({"cpus": 32})),
    )
    .await;
    let forced = assert_dr("forced PUT", s, &h, &b);
    let ids: Vec<Value> = c
        .get("/v2/deployments")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!(forced)],
        "the locking deployment was cancelled"
    );
    assert_eq!(
        c.get("/v2/apps/big").await["app"]["deployments"],
        json!([{ "id": forced }])
    );

    // Cancel with rollback: a new deployment back to cpus 64.
    let (s, h, b) = send(
        &c,
        Method::DELETE,
        &format!("/v2/deployments/{forced}"),
        None,
    )
    .await;
    let rollback = assert_dr("rollback by DELETE", s, &h, &b);
    assert_ne!(rollback, forced);
    assert_eq!(c.get("/v2/apps/big").await["app"]["cpus"], 64);
    // Cancel without rollback: 202 and no body.
    let r = c
        .request(
            Method::DELETE,
            &format!("/v2/deployments/{rollback}?force=true"),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(r.text().await.unwrap_or_default(), "");
    assert_eq!(c.get("/v2/deployments").await, json!([]));
    assert_eq!(
        c.get("/v2/apps/big").await["app"]["cpus"],
        64,
        "nothing undone"
    );
    let (s, _, b) = send(&c, Method::DELETE, "/v2/deployments/nope", None).await;
    assert_eq!(s, 404);
    assert_eq!(b["message"], "DeploymentPlan nope does not exist");

    // Delete: gone at once, a StopApplication deployment until its tasks are gone.
    let (s, h, b) = send(&c, Method::DELETE, "/v2/apps/big", None).await;
    assert_dr("delete", s, &h, &b);
    assert!(c.get("/v2/apps").await["apps"]
        .as_array()
        .is_some_and(|a| a.is_empty()));
    no_deployments(&c).await;

    // Task kills.
    let app = json!({"id": "/k", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 3, "env": c.marker_env()});
    let (s, ..) = send(&c, Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(s, 201);
    let tasks = c.wait_running("k", 3).await;
    no_deployments(&c).await;
    let (s, _, b) = send(
        &c,
        Method::DELETE,
        "/v2/apps/k/tasks?scale=true&wipe=true",
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["message"],
        "You cannot use scale and wipe at the same time."
    );
    let (s, _, b) = send(
        &c,
        Method::DELETE,
        "/v2/apps/k/tasks/k.instance-00000000-0000-0000-0000-000000000000._app.1",
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Task '")),
        "{b}"
    );
    let first = tasks[0]["id"].as_str().unwrap_or_default().to_string();
    let (s, h, b) = send(
        &c,
        Method::DELETE,
        &format!("/v2/apps/k/tasks/{first}?scale=True"),
        None,
    )
    .await;
    assert_dr("kill with scale", s, &h, &b);
    assert_eq!(c.get("/v2/apps/k").await["app"]["instances"], 2);
    c.wait_running("k", 2).await;
    let second = c.tasks("k").await[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (s, _, b) = send(
        &c,
        Method::POST,
        "/v2/tasks/delete",
        Some(json!({"ids": [second, "k.instance-00000000-0000-0000-0000-000000000000._app.1"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["tasks"].as_array().map(Vec::len),
        Some(1),
        "the unknown id is skipped: {b}"
    );
    assert_eq!(b["tasks"][0]["id"], second.as_str());
    let (s, _, b) = send(
        &c,
        Method::POST,
        "/v2/tasks/delete",
        Some(json!({"ids": ["not a task id"]})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid task id 'not a task id'")),
        "{b}"
    );
    let replaced = eventually(Duration::from_secs(20), "a replacement", || async {
        let t = c.tasks("k").await;
        (t.len() == 2
            && t.iter()
                .all(|t| t["id"] != second.as_str() && t["state"] == "TASK_RUNNING"))
        .then_some(t)
    })
    .await;
    assert_eq!(replaced.len(), 2, "scale=false keeps the instance count");

    // Info and leader.
    let info = c.get("/v2/info").await;
    assert_eq!(info["name"], "marathon");
    assert_eq!(info["elected"], true);
    assert_eq!(info["leader"], format!("127.0.0.1:{}", c.port));
    assert_eq!(info["marathon_config"]["local_port_min"], 10000);
    assert_eq!(info["marathon_config"]["local_port_max"], 20000);
    assert_eq!(
        c.get("/v2/leader").await,
        json!({"leader": format!("127.0.0.1:{}", c.port)})
    );
    // A master without --zk has no one to hand the lead to: abdication is refused, and it leads on.
    let (s, _, b) = send(&c, Method::DELETE, "/v2/leader", None).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"].as_str().is_some_and(|m| m.contains("--zk")),
        "{b}"
    );
    let (s, _, b) = send(&c, Method::DELETE, "/v2/leader?backup=file:///tmp/x", None).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(c.get("/v2/info").await["elected"], true);
}
