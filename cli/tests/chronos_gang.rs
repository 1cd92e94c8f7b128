//! Gang jobs against a real cluster (issue 14 part 3): 4 ranks over 2 agents start in one pass
//! with consistent torchrun variables (each rank writes its environment to its sandbox); killing
//! one rank's process ends all four and the retry restarts all four; with room for only 3 ranks
//! none starts, the runs say why, and the run fails at its `gangTimeoutSeconds`.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{eventually, Cluster};

const PORTS: &str = "ports:[31000-31099]";

/// Submits a job with no schedule, which runs once now (204).
async fn submit(c: &Cluster, job: &Value) {
    let r = c
        .request(Method::POST, "/v1/scheduler/iso8601")
        .header("content-type", "application/json")
        .body(job.to_string())
        .send()
        .await
        .expect("POST reaches the master");
    let status = r.status().as_u16();
    assert_eq!(status, 204, "{job}: {}", r.text().await.unwrap_or_default());
}

async fn runs(c: &Cluster, name: &str) -> Vec<Value> {
    let v = c.get(&format!("/v1/scheduler/job/{name}/runs")).await;
    v["runs"].as_array().cloned().unwrap_or_default()
}

/// A gang job of `size` ranks of 1 cpu that write their environment and pid to the sandbox and
/// sleep.
fn gang_job(c: &Cluster, name: &str, size: u32, extra: Value) -> Value {
    let mut job = json!({
        "name": name,
        "command": "env > $MESOS_SANDBOX/env.txt; echo $$ > $MESOS_SANDBOX/pid; exec sleep 3600",
        "cpus": 1, "mem": 64, "disk": 10,
        "gang": true, "gangSize": size,
        "environmentVariables": [{"name": "GANTRY_TEST_MARKER", "value": c.marker_env()["GANTRY_TEST_MARKER"]}],
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        job[k] = v.clone();
    }
    job
}

/// The four ranks of `attempt` once all run; each with its environment read from its sandbox.
async fn running_ranks(
    c: &Cluster,
    name: &str,
    attempt: u64,
) -> Vec<(Value, BTreeMap<String, String>)> {
    let ranks = eventually(Duration::from_secs(60), "four running ranks", || async {
        let rs: Vec<Value> = runs(c, name)
            .await
            .into_iter()
            .filter(|r| r["attempt"] == attempt && r["state"] == "running")
            .collect();
        (rs.len() == 4).then_some(rs)
    })
    .await;
    let mut out = Vec::new();
    for r in ranks {
        let task = r["taskId"].as_str().expect("taskId").to_owned();
        let env = eventually(Duration::from_secs(20), "the rank's env.txt", || async {
            (0..2).find_map(|i| {
                let dir = c.sandbox(i, &gantry_proto::TaskId::from(task.as_str()).dir_name());
                let text = std::fs::read_to_string(dir.join("env.txt")).ok()?;
                let env: BTreeMap<String, String> = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                env.contains_key("RANK").then_some(env)
            })
        })
        .await;
        out.push((r, env));
    }
    out.sort_by_key(|(r, _)| r["gangRank"].as_u64());
    out
}

/// The ranks' variables agree with each other and with where the master put them.
fn assert_consistent(ranks: &[(Value, BTreeMap<String, String>)]) {
    let var = |k: usize, v: &str| ranks[k].1.get(v).cloned().unwrap_or_default();
    let rank0_host = ranks[0].0["host"].as_str().unwrap_or_default().to_owned();
    let port: u16 = var(0, "MASTER_PORT")
        .parse()
        .expect("MASTER_PORT is a port");
    assert!(
        (31000..=31099).contains(&port),
        "MASTER_PORT {port} from rank 0's range"
    );
    let hosts: Vec<String> = ranks
        .iter()
        .map(|(r, _)| r["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut per_agent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, (r, env)) in ranks.iter().enumerate() {
        assert_eq!(r["gangRank"], k as u64);
        assert_eq!(var(k, "RANK"), k.to_string(), "{env:?}");
        assert_eq!(var(k, "WORLD_SIZE"), "4");
        assert_eq!(var(k, "MASTER_ADDR"), rank0_host);
        assert_eq!(var(k, "MASTER_PORT"), port.to_string());
        assert_eq!(var(k, "GANTRY_GANG_HOSTS"), hosts.join(","));
        let agent = r["agentId"].as_str().unwrap_or_default().to_owned();
        let local: u64 = var(k, "LOCAL_RANK").parse().expect("LOCAL_RANK");
        per_agent.entry(agent).or_default().push(local);
    }
    assert_eq!(
        per_agent.len(),
        2,
        "4 ranks of 1 cpu over two 2-cpu agents: {per_agent:?}"
    );
    for locals in per_agent.values() {
        assert_eq!(locals, &[0, 1], "LOCAL_RANK counts the ranks on one agent");
    }
    let launched: BTreeSet<String> = ranks
        .iter()
        .map(|(r, _)| r["launchedAt"].to_string())
        .collect();
    assert_eq!(
        launched.len(),
        1,
        "all four launched in one pass: {launched:?}"
    );
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
}

fn pid_of(env_rank: &(Value, BTreeMap<String, String>), c: &Cluster) -> i32 {
    let task = env_rank.0["taskId"].as_str().unwrap_or_default();
    (0..2)
        .find_map(|i| {
            let dir = c.sandbox(i, &gantry_proto::TaskId::from(task).dir_name());
            std::fs::read_to_string(dir.join("pid")).ok()
        })
        .and_then(|p| p.trim().parse().ok())
        .expect("the rank wrote its pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_ranks_start_together_and_one_failure_restarts_all_four() {
    let mut c = Cluster::new();
    c.start_agent(0, &format!("cpus:2;mem:1024;disk:2000;{PORTS}"));
    c.start_agent(1, &format!("cpus:2;mem:1024;disk:2000;{PORTS}"));
    c.wait_agents(2).await;
    let job = gang_job(&c, "ddp", 4, json!({"retries": 1, "retryDelaySeconds": 1}));
    submit(&c, &job).await;

    let first = running_ranks(&c, "ddp", 0).await;
    assert_consistent(&first);
    let pids: Vec<i32> = first.iter().map(|r| pid_of(r, &c)).collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[1]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill rank 1");

    let second = running_ranks(&c, "ddp", 1).await;
    assert_consistent(&second);
    for (k, pid) in pids.iter().enumerate() {
        assert!(!alive(*pid), "rank {k} of the first attempt was ended");
    }
    let ended: Vec<Value> = runs(&c, "ddp")
        .await
        .into_iter()
        .filter(|r| r["attempt"] == 0)
        .collect();
    assert_eq!(ended.len(), 4, "{ended:?}");
    for r in &ended {
        assert_eq!(r["state"], "failed", "{r}");
        let msg = r["message"].as_str().unwrap_or_default();
        if r["gangRank"] == 1 {
            assert!(!msg.contains("ended with its gang"), "{r}");
        } else {
            assert!(msg.starts_with("ended with its gang: rank 1 failed"), "{r}");
        }
    }
    let job = c.get("/v1/scheduler/job/ddp").await;
    assert_eq!(job["gang"], true);
    assert_eq!(job["gangSize"], 4);
    assert_eq!(job["errorCount"], 0, "the run is still going: {job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_room_for_three_ranks_none_starts_and_the_run_says_why() {
    let mut c = Cluster::new();
    c.start_agent(0, &format!("cpus:2;mem:1024;disk:2000;{PORTS}"));
    c.start_agent(1, &format!("cpus:1;mem:1024;disk:2000;{PORTS}"));
    c.wait_agents(2).await;
    let job = gang_job(&c, "big", 4, json!({"retries": 0, "gangTimeoutSeconds": 6}));
    submit(&c, &job).await;

    let waiting = eventually(Duration::from_secs(20), "a waiting reason", || async {
        let rs = runs(&c, "big").await;
        let w = rs.first()?["waiting"].as_str()?.to_owned();
        (rs.len() == 4).then_some((rs, w))
    })
    .await;
    let (rs, reason) = waiting;
    assert!(
        reason.starts_with("gang of 4 needs 4 placements; only 3 fit: "),
        "{reason}"
    );
    assert!(reason.contains("cpus"), "says what is short: {reason}");
    for r in &rs {
        assert_eq!(r["state"], "queued", "no rank starts: {r}");
        assert_eq!(r["waiting"], reason.as_str());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(c.task_processes().is_empty(), "no rank's process runs");
    for r in runs(&c, "big").await {
        assert_eq!(r["state"], "queued", "still none started: {r}");
        assert!(r["taskId"].is_null(), "{r}");
    }

    let job = eventually(Duration::from_secs(30), "the gang's timeout", || async {
        let j = c.get("/v1/scheduler/job/big").await;
        (j["errorCount"] == 1).then_some(j)
    })
    .await;
    assert_eq!(job["gangTimeoutSeconds"], 6);
    let rs = runs(&c, "big").await;
    assert_eq!(rs.len(), 4);
    for r in &rs {
        assert_eq!(r["state"], "failed");
        assert!(r["taskId"].is_null(), "never launched: {r}");
        let msg = r["message"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("the gang could not be placed within gangTimeoutSeconds (6 s): gang of 4 needs 4 placements; only 3 fit"),
            "{msg}"
        );
    }
}
