//! No run missed or doubled across master crashes (issue 9, Chronos's Jepsen findings): ten jobs
//! due every two seconds, each run appending its slot to a file, while the master is `kill -9`ed
//! and restarted every few seconds for a minute. With `missedRuns.catchUp: all` every slot must
//! appear exactly once. A three-job DAG triggered during the kills completes in order, each child
//! once.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:2048;disk:4000;ports:[31000-31099]";
const JOBS: usize = 10;
const SLOTS: i64 = 30;
const PERIOD_MS: i64 = 2000;

async fn post(c: &Cluster, path: &str, body: Value) -> u16 {
    let r = c
        .request(Method::POST, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST reaches the master");
    r.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slot_runs_exactly_once_while_the_master_is_killed() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let dir = c.agent_dir(0).join("slots");
    std::fs::create_dir_all(&dir).expect("slots dir");
    // The first slot a few seconds ahead, on a whole second.
    let start_ms = (chrono::Utc::now().timestamp() + 4) * 1000;
    let start = chrono::DateTime::from_timestamp_millis(start_ms).expect("time");
    let schedule = format!("R{SLOTS}/{}/PT2S", start.format("%Y-%m-%dT%H:%M:%SZ"));
    for i in 0..JOBS {
        let job = json!({"name": format!("tick{i}"), "owner": "", "cpus": 0.05, "mem": 16,
            "schedule": schedule, "missedRuns": {"catchUp": "all"},
            "command": format!("echo $CHRONOS_JOB_RUN_TIME >> {}/tick{i}", dir.display())});
        assert_eq!(post(&c, "/v1/scheduler/iso8601", job).await, 204);
    }
    let dag = dir.join("dag");
    for (name, parents) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        let mut j = json!({"name": format!("dag-{name}"), "owner": "", "cpus": 0.05, "mem": 16,
            "command": format!("sleep 1; echo {name} >> {}", dag.display())});
        let path = match parents {
            Some(p) => {
                j["parents"] = json!([format!("dag-{p}")]);
                "/v1/scheduler/dependency"
            }
            None => {
                j["schedule"] = json!("R/2099-01-01T00:00:00Z/P1D");
                "/v1/scheduler/iso8601"
            }
        };
        assert_eq!(post(&c, path, j).await, 204);
    }

    // Kill and restart the master every few seconds until past the last slot.
    let end = Instant::now()
        + Duration::from_millis(
            (start_ms - chrono::Utc::now().timestamp_millis()).max(0) as u64
                + (SLOTS * PERIOD_MS) as u64,
        );
    let mut kills = 0;
    let mut dag_triggered = false;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(2500 + (kills % 3) * 700)).await;
        if !dag_triggered && kills == 2 {
            let r = c
                .request(Method::PUT, "/v1/scheduler/job/dag-a")
                .send()
                .await;
            assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(204));
            dag_triggered = true;
        }
        c.kill_master();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.start_master();
    }
    assert!(kills >= 10, "only {kills} kills");
    c.wait_agents(1).await;

    // Every job ends with every slot, each once.
    let expected: Vec<i64> = (0..SLOTS).map(|k| start_ms + k * PERIOD_MS).collect();
    let files = eventually(
        Duration::from_secs(60),
        "every slot of every job",
        || async {
            let mut all = BTreeMap::new();
            for i in 0..JOBS {
                let text =
                    std::fs::read_to_string(dir.join(format!("tick{i}"))).unwrap_or_default();
                let slots: Vec<i64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                if slots.len() < SLOTS as usize {
                    return None;
                }
                all.insert(i, slots);
            }
            Some(all)
        },
    )
    .await;
    // Late duplicates would arrive after the last slot: give them a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, _) in files {
        let text = std::fs::read_to_string(dir.join(format!("tick{i}"))).unwrap_or_default();
        let mut slots: Vec<i64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        slots.sort_unstable();
        assert_eq!(
            slots, expected,
            "tick{i}: every slot exactly once over {kills} master kills"
        );
    }
    let order = eventually(Duration::from_secs(30), "the DAG", || async {
        let t = std::fs::read_to_string(&dag).unwrap_or_default();
        (t.lines().count() >= 3).then_some(t)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(std::fs::read_to_string(&dag).unwrap_or(order), "a\nb\nc\n");
}
