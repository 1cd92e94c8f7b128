//! Issue 12's whole-cluster failover: a real 3-server ZooKeeper ensemble, three HA masters
//! (`--zk`, `--quorum 2`, `--zk-session-timeout 3secs`) and two agents given the ensemble's
//! `zk://` URL as their master (they follow the leader by themselves).
//!
//! `three_masters_two_agents_survive_ten_leader_kills`: a long-running app (2 instances) and ten
//! Chronos jobs of a 2-second run every 5 s (`missedRuns.catchUp: all`); then, round after round
//! (`GANTRY_HA_ROUNDS`, default 10: about 80 s on the loaded 2-core machine, 20 rounds about
//! 160 s), a client creates, scales and deletes apps on the leader, logging every acknowledged
//! answer, the leader is `kill -9`ed, the time until another master acknowledges a write is
//! measured (and printed, never asserted), and the killed master is started again as a standby.
//! After each round every acknowledged change is in the new leader's state, both agents are
//! connected to it, and the app's two tasks are the same ones, still TASK_RUNNING. At the end
//! every job's run history holds each slot of its schedule from the first to the last due one
//! exactly once (with `catchUp: all` none may be missing), and the slots the runs themselves
//! wrote match the history.
//!
//! `a_pymesos_framework_given_zk_finds_the_leader_and_follows_a_failover`: the unmodified pymesos
//! 0.3.15 framework (`py/pymesos_framework.py`, failover mode) given `zk://...`: it subscribes to
//! the leader, runs its task; the leader is `kill -9`ed; pymesos's detector sees the new leader in
//! ZooKeeper, re-subscribes with its framework id, reconciles, hears TASK_RUNNING, then kills its
//! task and tears down.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ha_client::{churn, get_json, send, Acks};
use support::ha_masters::HaMasters;
use support::zookeeper::Ensemble;
use support::{eventually, Cluster, CREDENTIALS};

const AGENT: &str = "cpus:4;mem:2048;disk:4000;ports:[31000-31099]";
const PATH: &str = "/gantry";
const JOBS: usize = 10;
const PERIOD_MS: i64 = 5000;
const MASTER_FLAGS: [&str; 4] = ["--zk-session-timeout", "3secs", "--quorum", "2"];

fn rounds() -> usize {
    std::env::var("GANTRY_HA_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// An app of the client's loop: its instances never fit an agent (a constraint no host meets),
/// so scaling is a change of state only and the loaded machine runs no extra processes.
fn churn_app(id: &str, marker: &Value) -> Value {
    json!({"id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01, "mem": 8,
           "constraints": [["hostname", "CLUSTER", "no-such-host"]], "env": marker})
}

/// Waits until the leader ZooKeeper names (not `not`) acknowledges a write; which, and how long.
async fn write_to_leader(
    m: &HaMasters,
    not: Option<usize>,
    id: &str,
    marker: &Value,
) -> (usize, Duration) {
    let start = Instant::now();
    let i = eventually(
        Duration::from_secs(120),
        "a leader to accept writes",
        || async {
            let i = m.wait_leader(not, Duration::from_secs(120)).await;
            let s = send(
                reqwest::Method::POST,
                &format!("{}/v2/apps", m.url(i)),
                Some(churn_app(id, marker)),
            )
            .await;
            (s == Some(201)).then_some(i)
        },
    )
    .await;
    (i, start.elapsed())
}

/// Asserts that every acknowledged change of `log` is in `base`'s `/v2/apps` (the one change
/// that got no answer may or may not be).
async fn assert_acks_kept(
    base: &str,
    log: &[(String, Option<u64>)],
    unanswered: (String, Option<u64>),
) {
    let v = get_json(base, "/v2/apps")
        .await
        .expect("the new leader lists its apps");
    let state: BTreeMap<String, u64> = v["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["instances"].as_u64()?)))
        .collect();
    let mut last: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    for (id, what) in log {
        last.insert(id, *what);
    }
    for (id, what) in last {
        let have = state.get(id).copied();
        let or = (id == unanswered.0).then_some(unanswered.1);
        let ok = match what {
            None => have.is_none(),
            Some(n) => have == Some(n),
        };
        // The change that got no answer may have been made too.
        let maybe = or.is_some_and(|w| have == w);
        assert!(
            ok || maybe,
            "{id}: acknowledged {what:?} instances (None: deleted), the new leader has {have:?} \
             (unanswered: {or:?})"
        );
    }
}

/// How many agents `base` lists as connected and active.
async fn connected_agents(base: &str) -> Option<usize> {
    let s = get_json(base, "/master/slaves").await?;
    Some(
        s["slaves"]
            .as_array()?
            .iter()
            .filter(|a| a["connected"] == true && a["active"] == true)
            .count(),
    )
}

/// The app's tasks on `base`: (id, state), sorted.
async fn task_states(base: &str, app: &str) -> Option<Vec<(String, String)>> {
    let v = get_json(base, &format!("/v2/apps{app}/tasks")).await?;
    let mut out: Vec<(String, String)> = v["tasks"]
        .as_array()?
        .iter()
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.to_owned(),
                t["state"].as_str()?.to_owned(),
            ))
        })
        .collect();
    out.sort();
    Some(out)
}

