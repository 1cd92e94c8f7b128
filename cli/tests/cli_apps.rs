//! `gantry apps` and `gantry deployments` against a real cluster: deploy a new app and wait, deploy
//! it changed (a rolling replacement), a bad file refused with the field at fault, scale, restart,
//! roll back (to the previous version and to a named one), show, delete, a usage error; and a
//! deployment that can never finish: followed with a short --timeout (exit 1 naming why: what no
//! agent offers, or the last task failure), listed while it runs, a locked app's 409 suggesting
//! --force, and cancelled.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:1024;disk:2000;ports:[31000-31099]";

/// Runs `gantry` with `args` against the cluster: (exit code, stdout, stderr).
fn gantry(c: &Cluster, args: &[&str]) -> (i32, String, String) {
    let out = c.cli().args(args).output().expect("run gantry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `gantry` and insists that it succeeds; its stdout.
fn ok(c: &Cluster, args: &[&str]) -> String {
    let (code, out, err) = gantry(c, args);
    assert_eq!(code, 0, "gantry {args:?} failed:\n{out}\n{err}");
    out
}

/// Writes `app` to a file in the test's directory; its path.
fn app_file(c: &Cluster, name: &str, app: &Value) -> String {
    let path = c.dir.path().join(name);
    std::fs::write(&path, app.to_string()).expect("write the app file");
    path.to_str().expect("utf-8 path").to_string()
}

/// The ids of the app's tasks, which must all be running.
async fn running_ids(c: &Cluster, app: &str) -> HashSet<String> {
    let tasks = c.tasks(app).await;
    assert!(
        tasks.iter().all(|t| t["state"] == "TASK_RUNNING"),
        "{tasks:?}"
    );
    tasks
        .iter()
        .filter_map(|t| t["id"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_scale_restart_rollback_delete() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;

    // A new app: created, followed until its deployment is gone, its tasks running.
    let v1 = serde_json::json!({"id": "/web", "cmd": "sleep 3600", "instances": 2, "cpus": 0.1,
        "mem": 16, "env": c.marker_env()});
    let file = app_file(&c, "web.json", &v1);
    let out = ok(&c, &["apps", "deploy", &file]);
    assert!(
        out.contains("created /web: deployment") && out.contains("finished, 2 of 2 tasks running"),
        "{out}"
    );
    let first = running_ids(&c, "web").await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(
        c.get("/v2/deployments").await,
        serde_json::json!([]),
        "done means gone"
    );

    // The same file changed: an update, every task replaced.
    let mut v2 = v1.clone();
    v2["cmd"] = "sleep 3600 && echo v2".into();
    let file = app_file(&c, "web.json", &v2);
    let out = ok(&c, &["apps", "deploy", &file]);
    assert!(out.contains("updated /web: deployment"), "{out}");
    let second = running_ids(&c, "web").await;
    assert_eq!(second.len(), 2);
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    assert_eq!(
        c.get("/v2/apps/web").await["app"]["cmd"],
        "sleep 3600 && echo v2"
    );

    // A bad file: exit 1 with the master's message and the field at fault; nothing created.
    let bad = serde_json::json!({"id": "/bad", "cmd": "x", "instances": -1, "cpus": 0.1});
    let bad = app_file(&c, "bad.json", &bad);
    let (code, _, err) = gantry(&c, &["apps", "deploy", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/instances"), "{err}");
    assert_eq!(
        c.get("/v2/apps/bad").await["message"],
        "App '/bad' does not exist"
    );

    // Restart: same definition, new tasks.
    let out = ok(&c, &["apps", "restart", "/web"]);
    assert!(out.contains("restarted /web: deployment"), "{out}");
    let third = running_ids(&c, "web").await;
    assert!(second.is_disjoint(&third), "{second:?} {third:?}");

    // Scale, then roll back to the version before: two instances again.
    let out = ok(&c, &["apps", "scale", "web", "3"]);
    assert!(out.contains("finished, 3 of 3 tasks running"), "{out}");
    assert_eq!(running_ids(&c, "web").await.len(), 3);
    let out = ok(&c, &["apps", "rollback", "/web"]);
    assert!(out.contains("rolled /web back to"), "{out}");
    assert_eq!(running_ids(&c, "web").await.len(), 2);
    assert_eq!(c.get("/v2/apps/web").await["app"]["instances"], 2);

    // Roll back to the first version by name: the first command again.
    let versions = c.get("/v2/apps/web/versions").await;
    let oldest = versions["versions"]
        .as_array()
        .and_then(|v| v.last())
        .and_then(Value::as_str)
        .expect("a first version")
        .to_string();
    ok(&c, &["apps", "rollback", "/web", &oldest]);
    let app = c.get("/v2/apps/web").await;
    assert_eq!(app["app"]["cmd"], "sleep 3600", "{app}");
    assert_eq!(running_ids(&c, "web").await.len(), 2);

    // Show: the summary and the tasks table.
    let out = ok(&c, &["apps", "show", "/web"]);
    assert!(out.contains("cmd          sleep 3600"), "{out}");
    assert!(out.contains("instances    2 (2 running"), "{out}");
    let tasks: Vec<&str> = out.lines().filter(|l| l.contains("TASK_RUNNING")).collect();
    assert_eq!(tasks.len(), 2, "{out}");
    assert!(out.contains("TASK  "), "{out}");

    // A usage error exits 2.
    let (code, _, err) = gantry(&c, &["apps", "scale", "/web", "many"]);
    assert_eq!(code, 2, "{err}");

    // Delete: followed until the tasks are gone.
    let out = ok(&c, &["apps", "delete", "/web"]);
    assert!(out.contains("deleted /web: deployment"), "{out}");
    assert!(c.tasks("web").await.is_empty());
    let (code, _, err) = gantry(&c, &["apps", "delete", "/web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("App '/web' does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_that_cannot_finish() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;

    // More cpus than any agent has: the follow gives up after --timeout and says why.
    let big = serde_json::json!({"id": "/big", "cmd": "sleep 3600", "instances": 1, "cpus": 64,
        "mem": 16, "env": c.marker_env()});
    let file = app_file(&c, "big.json", &big);
    let (code, out, err) = gantry(&c, &["apps", "deploy", &file, "--timeout", "3s"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("deploying /big: step "), "{out}");
    assert!(
        err.contains("did not finish within 3s") && err.contains("too few cpus"),
        "{err}"
    );

    // A command that always fails: the follow names the last task failure.
    let crash = serde_json::json!({"id": "/crash", "cmd": "exit 3", "instances": 1, "cpus": 0.1,
        "mem": 16, "env": c.marker_env()});
    let file = app_file(&c, "crash.json", &crash);
    let (code, out, err) = gantry(&c, &["apps", "deploy", &file, "--timeout", "4s"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("did not finish within 4s") && err.contains("failed (TASK_FAILED)"),
        "{err}"
    );
    ok(&c, &["apps", "delete", "/crash"]);

    // Listed while it runs.
    let out = ok(&c, &["deployments", "list"]);
    assert!(out.starts_with("ID"), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("/big"))
        .unwrap_or_else(|| panic!("no /big deployment in:\n{out}"));
    let id = row.split_whitespace().next().expect("an id").to_string();
    assert!(row.contains("Application /big"), "{row}");

    // The app is locked: 409 naming the deployment and --force.
    let (code, _, err) = gantry(&c, &["apps", "scale", "/big", "2", "--no-wait"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("409") && err.contains(&id) && err.contains("--force"),
        "{err}"
    );

    // --no-wait returns at once; cancel (with a rollback) ends the deployment.
    let out = ok(&c, &["deployments", "cancel", &id]);
    assert!(out.contains(&format!("cancelled {id}")), "{out}");
    eventually(
        Duration::from_secs(20),
        "the cancelled deployment to go",
        || async {
            let plans = c.get("/v2/deployments").await;
            let gone = plans
                .as_array()
                .is_some_and(|a| a.iter().all(|p| p["id"] != id.as_str()));
            gone.then_some(())
        },
    )
    .await;
    let (code, _, err) = gantry(&c, &["deployments", "cancel", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
}
