//! Failover with the masters' shared ZooKeeper store: while a client creates, scales and deletes
//! apps on the leader, the leader is `kill -9`ed; another master leads, and every change that was
//! acknowledged (a 2xx answer, logged on the client side) is in the new leader's `/v2/apps`.
//! Several rounds, each killing the leader of the round before's survivors. The first leader's
//! task and a scheduled Chronos job are in every later leader's state too.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ha_client::{churn, client, send, Acks};
use support::ha_masters::HaMasters;
use support::zookeeper::Ensemble;
use support::{eventually, Cluster, CREDENTIALS};

const ROUNDS: usize = 4;

/// The apps `base` lists: id → instances.
async fn apps(base: &str) -> Option<BTreeMap<String, u64>> {
    let (user, pass) = CREDENTIALS.split_once(':')?;
    let r = client()
        .get(format!("{base}/v2/apps"))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    Some(
        v["apps"]
            .as_array()?
            .iter()
            .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["instances"].as_u64()?)))
            .collect(),
    )
}

/// Waits until the leader ZooKeeper names (not `not`) accepts a write; which, and how long.
async fn write_to_leader(m: &HaMasters, not: Option<usize>, id: &str) -> (usize, Duration) {
    let start = Instant::now();
    let i = eventually(
        Duration::from_secs(120),
        "a leader to accept writes",
        || async {
            let i = m.wait_leader(not, Duration::from_secs(120)).await;
            let app =
                json!({"id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01, "mem": 8});
            let s = send(
                reqwest::Method::POST,
                &format!("{}/v2/apps", m.url(i)),
                Some(app),
            )
            .await;
            (s == Some(201)).then_some(i)
        },
    )
    .await;
    (i, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_a_leader_kill_round_after_round() {
    let ens = Ensemble::start(3);
    let mut c = Cluster::unstarted();
    let mut m = HaMasters::start(
        &c,
        &ens.connect_string(),
        "/gantry",
        3,
        &["--zk-session-timeout", "3secs", "--quorum", "2"],
    );
    let (mut leader, _) = write_to_leader(&m, None, "/warm-up").await;

    // A task on the first leader's agent: every later leader knows it from the store.
    c.port = m.ports[leader];
    c.start_agent(0, "cpus:2;mem:512");
    c.wait_agents(1).await;
    let (s, body) = c
        .post(
            "/v2/apps",
            &json!({"id": "/sleepy", "cmd": "sleep 3600", "instances": 1, "cpus": 0.1,
                    "mem": 16, "env": c.marker_env()})
            .to_string(),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let task = c.wait_running("/sleepy", 1).await[0]["id"]
        .as_str()
        .expect("task id")
        .to_owned();

    // A scheduled Chronos job: every later leader has it (and its schedule) from the store.
    let (s, body) = c
        .post(
            "/v1/scheduler/iso8601",
            &json!({"name": "ha-job", "command": "true", "owner": "",
                    "schedule": "R/2030-01-01T00:00:00Z/PT1H"})
            .to_string(),
        )
        .await;
    assert_eq!(s, 204, "{body}");

    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let acks: Acks = Arc::default();
        let worker = tokio::spawn(churn(
            m.url(leader),
            round,
            {
                let marker = c.marker_env();
                move |id: &str| {
                    json!({"id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01,
                                   "mem": 8, "env": marker})
                }
            },
            acks.clone(),
        ));
        // Let some changes be acknowledged, then kill the leader in the middle of the churn.
        eventually(
            Duration::from_secs(60),
            "some acknowledged changes",
            || async { (acks.lock().expect("acks").len() >= 6).then_some(()) },
        )
        .await;
        m.kill(leader);
        let killed = Instant::now();
        let (unanswered, maybe) = worker.await.expect("the client's loop");
        let (next, _) = write_to_leader(&m, Some(leader), &format!("/probe{round}")).await;
        let took = killed.elapsed();
        times.push(took);
        println!("round {round}: leader {leader} killed, master {next} acknowledged a write after {took:?}");

        let state = apps(&m.url(next))
            .await
            .expect("the new leader lists its apps");
        let mut last: BTreeMap<String, Option<u64>> = BTreeMap::new();
        let log = acks.lock().expect("acks").clone();
        for (id, what) in &log {
            last.insert(id.clone(), *what);
        }
        for (id, what) in &last {
            match what {
                None => assert!(!state.contains_key(id), "{id} was deleted (acknowledged)"),
                Some(n) => {
                    let have = state.get(id).copied();
                    // The change that got no answer may have been made too.
                    let or = (*id == unanswered).then_some(maybe);
                    assert!(
                        have == Some(*n) || or == Some(have),
                        "{id}: acknowledged {n} instances, the new leader has {have:?} \
                         (unanswered: {or:?})"
                    );
                }
            }
        }
        assert!(log.len() >= 6, "round {round}: {} acks", log.len());
        assert!(state.contains_key("/sleepy"), "{state:?}");
        let tasks: Value = {
            let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
            client()
                .get(format!("{}/v2/apps/sleepy/tasks", m.url(next)))
                .basic_auth(user, Some(pass))
                .send()
                .await
                .expect("tasks")
                .json()
                .await
                .expect("tasks JSON")
        };
        let ids: Vec<&str> = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert!(
            ids.contains(&task.as_str()),
            "the first leader's task: {tasks}"
        );
        let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
        let jobs: Value = client()
            .get(format!("{}/v1/scheduler/jobs", m.url(next)))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .expect("jobs")
            .json()
            .await
            .expect("jobs JSON");
        let job = jobs
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j["name"] == "ha-job")
            .unwrap_or_else(|| panic!("the job is on the new leader: {jobs}"));
        assert_eq!(job["schedule"], "R/2030-01-01T00:00:00Z/PT1H", "{job}");
        // The killed master comes back (a standby) for the next round.
        m.start_one(leader);
        leader = next;
    }
    times.sort();
    println!("failover times over {ROUNDS} kills: {times:?}");
}
