//! Gang apps against a real cluster (issue 14 part 3, Marathon side): 4 instances over 2 agents
//! start together with consistent torchrun variables (each task writes its environment to its
//! sandbox); killing one rank's process ends all four and a whole new gang comes back; a scale
//! or a config change replaces the whole gang. With room for only 3 none starts,
//! `embed=app.waiting` says why, the timeout backs the app off, and the gang starts whole once an
//! agent with room joins.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{eventually, Cluster};

/// Distinct host port ranges per agent (nothing binds them; the master hands them out).
fn resources(i: usize, cpus: u32) -> String {
    let base = 31000 + i * 200;
    format!(
        "cpus:{cpus};mem:1024;disk:2000;ports:[{base}-{}]",
        base + 99
    )
}

/// A gang app of `n` instances of 1 cpu that write their environment and pid to the sandbox.
fn gang_app(c: &Cluster, id: &str, n: u32, extra: Value) -> Value {
    let mut app = json!({
        "id": id,
        "cmd": "env > $MESOS_SANDBOX/env.txt; echo $$ > $MESOS_SANDBOX/pid; exec sleep 3600",
        "cpus": 1, "mem": 64, "disk": 10, "instances": n,
        "gang": true, "backoffSeconds": 1,
        "env": c.marker_env(),
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        app[k] = v.clone();
    }
    app
}

async fn create(c: &Cluster, app: &Value) {
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{app}: {body}");
}

/// One running instance with the environment its process saw.
struct Rank {
    task: Value,
    env: BTreeMap<String, String>,
    agent: usize,
}

impl Rank {
    fn var(&self, k: &str) -> String {
        self.env.get(k).cloned().unwrap_or_default()
    }
}

/// The `n` instances of `app` once all run and none is in `not`, by RANK.
async fn running_gang(c: &Cluster, app: &str, n: usize, not: &BTreeSet<String>) -> Vec<Rank> {
    let tasks = eventually(
        Duration::from_secs(120),
        &format!("{n} running instances of {app}"),
        || async {
            let t = c.tasks(app).await;
            let fresh = t.iter().all(|t| {
                t["state"] == "TASK_RUNNING" && !not.contains(t["id"].as_str().unwrap_or(""))
            });
            (t.len() == n && fresh).then_some(t)
        },
    )
    .await;
    let mut out = Vec::new();
    for task in tasks {
        let id = task["id"].as_str().expect("task id").to_owned();
        let dir = gantry_proto::TaskId::from(id.as_str()).dir_name();
        let (env, agent) = eventually(Duration::from_secs(30), "the task's env.txt", || async {
            (0..3).find_map(|i| {
                let text = std::fs::read_to_string(c.sandbox(i, &dir).join("env.txt")).ok()?;
                let env: BTreeMap<String, String> = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                env.contains_key("RANK").then_some((env, i))
            })
        })
        .await;
        out.push(Rank { task, env, agent });
    }
    out.sort_by_key(|r| r.var("RANK").parse::<usize>().unwrap_or(usize::MAX));
    out
}

/// The ranks' variables agree with each other and with where the master put them.
fn assert_consistent(ranks: &[Rank], agents: usize) {
    let n = ranks.len();
    let port: u16 = ranks[0]
        .var("MASTER_PORT")
        .parse()
        .expect("MASTER_PORT is a port");
    let range = 31000 + ranks[0].agent as u16 * 200;
    assert!(
        (range..range + 100).contains(&port),
        "MASTER_PORT {port} from rank 0's agent's range"
    );
    let port0 = ranks[0].task["ports"][0].as_u64();
    assert_ne!(
        port0,
        Some(u64::from(port)),
        "MASTER_PORT is not the app's PORT0"
    );
    let hosts: Vec<String> = ranks
        .iter()
        .map(|r| r.task["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut per_agent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, r) in ranks.iter().enumerate() {
        assert_eq!(r.var("RANK"), k.to_string(), "{:?}", r.env);
        assert_eq!(r.var("WORLD_SIZE"), n.to_string());
        assert_eq!(r.var("MASTER_ADDR"), hosts[0]);
        assert_eq!(r.var("MASTER_PORT"), port.to_string());
        assert_eq!(r.var("GANTRY_GANG_HOSTS"), hosts.join(","));
        let agent = r.task["slaveId"].as_str().unwrap_or_default().to_owned();
        let local: u64 = r.var("LOCAL_RANK").parse().expect("LOCAL_RANK");
        per_agent.entry(agent).or_default().push(local);
    }
    assert_eq!(per_agent.len(), agents, "{per_agent:?}");
    for (agent, locals) in &per_agent {
        let expect: Vec<u64> = (0..locals.len() as u64).collect();
        assert_eq!(locals, &expect, "LOCAL_RANK counts the ranks on {agent}");
        for r in ranks
            .iter()
            .filter(|r| r.task["slaveId"].as_str() == Some(agent))
        {
            assert_eq!(r.var("LOCAL_WORLD_SIZE"), locals.len().to_string());
        }
    }
    let staged: BTreeSet<String> = ranks
        .iter()
        .map(|r| r.task["stagedAt"].to_string())
        .collect();
    assert_eq!(
        staged.len(),
        1,
        "all launched in one controller run: {staged:?}"
    );
}

/// Waits until no deployment is in progress (an app is locked while one is).
async fn no_deployments(c: &Cluster) {
    eventually(Duration::from_secs(60), "deployments to end", || async {
        let d = c.get("/v2/deployments").await;
        d.as_array().is_some_and(|d| d.is_empty()).then_some(())
    })
    .await;
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
}

fn pid_of(c: &Cluster, r: &Rank) -> i32 {
    let id = r.task["id"].as_str().unwrap_or_default();
    let dir = gantry_proto::TaskId::from(id).dir_name();
    std::fs::read_to_string(c.sandbox(r.agent, &dir).join("pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("the rank wrote its pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_start_together_and_one_killed_relaunches_the_whole_gang() {
    let mut c = Cluster::new();
    c.start_agent(0, &resources(0, 2));
    c.start_agent(1, &resources(1, 2));
    c.wait_agents(2).await;
    create(&c, &gang_app(&c, "/ddp", 4, json!({}))).await;

    let first = running_gang(&c, "/ddp", 4, &BTreeSet::new()).await;
    assert_consistent(&first, 2);
    let app = c.get("/v2/apps/ddp").await;
    assert_eq!(app["app"]["gang"], true, "{app}");
    assert_eq!(app["app"]["upgradeStrategy"]["maximumOverCapacity"], 0.0);

    let pids: Vec<i32> = first.iter().map(|r| pid_of(&c, r)).collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[1]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill rank 1");

    let old: BTreeSet<String> = first
        .iter()
        .map(|r| r.task["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let second = running_gang(&c, "/ddp", 4, &old).await;
    assert_consistent(&second, 2);
    for (k, pid) in pids.iter().enumerate() {
        assert!(!alive(*pid), "rank {k} of the first gang was ended");
    }
    let failure = c.get("/v2/apps/ddp").await["app"]["lastTaskFailure"].clone();
    assert_eq!(
        failure["taskId"], first[1].task["id"],
        "the killed rank is the app's last failure: {failure}"
    );

    // A scale replaces the whole gang: a gang of 2 with WORLD_SIZE 2, none of the old ranks.
    no_deployments(&c).await;
    let r = c
        .request(reqwest::Method::PUT, "/v2/apps/ddp")
        .header("content-type", "application/json")
        .body(json!({"instances": 2}).to_string())
        .send()
        .await
        .expect("PUT reaches the master");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let old: BTreeSet<String> = second
        .iter()
        .map(|r| r.task["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let scaled = running_gang(&c, "/ddp", 2, &old).await;
    assert_eq!(scaled[0].var("WORLD_SIZE"), "2");
    assert_eq!(scaled[1].var("RANK"), "1");
    assert_eq!(scaled[0].var("MASTER_ADDR"), scaled[1].var("MASTER_ADDR"));

    // A config change replaces the whole gang too, and its deployment ends.
    no_deployments(&c).await;
    let mut env = c.marker_env();
    env["GANG_CONFIG"] = json!("2");
    let r = c
        .request(reqwest::Method::PUT, "/v2/apps/ddp")
        .header("content-type", "application/json")
        .body(json!({ "env": env }).to_string())
        .send()
        .await
        .expect("PUT reaches the master");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let old: BTreeSet<String> = scaled
        .iter()
        .map(|r| r.task["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let changed = running_gang(&c, "/ddp", 2, &old).await;
    assert_consistent(&changed, 2);
    assert!(changed.iter().all(|r| r.var("GANG_CONFIG") == "2"));
    no_deployments(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_room_for_three_none_starts_and_the_app_says_why() {
    let mut c = Cluster::new();
    c.start_agent(0, &resources(0, 2));
    c.start_agent(1, &resources(1, 1));
    c.wait_agents(2).await;
    // Marathon's 422 naming the field.
    let mut bad = gang_app(&c, "/bad", 2, json!({"gangTimeoutSeconds": 5}));
    bad["gang"] = json!(false);
    let (status, body) = c.post("/v2/apps", &bad.to_string()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/gangTimeoutSeconds", "{body}");

    let app = gang_app(
        &c,
        "/big",
        4,
        json!({"gangTimeoutSeconds": 5, "backoffSeconds": 10}),
    );
    create(&c, &app).await;

    let reason = eventually(Duration::from_secs(60), "a waiting reason", || async {
        let a = c.get("/v2/apps/big?embed=app.waiting").await;
        a["app"]["waiting"]["reason"].as_str().map(str::to_owned)
    })
    .await;
    assert!(
        reason.contains("gang of 4 needs 4 placements; only 3 fit: "),
        "{reason}"
    );
    assert!(reason.contains("cpus"), "says what is short: {reason}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(c.task_processes().is_empty(), "no instance's process runs");
    assert!(c.tasks("/big").await.is_empty(), "no task launched");

    let timed_out = eventually(Duration::from_secs(60), "the gang's timeout", || async {
        let a = c.get("/v2/apps/big?embed=app.waiting").await;
        let r = a["app"]["waiting"]["reason"].as_str()?.to_owned();
        r.starts_with("the gang could not be placed within gangTimeoutSeconds (5 s): ")
            .then_some(r)
    })
    .await;
    assert!(timed_out.contains("only 3 fit"), "{timed_out}");
    assert!(c.tasks("/big").await.is_empty(), "still none launched");

    // Room for the fourth: the gang starts whole.
    c.start_agent(2, &resources(2, 1));
    c.wait_agents(3).await;
    let ranks = running_gang(&c, "/big", 4, &BTreeSet::new()).await;
    assert_consistent(&ranks, 3);
    let a = c.get("/v2/apps/big?embed=app.waiting").await;
    assert!(a["app"]["waiting"].is_null(), "nothing waits: {a}");
}
