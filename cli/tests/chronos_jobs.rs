//! Batch jobs beyond the Chronos basics, against a real cluster: the seed's job documents accepted
//! verbatim (the shell job runs, the Docker job waits and says why), a job array with its
//! throttle and one verdict, `DELETE /v1/scheduler/jobs`, and a run whose agent is killed and
//! restarted mid-run finishing once.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:1024;disk:2000;ports:[31000-31099]";

async fn send(c: &Cluster, m: Method, path: &str, body: Option<&str>) -> (u16, String) {
    let mut r = c.request(m, path);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = r.send().await.expect("request reaches the master");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Submits a scheduled job (204) and runs it now (204).
async fn submit_and_run(c: &Cluster, job: &Value) {
    let (s, body) = send(
        c,
        Method::POST,
        "/v1/scheduler/iso8601",
        Some(&job.to_string()),
    )
    .await;
    assert_eq!(s, 204, "{job}: {body}");
    let name = job["name"].as_str().unwrap_or_default();
    let path = format!("/v1/scheduler/job/{name}");
    assert_eq!(send(c, Method::PUT, &path, None).await.0, 204);
}

/// Waits until the job's `field` (successCount, errorCount) is `n`; returns the job.
async fn wait_count(c: &Cluster, name: &str, field: &str, n: u64, secs: u64) -> Value {
    eventually(Duration::from_secs(secs), "the job's count", || async {
        let j = c.get(&format!("/v1/scheduler/job/{name}")).await;
        (j[field] == n).then_some(j)
    })
    .await
}

async fn runs(c: &Cluster, name: &str) -> Vec<Value> {
    let v = c.get(&format!("/v1/scheduler/job/{name}/runs")).await;
    v["runs"].as_array().cloned().unwrap_or_default()
}

/// The seed's two Chronos documents, verbatim (mesos-basic-concepts.txt).
const SLEEP_JOB: &str = r#"{
  "schedule": "R/2021-06-15T22:57:59Z/PT24H",
  "name": "sleep-job",
  "description": "Sleep for 60 seconds and return.",
  "cpus": 0.5,
  "mem": 256,
  "disk": 500,
  "command": "sleep 60",
  "retries": 2
}"#;
const DOCKER_JOB: &str = r#"{
  "schedule": "R/2021-06-15T17:22:00Z/PT2M",
  "name": "dockerjob",
  "container": {
    "type": "DOCKER",
    "image": "ubuntu:latest",
    "network": "BRIDGE",
    "volumes": [
      {
        "containerPath": "/var/log/",
        "hostPath": "/logs/",
        "mode": "RW"
      }
    ]
  },
  "cpus": "0.5",
  "mem": "512",
  "command": "while sleep 10; do date =u %T; done"
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_jobs_are_accepted_verbatim_and_run_or_wait_with_a_reason() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    for doc in [SLEEP_JOB, DOCKER_JOB] {
        let (s, body) = send(&c, Method::POST, "/v1/scheduler/iso8601", Some(doc)).await;
        assert_eq!(s, 204, "{doc}: {body}");
    }
    // The shell job's start is in the past: one catch-up run, now, running `sleep 60`.
    let r = eventually(Duration::from_secs(20), "sleep-job running", || async {
        let r = runs(&c, "sleep-job").await;
        r.first().filter(|r| r["state"] == "running").cloned()
    })
    .await;
    assert_eq!(r["trigger"], "schedule");
    // One catch-up run for the latest missed slot (Chronos 3.x), not one per missed day.
    let at = r["scheduledAt"].as_str().unwrap_or("");
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("scheduledAt");
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(
        at.format("%H:%M:%S").to_string() == "22:57:59" && age.num_hours() < 24,
        "{r}"
    );
    let shown = c.get("/v1/scheduler/job/sleep-job").await;
    assert!(
        shown["schedule"]
            .as_str()
            .is_some_and(|s| s.starts_with("R/") && !s.contains("2021")),
        "rewritten after the launch: {shown}"
    );
    assert_eq!(
        runs(&c, "sleep-job").await.len(),
        1,
        "one catch-up run, not one per missed day"
    );
    // Re-submitting it unchanged (as chronos-sync-jobs does) keeps its place: no second run.
    let (s, body) = send(&c, Method::POST, "/v1/scheduler/iso8601", Some(SLEEP_JOB)).await;
    assert_eq!(s, 204, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        runs(&c, "sleep-job").await.len(),
        1,
        "a re-submit runs no slot twice"
    );
    // The Docker job waits: no agent here has the Docker containerizer.
    let w = eventually(Duration::from_secs(20), "dockerjob waiting", || async {
        let r = runs(&c, "dockerjob").await;
        r.first()
            .and_then(|r| r["waiting"].as_str().map(String::from))
    })
    .await;
    assert!(w.contains("Docker containerizer"), "{w}");
    let summary = c.get("/v1/scheduler/jobs/summary").await;
    let docker = summary["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| j["name"] == "dockerjob")
        .cloned()
        .unwrap_or_default();
    assert_eq!(docker["state"], "queued", "{summary}");
    assert_eq!(
        c.get("/v1/scheduler/job/dockerjob").await["cpus"],
        0.5,
        "string numbers read as numbers"
    );

    // Delete everything: the running task is killed, nothing is left.
    assert_eq!(
        send(&c, Method::DELETE, "/v1/scheduler/jobs", None).await.0,
        204
    );
    assert_eq!(c.get("/v1/scheduler/jobs").await, json!([]));
    eventually(Duration::from_secs(20), "the sleep task killed", || async {
        let state = c.get("/master/state").await;
        let chronos = state["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == "chronos")
            .cloned()
            .unwrap_or_default();
        let done = chronos["tasks"].as_array().is_some_and(Vec::is_empty)
            && chronos["completed_tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["state"] == "TASK_KILLED");
        done.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_runs_every_index_within_its_throttle_and_gives_one_verdict() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let out = c.agent_dir(0).join("array");
    std::fs::create_dir_all(&out).expect("dir");
    let job = json!({"name": "sweep", "owner": "", "cpus": 0.1, "mem": 16, "array": "0-5%2",
        "schedule": "R/2099-01-01T00:00:00Z/P1D",
        "command": format!("echo $GANTRY_ARRAY_INDEX $GANTRY_ARRAY_SIZE $SLURM_ARRAY_TASK_ID > {}/$GANTRY_ARRAY_INDEX; sleep 1", out.display())});
    submit_and_run(&c, &job).await;
    let j = wait_count(&c, "sweep", "successCount", 1, 40).await;
    assert_eq!(j["errorCount"], 0);
    for i in 0..6 {
        let line = std::fs::read_to_string(out.join(i.to_string())).unwrap_or_default();
        assert_eq!(line, format!("{i} 6 {i}\n"), "index {i}");
    }
    let r = runs(&c, "sweep").await;
    assert_eq!(r.len(), 6);
    assert!(
        r.iter()
            .all(|x| x["run"] == r[0]["run"] && x["state"] == "succeeded"),
        "{r:?}"
    );
    // At most 2 at a time, by the runs' own launch and end times.
    let mut events: Vec<(i64, i32)> = Vec::new();
    for x in &r {
        let ms = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(x[k].as_str().unwrap_or(""))
                .map(|t| t.timestamp_millis())
                .ok()
        };
        if let (Some(s), Some(e)) = (ms("launchedAt"), ms("endedAt")) {
            events.push((s, 1));
            events.push((e, -1));
        }
    }
    assert_eq!(events.len(), 12, "{r:?}");
    events.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 2, "throttle %2 exceeded: {peak} at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_agent_is_killed_and_comes_back_finishes_once() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let out = c.agent_dir(0).join("once.txt");
    let job = json!({"name": "survivor", "owner": "", "cpus": 0.1, "mem": 16,
        "schedule": "R/2099-01-01T00:00:00Z/P1D",
        "command": format!("echo start >> {o}; sleep 4; echo end >> {o}", o = out.display())});
    submit_and_run(&c, &job).await;
    eventually(Duration::from_secs(20), "the run started", || async {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("start"))
            .map(|_| ())
    })
    .await;
    c.kill_agent(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.start_agent(0, AGENT);
    let j = wait_count(&c, "survivor", "successCount", 1, 30).await;
    assert_eq!(j["errorCount"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "start\nend\n",
        "ran once, re-adopted"
    );
    assert_eq!(runs(&c, "survivor").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_max_completion_time_is_killed_and_counts_as_a_failure() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let job = json!({"name": "walltime", "owner": "", "cpus": 0.1, "mem": 16, "retries": 0,
        "maxCompletionTime": 1, "schedule": "R/2099-01-01T00:00:00Z/P1D", "command": "sleep 60"});
    submit_and_run(&c, &job).await;
    let j = wait_count(&c, "walltime", "errorCount", 1, 30).await;
    assert_eq!(j["successCount"], 0);
    assert!(j["lastError"].as_str().is_some_and(|t| !t.is_empty()));
    let r = runs(&c, "walltime").await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["state"], "failed");
    assert!(
        r[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("maxCompletionTime")),
        "{}",
        r[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_keep_runs_on_matching_agents_and_say_when_none_match() {
    let mut c = Cluster::new();
    let token = c.token.clone();
    c.start_agent_with(0, AGENT, &token, &["--attributes", "rack:rack-1"], &[]);
    c.start_agent_with(1, AGENT, &token, &["--attributes", "rack:rack-2"], &[]);
    c.wait_agents(2).await;
    let state = c.get("/master/state").await;
    let rack2 = state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["attributes"]["rack"] == "rack-2")
        .and_then(|s| s["id"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("an agent with rack-2: {state}"));
    let job = json!({"name": "racked", "owner": "", "cpus": 0.1, "mem": 16, "array": "0-3",
        "constraints": [["rack", "LIKE", "rack-[2-9]"]],
        "schedule": "R/2099-01-01T00:00:00Z/P1D", "command": "true"});
    submit_and_run(&c, &job).await;
    wait_count(&c, "racked", "successCount", 1, 30).await;
    let r = runs(&c, "racked").await;
    assert_eq!(r.len(), 4);
    assert!(
        r.iter().all(|x| x["agentId"] == rack2.as_str()),
        "all on rack-2: {r:?}"
    );
    let nowhere = json!({"name": "nowhere", "owner": "", "cpus": 0.1, "mem": 16,
        "constraints": [["rack", "EQUALS", "rack-9"]],
        "schedule": "R/2099-01-01T00:00:00Z/P1D", "command": "true"});
    submit_and_run(&c, &nowhere).await;
    let w = eventually(Duration::from_secs(20), "nowhere waits", || async {
        runs(&c, "nowhere")
            .await
            .first()
            .and_then(|r| r["waiting"].as_str().map(String::from))
    })
    .await;
    assert!(w.contains("constraints"), "{w}");
}
