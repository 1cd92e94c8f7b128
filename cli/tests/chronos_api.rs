//! The Chronos API against a real cluster: every endpoint of spec §1.2 with its status codes and
//! bodies, runs that really run (retries, arguments, environment), dependencies, and bad input
//! refused with a 400 naming the field and nothing stored.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:1024;disk:2000;ports:[31000-31099]";

async fn send(c: &Cluster, m: Method, path: &str, body: Option<Value>) -> (u16, String) {
    let mut r = c.request(m, path);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.expect("request reaches the master");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn job(c: &Cluster, name: &str) -> Value {
    c.get(&format!("/v1/scheduler/job/{name}")).await
}

/// Waits until `name` has `n` successes.
async fn successes(c: &Cluster, name: &str, n: u64) -> Value {
    eventually(Duration::from_secs(30), "job successes", || async {
        let j = job(c, name).await;
        (j["successCount"].as_u64() >= Some(n)).then_some(j)
    })
    .await
}

async fn runs(c: &Cluster, name: &str) -> Vec<Value> {
    let v = c.get(&format!("/v1/scheduler/job/{name}/runs")).await;
    v["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_created_run_listed_and_deleted_as_on_chronos() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let out = c.agent_dir(0).join("out.txt");
    let once = json!({"name": "hello", "command": format!("echo \"$CHRONOS_JOB_NAME $CHRONOS_JOB_RUN_ATTEMPT\" >> {}", out.display()),
                      "owner": "hpc@example.com", "cpus": 0.1, "mem": 32});
    let (s, body) = send(&c, Method::POST, "/v1/scheduler/iso8601", Some(once)).await;
    assert_eq!(s, 204, "{body}");
    assert!(body.is_empty());
    let j = successes(&c, "hello", 1).await;
    assert_eq!(j["errorCount"], 0);
    assert!(
        j["lastSuccess"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24),
        "{j}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "hello 0\n"
    );
    // The list has every field of spec §2.2 in order.
    let (s, text) = send(&c, Method::GET, "/v1/scheduler/jobs", None).await;
    assert_eq!(s, 200);
    let first_keys = ["\"name\"", "\"command\"", "\"shell\"", "\"executor\""];
    let pos: Vec<usize> = first_keys.iter().filter_map(|k| text.find(k)).collect();
    assert_eq!(pos.len(), 4, "{text}");
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "Chronos's key order: {text}"
    );
    let list: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    for k in [
        "retries",
        "runAsUser",
        "schedule",
        "scheduleTimeZone",
        "environmentVariables",
        "fetch",
        "uris",
        "constraints",
        "errorsSinceLastSuccess",
    ] {
        assert!(list[0].get(k).is_some(), "missing {k}: {}", list[0]);
    }
    // A run history with exit codes and times.
    let r = runs(&c, "hello").await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["state"], "succeeded");
    assert_eq!(r[0]["exitCode"], 0);
    assert!(
        r[0]["taskId"]
            .as_str()
            .is_some_and(|t| t.starts_with("ct:") && t.contains(":0:hello:")),
        "{}",
        r[0]
    );

    // Manual run with arguments; it goes in the task id and onto the command.
    let dep = json!({"name": "echoer", "command": format!("echo args >> {}", out.display()), "owner": "", "schedule": "R/2099-01-01T00:00:00Z/P1D", "cpus": 0.1, "mem": 32});
    assert_eq!(
        send(&c, Method::POST, "/v1/scheduler/iso8601", Some(dep))
            .await
            .0,
        204
    );
    let (s, _) = send(
        &c,
        Method::PUT,
        "/v1/scheduler/job/echoer?arguments=one%3Btwo",
        None,
    )
    .await;
    assert_eq!(s, 204);
    successes(&c, "echoer", 1).await;
    assert!(std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("args onetwo\n"));
    let r = runs(&c, "echoer").await;
    assert!(
        r[0]["taskId"]
            .as_str()
            .is_some_and(|t| t.ends_with(":echoer:onetwo")),
        "{}",
        r[0]
    );
    // A manual run does not touch the schedule's repetitions.
    assert_eq!(
        job(&c, "echoer").await["schedule"],
        "R/2099-01-01T00:00:00Z/P1D"
    );

    // Search, summary, graph, stats.
    let s = c.get("/v1/scheduler/jobs/search?name=ECH").await;
    assert_eq!(s.as_array().map(Vec::len), Some(1));
    assert_eq!(s[0]["name"], "echoer");
    let s = c.get("/v1/scheduler/jobs/search?command=args").await;
    assert_eq!(s[0]["name"], "echoer");
    let summary = c.get("/v1/scheduler/jobs/summary").await;
    assert_eq!(summary["jobs"].as_array().map(Vec::len), Some(2));
    assert!(
        summary["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|j| j["status"] == "success" && j["state"] == "idle"),
        "{summary}"
    );
    let stat = c.get("/v1/scheduler/job/stat/hello").await;
    assert_eq!(stat["histogram"]["count"], 1);
    assert_eq!(stat["taskStatHistory"][0]["status"], "TASK_FINISHED");
    let p99 = c.get("/v1/scheduler/stats/99thPercentile").await;
    assert_eq!(p99.as_array().map(Vec::len), Some(2), "{p99}");
    assert_eq!(c.get("/v1/scheduler/stats/nonsense").await, json!([]));
    let leader = c.get("/v1/scheduler/leader").await;
    assert!(leader["leader"].as_str().is_some_and(|l| l.contains(':')));
    assert_eq!(c.get("/leader").await, leader);
    let m = c
        .request(Method::GET, "/metrics")
        .header("accept", "application/json")
        .send()
        .await
        .expect("metrics");
    let m: Value = m.json().await.expect("JSON metrics");
    assert_eq!(m["version"], "3.0.0");
    assert!(
        m["gauges"].is_object() && m["counters"]["jobs.run.success.hello"]["count"] == 1,
        "{m}"
    );

    // CORS, as Chronos's CorsFilter.
    let r = c
        .request(Method::GET, "/v1/scheduler/jobs")
        .send()
        .await
        .expect("jobs");
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    // The 2.x prefix answers too.
    let old = c.get("/scheduler/jobs").await;
    assert_eq!(old.as_array().map(Vec::len), Some(2));

    // Mark success, kill (nothing running), delete; unknown jobs are 404 with Chronos's body.
    let (s, text) = send(&c, Method::PUT, "/v1/scheduler/job/success/echoer", None).await;
    assert_eq!(
        (s, text.as_str()),
        (200, "marked job echoer as successful: true")
    );
    assert_eq!(job(&c, "echoer").await["successCount"], 2);
    assert_eq!(
        send(&c, Method::DELETE, "/v1/scheduler/task/kill/echoer", None)
            .await
            .0,
        204
    );
    assert_eq!(
        send(&c, Method::DELETE, "/v1/scheduler/job/echoer", None)
            .await
            .0,
        204
    );
    let (s, text) = send(&c, Method::GET, "/v1/scheduler/job/echoer", None).await;
    assert_eq!(s, 404);
    let body: Value = serde_json::from_str(&text).expect("JSON error");
    assert_eq!(
        body,
        json!({"message": "Job 'echoer' does not exist", "status": "Not Found"})
    );
    for (m, p) in [
        (Method::PUT, "/v1/scheduler/job/nope"),
        (Method::DELETE, "/v1/scheduler/job/nope"),
        (Method::DELETE, "/v1/scheduler/task/kill/nope"),
        (Method::GET, "/v1/scheduler/job/stat/nope"),
    ] {
        assert_eq!(send(&c, m.clone(), p, None).await.0, 404, "{m} {p}");
    }
    let (s, text) = send(&c, Method::PUT, "/v1/scheduler/job/success/nope", None).await;
    assert_eq!(
        (s, text.as_str()),
        (200, "marked job nope as successful: false")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_and_dependents_run_after_their_parents() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let log = c.agent_dir(0).join("dag.txt");
    let flag = c.agent_dir(0).join("flag");
    // Fails on its first attempt, succeeds on the retry (retryDelaySeconds 1).
    let flaky = json!({"name": "flaky", "owner": "", "cpus": 0.1, "mem": 32, "retries": 2, "retryDelaySeconds": 1,
        "schedule": "R/2099-01-01T00:00:00Z/P1D",
        "command": format!("if [ -e {f} ]; then echo flaky >> {l}; else touch {f}; exit 3; fi", f = flag.display(), l = log.display())});
    assert_eq!(
        send(&c, Method::POST, "/v1/scheduler/iso8601", Some(flaky))
            .await
            .0,
        204
    );
    let child = json!({"name": "child", "owner": "", "cpus": 0.1, "mem": 32, "parents": ["flaky"],
        "command": format!("echo child >> {}", log.display())});
    assert_eq!(
        send(&c, Method::POST, "/v1/scheduler/dependency", Some(child))
            .await
            .0,
        204
    );
    let grandchild = json!({"name": "grandchild", "owner": "", "cpus": 0.1, "mem": 32, "parents": ["child"],
        "command": format!("echo grandchild >> {}", log.display())});
    assert_eq!(
        send(
            &c,
            Method::POST,
            "/v1/scheduler/dependency",
            Some(grandchild)
        )
        .await
        .0,
        204
    );
    assert_eq!(
        send(&c, Method::PUT, "/v1/scheduler/job/flaky", None)
            .await
            .0,
        204
    );
    successes(&c, "grandchild", 1).await;
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default(),
        "flaky\nchild\ngrandchild\n"
    );
    let r = runs(&c, "flaky").await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        (
            r[0]["attempt"].clone(),
            r[0]["state"].clone(),
            r[0]["exitCode"].clone()
        ),
        (json!(0), json!("failed"), json!(3))
    );
    assert_eq!(
        (r[1]["attempt"].clone(), r[1]["state"].clone()),
        (json!(1), json!("succeeded"))
    );
    let f = job(&c, "flaky").await;
    assert_eq!(
        (f["successCount"].clone(), f["errorCount"].clone()),
        (json!(1), json!(0)),
        "a retried run that succeeds is one success"
    );
    let dot = send(&c, Method::GET, "/v1/scheduler/graph/dot", None)
        .await
        .1;
    assert!(
        dot.starts_with("digraph G {\n") && dot.contains(" -> "),
        "{dot}"
    );
    let csv = send(&c, Method::GET, "/v1/scheduler/graph/csv", None)
        .await
        .1;
    assert!(
        csv.contains("node,child,success,idle\n") && csv.contains("link,flaky,child\n"),
        "{csv}"
    );
    // Deleting the middle job splices its parent into the grandchild.
    assert_eq!(
        send(&c, Method::DELETE, "/v1/scheduler/job/child", None)
            .await
            .0,
        204
    );
    assert_eq!(job(&c, "grandchild").await["parents"], json!(["flaky"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_400s_naming_the_field_and_nothing_is_stored() {
    let c = Cluster::new();
    c.wait_agents(0).await;
    let base = || json!({"name": "ok", "command": "true", "owner": ""});
    let mut cases: Vec<(Value, &str, &str)> = Vec::new();
    for s in [
        "R/2008-03-01T13:00:00Z",
        "FOO",
        "r/2008-03-01T13:00:00Z/P1D",
        "R-1/2008-03-01T13:00:00Z/P1D",
        "R/2008-03-01T13:00:00Z/p1d",
        "R/2008-03-01T13:00:00Z/PT",
        "R/2008-02-30T13:00:00Z/P1D",
        "R/2024-01-15T10:00:00Z/PT0S",
        "R/2024-01-15T10:00:00Z/P-1D",
        "R/1969-12-31T23:59:59Z/P1D",
    ] {
        let mut j = base();
        j["schedule"] = json!(s);
        cases.push((j, "/v1/scheduler/iso8601", "schedule"));
    }
    let mut j = base();
    j["schedule"] = json!("R/2030-01-01T00:00:00Z/P1D");
    j["scheduleTimeZone"] = json!("Foo/Bar");
    cases.push((j, "/v1/scheduler/iso8601", "scheduleTimeZone"));
    let mut j = base();
    j["name"] = json!("has space");
    cases.push((j, "/v1/scheduler/iso8601", "name"));
    let mut j = base();
    j["cpus"] = json!(-1);
    cases.push((j, "/v1/scheduler/iso8601", "cpus"));
    let mut j = base();
    j["mem"] = json!(-5);
    cases.push((j, "/v1/scheduler/iso8601", "mem"));
    let mut j = base();
    j["parents"] = json!(["nobody-has-this"]);
    cases.push((j, "/v1/scheduler/dependency", "parents"));
    let mut j = base();
    j["parents"] = json!([]);
    cases.push((j, "/v1/scheduler/dependency", "parents"));
    let mut j = base();
    j["parents"] = json!(["ok"]);
    cases.push((j, "/v1/scheduler/dependency", "parents"));
    for (body, path, field) in cases {
        let (s, text) = send(&c, Method::POST, path, Some(body.clone())).await;
        assert_eq!(s, 400, "{body} → {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(v["status"], "Bad Request", "{text}");
        assert!(
            v["message"].as_str().is_some_and(|m| m.starts_with(field)),
            "{body}: {text} should name {field}"
        );
    }
    let r = c
        .request(Method::POST, "/v1/scheduler/iso8601")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        c.get("/v1/scheduler/jobs").await,
        json!([]),
        "nothing stored"
    );
    // A cycle through an update is refused too.
    assert_eq!(send(&c, Method::POST, "/v1/scheduler/iso8601", Some(json!({"name": "a", "command": "true", "owner": "", "schedule": "R/2099-01-01T00:00:00Z/P1D"}))).await.0, 204);
    assert_eq!(
        send(
            &c,
            Method::POST,
            "/v1/scheduler/dependency",
            Some(json!({"name": "b", "command": "true", "owner": "", "parents": ["a"]}))
        )
        .await
        .0,
        204
    );
    let (s, text) = send(
        &c,
        Method::POST,
        "/v1/scheduler/dependency",
        Some(json!({"name": "a", "command": "true", "owner": "", "parents": ["b"]})),
    )
    .await;
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("cycle"), "{text}");
    assert_eq!(
        job(&c, "a").await["schedule"],
        "R/2099-01-01T00:00:00Z/P1D",
        "unchanged"
    );
}
