//! `/v2/groups` against a real cluster (spec §1.3): the root group always there; a tree created
//! with relative ids, shown nested; 409 on a second create, 422 for an app outside its group or a
//! dependency cycle; `scaleBy`, a dry run that changes nothing, versions and a rollback to one;
//! deleting a subgroup and then the group (404 after); a group's apps and tasks under
//! `/v2/apps/<group>/*`; the `taskStats` embed. Dependencies order a deployment: an app
//! that depends on another starts only once that one's tasks run and are healthy.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

async fn send(c: &Cluster, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let r = c
        .request(method, path)
        .json(body)
        .send()
        .await
        .expect("the master answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn sleeper(c: &Cluster, id: &str) -> Value {
    json!({"id": id, "cmd": c.sleeper_cmd(), "cpus": 0.1, "mem": 32, "instances": 1,
           "env": c.marker_env()})
}

async fn instances(c: &Cluster, app: &str) -> u64 {
    c.get(&format!("/v2/apps{app}")).await["app"]["instances"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

async fn no_deployments(c: &Cluster) {
    eventually(Duration::from_secs(60), "no deployment left", || async {
        c.get("/v2/deployments")
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_tree_is_created_scaled_rolled_back_and_deleted() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:4;mem:2048;disk:100;ports:[31000-31099]");
    c.wait_agents(1).await;

    let root = c.get("/v2/groups").await;
    assert_eq!(root["id"], "/");
    assert_eq!(root["groups"], json!([]));
    assert!(
        root.get("enforceRole").is_none(),
        "marathon-python 0.13.0 rejects enforceRole"
    );

    let tree = json!({"id": "/prod", "apps": [sleeper(&c, "web")],
                      "groups": [{"id": "db", "apps": [sleeper(&c, "pg")]}]});
    let (status, created) = send(&c, Method::POST, "/v2/groups", &tree).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["deploymentId"].as_str().is_some() && created["version"].as_str().is_some());
    let (status, again) = send(&c, Method::POST, "/v2/groups", &tree).await;
    assert_eq!(status, 409);
    assert_eq!(
        again["message"],
        "Group /prod is already created. Use PUT to change this group."
    );
    let stranger = json!({"id": "/other", "apps": [sleeper(&c, "/elsewhere")]});
    let (status, refused) = send(&c, Method::POST, "/v2/groups", &stranger).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["details"][0]["path"], "/apps(0)/id");
    assert_eq!(
        refused["details"][0]["errors"][0],
        "identifier /elsewhere is not child of /other. Hint: use relative paths."
    );
    assert_eq!(
        c.get("/v2/groups/other").await["message"],
        "Group '/other' does not exist"
    );

    let prod = c.get("/v2/groups/prod").await;
    assert_eq!(prod["apps"][0]["id"], "/prod/web");
    assert_eq!(prod["groups"][0]["id"], "/prod/db");
    assert_eq!(prod["groups"][0]["apps"][0]["id"], "/prod/db/pg");
    assert_eq!(c.get("/v2/groups").await["groups"][0]["id"], "/prod");
    c.wait_running("/prod/web", 1).await;
    c.wait_running("/prod/db/pg", 1).await;
    no_deployments(&c).await;
    let counted = c
        .get("/v2/groups/prod?embed=group.apps.counts&embed=group.groups")
        .await;
    assert_eq!(counted["apps"][0]["tasksRunning"], 1, "{counted}");
    assert_eq!(counted["groups"][0]["apps"][0]["tasksRunning"], 1);
    // A group's apps under /v2/apps (spec §1.1): `<group>/*` and `<group>/*/tasks`.
    let star = c.get("/v2/apps/prod/*").await;
    let ids: Vec<&str> = star["*"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["/prod/db/pg", "/prod/web"], "{star}");
    assert_eq!(
        c.get("/v2/apps/prod/*/tasks").await["tasks"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // embed=apps.taskStats, and apps.lastTaskFailure without the tasks.
    let stats = c
        .get("/v2/apps?embed=apps.taskStats&embed=apps.lastTaskFailure")
        .await;
    let web = stats["apps"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "/prod/web"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        web["taskStats"]["totalSummary"]["stats"]["counts"]["running"], 1,
        "{web}"
    );
    assert!(web["taskStats"]["withLatestConfig"].is_object(), "{web}");
    assert!(web.get("tasks").is_none(), "{web}");
    let first = c.get("/v2/groups/prod/versions").await;
    let first = first[0].as_str().expect("a version").to_owned();

    let (status, scaled) = send(&c, Method::PUT, "/v2/groups/prod", &json!({"scaleBy": 2})).await;
    assert_eq!(status, 200, "{scaled}");
    assert_eq!(instances(&c, "/prod/web").await, 2);
    assert_eq!(instances(&c, "/prod/db/pg").await, 2);
    c.wait_running("/prod/web", 2).await;
    no_deployments(&c).await;

    let dry = json!({"apps": [sleeper(&c, "web"), sleeper(&c, "new")]});
    let (status, plan) = send(&c, Method::PUT, "/v2/groups/prod?dryRun=true", &dry).await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["steps"].as_array().is_some_and(|s| !s.is_empty()),
        "{plan}"
    );
    assert_eq!(
        c.get("/v2/apps/prod/new").await["message"],
        "App '/prod/new' does not exist"
    );
    assert!(c
        .get("/v2/deployments")
        .await
        .as_array()
        .is_some_and(Vec::is_empty));

    let (status, back) = send(
        &c,
        Method::PUT,
        "/v2/groups/prod",
        &json!({"version": first}),
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(instances(&c, "/prod/web").await, 1);
    assert_eq!(instances(&c, "/prod/db/pg").await, 1);
    no_deployments(&c).await;

    let (status, _) = send(&c, Method::DELETE, "/v2/groups/prod/db", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        c.get("/v2/apps/prod/db/pg").await["message"],
        "App '/prod/db/pg' does not exist"
    );
    let (status, _) = send(&c, Method::DELETE, "/v2/groups/prod", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        c.get("/v2/groups/prod").await["message"],
        "Group '/prod' does not exist"
    );
    eventually(Duration::from_secs(30), "every task gone", || async {
        c.get("/v2/tasks").await["tasks"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await;

    let cycle = json!({"id": "/loop", "apps": [
        {"id": "a", "cmd": "sleep 1", "instances": 0, "dependencies": ["/loop/b"]},
        {"id": "b", "cmd": "sleep 1", "instances": 0, "dependencies": ["/loop/a"]}]});
    let (status, refused) = send(&c, Method::POST, "/v2/groups", &cycle).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["message"], "Object is not valid");
    assert_eq!(
        refused["details"][0]["errors"][0],
        "Dependency graph has cyclic dependencies."
    );
    assert_eq!(
        c.get("/v2/groups/loop").await["message"],
        "Group '/loop' does not exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_starts_only_after_what_it_depends_on_is_healthy() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:4;mem:2048;disk:100;ports:[31100-31199]");
    c.wait_agents(1).await;
    // The database answers its health check only after a few seconds.
    let db = json!({"id": "db", "cmd": "sleep 4; exec python3 -m http.server $PORT0",
                    "cpus": 0.1, "mem": 64, "instances": 1, "env": c.marker_env(),
                    "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                                      "gracePeriodSeconds": 60, "intervalSeconds": 1,
                                      "timeoutSeconds": 1, "maxConsecutiveFailures": 3}]});
    let mut web = sleeper(&c, "web");
    web["dependencies"] = json!(["/stack/db"]);
    let (status, created) = send(
        &c,
        Method::POST,
        "/v2/groups",
        &json!({"id": "/stack", "apps": [web, db]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let deployments = c.get("/v2/deployments").await;
    let steps = &deployments[0]["steps"];
    let actions = |i: usize| -> Vec<(String, String)> {
        steps[i]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["action"].as_str().unwrap_or_default().to_owned(),
                    a["app"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(steps.as_array().map(Vec::len), Some(3), "{deployments}");
    assert_eq!(
        actions(1),
        [("ScaleApplication".to_string(), "/stack/db".to_string())]
    );
    assert_eq!(
        actions(2),
        [("ScaleApplication".to_string(), "/stack/web".to_string())]
    );

    // Sampled until the deployment ends: /stack/web never has a task before /stack/db is healthy.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut saw_db_healthy = false;
    loop {
        let db_healthy = c
            .tasks("/stack/db")
            .await
            .iter()
            .any(|t| t["healthCheckResults"][0]["alive"] == true);
        let web_tasks = c.tasks("/stack/web").await.len();
        assert!(
            saw_db_healthy || db_healthy || web_tasks == 0,
            "/stack/web started before /stack/db was healthy"
        );
        saw_db_healthy |= db_healthy;
        if web_tasks > 0
            && c.get("/v2/deployments")
                .await
                .as_array()
                .is_some_and(Vec::is_empty)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deployment did not end: {}\n{}",
            c.get("/v2/deployments").await,
            c.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_db_healthy);
    c.wait_running("/stack/web", 1).await;
}