/// How many runs of the jobs `base` has queued, launched or running now.
async fn live_runs(base: &str) -> usize {
    let mut n = 0;
    for i in 0..JOBS {
        if let Some(v) = get_json(base, &format!("/v1/scheduler/job/tick{i}/runs")).await {
            n += v["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    ["queued", "launched", "running"].contains(&r["state"].as_str().unwrap_or(""))
                })
                .count();
        }
    }
    n
}

/// A job's scheduled runs on `base`: occurrence → slot (ms), one entry per run (its attempts
/// share it).
async fn scheduled_runs(base: &str, job: &str) -> Option<Vec<(u64, i64)>> {
    let v = get_json(base, &format!("/v1/scheduler/job/{job}/runs")).await?;
    let mut by_run: BTreeMap<u64, i64> = BTreeMap::new();
    for r in v["runs"].as_array()? {
        if r["trigger"] != "schedule" {
            continue;
        }
        let at = chrono::DateTime::parse_from_rfc3339(r["scheduledAt"].as_str()?).ok()?;
        by_run.insert(r["run"].as_u64()?, at.timestamp_millis());
    }
    Some(by_run.into_iter().collect())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_two_agents_survive_ten_leader_kills() {
    let rounds = rounds();
    let ens = Ensemble::start(3);
    let mut c = Cluster::unstarted();
    let marker = c.marker_env();
    let mut m = HaMasters::start(&c, &ens.connect_string(), PATH, 3, &MASTER_FLAGS);
    let (mut leader, _) = write_to_leader(&m, None, "/warm-up", &marker).await;
    c.port = m.ports[leader];
    c.set_agent_master(&ens.url(PATH));
    c.start_agent(0, AGENT);
    c.start_agent(1, AGENT);
    eventually(
        Duration::from_secs(90),
        "two agents on the leader",
        || async { (connected_agents(&m.url(leader)).await? == 2).then_some(()) },
    )
    .await;

    // The long-running app: its two tasks must outlive every leader.
    let (s, body) = c
        .post(
            "/v2/apps",
            &json!({"id": "/long", "cmd": "sleep 3600", "instances": 2, "cpus": 0.1,
                    "mem": 16, "env": marker})
            .to_string(),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let long: Vec<(String, String)> = eventually(
        Duration::from_secs(60),
        "the long-running app's two tasks running",
        || async {
            let t = task_states(&m.url(leader), "/long").await?;
            (t.len() == 2 && t.iter().all(|(_, s)| s == "TASK_RUNNING")).then_some(t)
        },
    )
    .await;

    // Ten jobs, a 2-second run every 5 s from a whole second a few seconds ahead; each run
    // first appends its slot to the job's file, so that the file shows every execution.
    let slots_dir = c.dir.path().join("slots");
    std::fs::create_dir_all(&slots_dir).expect("slots dir");
    let start_ms = (chrono::Utc::now().timestamp() + 5) * 1000;
    let start = chrono::DateTime::from_timestamp_millis(start_ms).expect("time");
    let schedule = format!("R/{}/PT5S", start.format("%Y-%m-%dT%H:%M:%SZ"));
    for i in 0..JOBS {
        let job = json!({"name": format!("tick{i}"), "owner": "", "cpus": 0.05, "mem": 16,
            "schedule": schedule, "missedRuns": {"catchUp": "all"}, "command": format!("echo $CHRONOS_JOB_RUN_TIME >> {}/tick{i}; sleep 2", slots_dir.display()),
            "environmentVariables": [{"name": "GANTRY_TEST_MARKER", "value": c.marker}]});
        let (s, body) = c.post("/v1/scheduler/iso8601", &job.to_string()).await;
        assert_eq!(s, 204, "tick{i}: {body}");
    }

    let mut times = Vec::new();
    for round in 0..rounds {
        let acks: Acks = Arc::default();
        let worker = tokio::spawn(churn(
            m.url(leader),
            round,
            {
                let marker = marker.clone();
                move |id: &str| churn_app(id, &marker)
            },
            acks.clone(),
        ));
        // Let some changes be acknowledged, then kill the leader in the middle of the churn, at a
        // different moment of the jobs' 5-second period each round.
        let churning = Instant::now();
        let pause = Duration::from_millis(1000 + 1300 * (round as u64 % 4));
        eventually(
            Duration::from_secs(60),
            "some acknowledged changes",
            || async {
                (acks.lock().expect("acks").len() >= 6 && churning.elapsed() >= pause).then_some(())
            },
        )
        .await;
        let live = live_runs(&m.url(leader)).await;
        m.kill(leader);
        let killed = Instant::now();
        let unanswered = worker.await.expect("the client's loop");
        let (next, _) = write_to_leader(&m, Some(leader), &format!("/probe{round}"), &marker).await;
        let took = killed.elapsed();
        times.push(took);
        let log = acks.lock().expect("acks").clone();
        println!(
            "round {round}: leader {leader} killed after {} acks with {live} job runs live; \
             master {next} acknowledged a write after {took:?}",
            log.len()
        );
        let base = m.url(next);
        assert_acks_kept(&base, &log, unanswered).await;

        // The agents re-registered with the new leader, and with them the same two tasks.
        eventually(
            Duration::from_secs(90),
            "both agents connected to the new leader",
            || async { (connected_agents(&base).await? == 2).then_some(()) },
        )
        .await;
        eventually(
            Duration::from_secs(60),
            "the long-running app's same two tasks TASK_RUNNING on the new leader",
            || async { (task_states(&base, "/long").await? == long).then_some(()) },
        )
        .await;

        // The killed master comes back, a standby, and is in the group before the next kill.
        m.start_one(leader);
        eventually(
            Duration::from_secs(90),
            "three masters in the group",
            || async { (m.znodes().await?.len() == 3).then_some(()) },
        )
        .await;
        leader = next;
    }
    let survivor = m.url(leader);

    // Every slot due by now, each run once.
    let cutoff = chrono::Utc::now().timestamp_millis() - 1000;
    let last_slot = start_ms + (cutoff - start_ms).max(0) / PERIOD_MS * PERIOD_MS;
    let expected: BTreeSet<i64> = (start_ms..=last_slot).step_by(PERIOD_MS as usize).collect();
    let histories = eventually(
        Duration::from_secs(120),
        "every job's runs of every slot due",
        || async {
            let mut all = Vec::new();
            for i in 0..JOBS {
                let runs = scheduled_runs(&survivor, &format!("tick{i}")).await?;
                let slots: BTreeSet<i64> = runs.iter().map(|&(_, s)| s).collect();
                if !expected.is_subset(&slots) {
                    return None;
                }
                all.push(runs);
            }
            Some(all)
        },
    )
    .await;
    for (i, runs) in histories.iter().enumerate() {
        let mut count: BTreeMap<i64, usize> = BTreeMap::new();
        for &(_, slot) in runs {
            *count.entry(slot).or_default() += 1;
        }
        let doubled: Vec<_> = count.iter().filter(|(_, &n)| n > 1).collect();
        assert!(doubled.is_empty(), "tick{i}: slots run twice: {doubled:?}");
        assert!(
            count
                .keys()
                .all(|s| *s >= start_ms && (s - start_ms) % PERIOD_MS == 0),
            "tick{i}: a run off the schedule: {count:?}"
        );
    }
    // What ran: every slot of the history executed once (a run in flight at the end may have
    // written its slot already: only slots up to the last one the history holds count).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, runs) in histories.iter().enumerate() {
        let text = std::fs::read_to_string(slots_dir.join(format!("tick{i}"))).unwrap_or_default();
        let mut ran: Vec<i64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        ran.sort_unstable();
        let mut recorded: Vec<i64> = runs.iter().map(|&(_, s)| s).collect();
        recorded.sort_unstable();
        let newest = recorded.last().copied().unwrap_or(0);
        ran.retain(|&s| s <= newest);
        assert_eq!(
            ran, recorded,
            "tick{i}: executions (left) against the run history (right)"
        );
    }

    times.sort();
    println!(
        "ha_cluster: {rounds} leader kills, failover (kill -9 to first acknowledged write) p50 \
         {:.2} s, max {:.2} s, min {:.2} s; {} slots x {JOBS} jobs each run once",
        percentile(&times, 0.5).as_secs_f64(),
        times.last().expect("a round").as_secs_f64(),
        times[0].as_secs_f64(),
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pymesos_framework_given_zk_finds_the_leader_and_follows_a_failover() {
    let py = support::python();
    let ens = Ensemble::start(3);
    let mut c = Cluster::unstarted();
    let marker = c.marker_env();
    let mut m = HaMasters::start(&c, &ens.connect_string(), PATH, 3, &MASTER_FLAGS);
    let (leader, _) = write_to_leader(&m, None, "/warm-up", &marker).await;
    c.port = m.ports[leader];
    c.set_agent_master(&ens.url(PATH));
    c.start_agent(0, AGENT);
    eventually(
        Duration::from_secs(90),
        "the agent on the leader",
        || async { (connected_agents(&m.url(leader)).await? == 1).then_some(()) },
    )
    .await;

    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/pymesos_framework.py");
    let flags = tempfile::tempdir().expect("tempdir");
    let flag_dir = flags.path().to_str().expect("utf-8").to_owned();
    let zk_url = ens.url(PATH);
    let child = tokio::process::Command::new(py)
        .arg(script)
        .args([
            zk_url.as_str(),
            user,
            pass,
            &c.marker,
            "failover",
            &flag_dir,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the pymesos framework");
    let running = flags.path().join("running");
    eventually(
        Duration::from_secs(60),
        "the pymesos task running",
        || async { running.exists().then_some(()) },
    )
    .await;

    m.kill(leader);
    let killed = Instant::now();
    let (next, _) = write_to_leader(&m, Some(leader), "/probe", &marker).await;
    println!(
        "pymesos: leader {leader} killed; master {next} acknowledged a write after {:?}",
        killed.elapsed()
    );
    eventually(
        Duration::from_secs(90),
        "the agent on the new leader",
        || async { (connected_agents(&m.url(next)).await? == 1).then_some(()) },
    )
    .await;
    std::fs::write(flags.path().join("agents"), "").expect("flag");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the framework ends within 120 s")
        .expect("its output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("pymesos framework: ok"),
        "pymesos across a leader kill:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log_tails(40)
    );
    let rereg = stdout
        .lines()
        .find(|l| l.starts_with("reregistered"))
        .unwrap_or_else(|| panic!("pymesos re-subscribed: {stdout}"));
    assert!(
        rereg.contains(&m.ports[next].to_string()),
        "re-subscribed to the new leader (port {}): {rereg}",
        m.ports[next]
    );
    assert!(
        stdout.contains("TASK_RUNNING REASON_RECONCILIATION"),
        "{stdout}"
    );
    println!("pymesos followed the failover from master {leader} to master {next}");
}
