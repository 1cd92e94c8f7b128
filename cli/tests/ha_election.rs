//! Three real masters on a real 3-node ZooKeeper ensemble (`--zk`): they elect exactly one leader
//! in Mesos's `json.info_` layout, a `kill -9`ed leader is replaced, a leader stopped past its
//! session timeout refuses changes when it runs again, and with ZooKeeper down entirely the leader
//! refuses changes (503, in Marathon's shape), keeps serving reads, and a leader serves writes
//! again once the ensemble is back.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::ha_masters::HaMasters;
use support::zookeeper::Ensemble;
use support::{eventually, Cluster};

/// A client that does not follow redirects (a standby may answer 307).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `POST /v2/apps` of a small app to `base`; the status and body (None: no answer).
async fn create_app(c: &Cluster, base: &str, id: &str) -> Option<(u16, Value)> {
    create_app_with(base, id, c.marker_env()).await
}

async fn create_app_with(base: &str, id: &str, env: Value) -> Option<(u16, Value)> {
    let (user, pass) = support::CREDENTIALS.split_once(':')?;
    let app = json!({
        "id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01, "mem": 8, "env": env,
    });
    let r = no_redirects()
        .post(format!("{base}/v2/apps"))
        .basic_auth(user, Some(pass))
        .json(&app)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

/// The ids of the apps `base` lists.
async fn app_ids(base: &str) -> Option<Vec<String>> {
    let (user, pass) = support::CREDENTIALS.split_once(':')?;
    let r = no_redirects()
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
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

async fn state_status(base: &str) -> Option<u16> {
    let (user, pass) = support::CREDENTIALS.split_once(':')?;
    let r = no_redirects()
        .get(format!("{base}/master/state"))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

/// Waits until the master ZooKeeper names the leader (other than `not`) accepts a write (an app
/// `id` created); which master, and how long that took. ZooKeeper is asked again on every try: a
/// znode of a master's earlier run may lead for a moment (until its session expires).
async fn write_to_leader(
    c: &Cluster,
    m: &HaMasters,
    not: Option<usize>,
    id: &str,
) -> (usize, Duration) {
    let start = Instant::now();
    let i = eventually(
        Duration::from_secs(120),
        &format!("a leader other than {not:?} to accept writes"),
        || async {
            let i = m.wait_leader(not, Duration::from_secs(120)).await;
            (create_app(c, &m.url(i), id).await?.0 == 201).then_some(i)
        },
    )
    .await;
    (i, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_elect_one_leader_and_a_killed_leader_is_replaced() {
    let ens = Ensemble::start(3);
    let mut c = Cluster::unstarted();
    let mut m = HaMasters::start(
        &c,
        &ens.connect_string(),
        "/gantry/ha",
        3,
        &["--zk-session-timeout", "3secs", "--quorum", "2"],
    );
    // Every master is in the group, each znode a MasterInfo that names one of them.
    let nodes = eventually(
        Duration::from_secs(60),
        "three json.info_ znodes",
        || async {
            let n = m.znodes().await?;
            (n.len() == 3).then_some(n)
        },
    )
    .await;
    let mut seen = Vec::new();
    for (name, data) in &nodes {
        assert!(name.starts_with("json.info_"), "{name}");
        let info: gantry_daemon::masters::MasterInfo =
            serde_json::from_slice(data).expect("each znode holds MasterInfo JSON");
        assert_eq!(info.version, "1.11.0");
        assert_eq!(info.address.ip, "127.0.0.1");
        assert_eq!(info.pid, format!("master@127.0.0.1:{}", info.port));
        seen.push(
            m.index_of(&info)
                .expect("the znode names one of the masters"),
        );
        let v: Value = serde_json::from_slice(data).expect("JSON");
        assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2]);

    // Exactly one of them leads: it answers /master/state itself, the others do not.
    let (leader, _) = write_to_leader(&c, &m, None, "/first").await;
    for i in 0..3 {
        let s = eventually(Duration::from_secs(20), "an answer", || {
            let u = m.url(i);
            async move { state_status(&u).await }
        })
        .await;
        assert_eq!(
            s == 200,
            i == leader,
            "master {i} answered /master/state {s}"
        );
        if i != leader {
            // A standby redirects Mesos's endpoints and forwards Marathon's to the leader.
            assert_eq!(s, 307, "master {i}");
            let id = format!("/via-standby-{i}");
            let r = create_app(&c, &m.url(i), &id)
                .await
                .expect("the standby answers");
            assert_eq!(r.0, 201, "{:?}", r.1);
            let on_leader = app_ids(&m.url(leader))
                .await
                .expect("the leader lists apps");
            assert!(on_leader.contains(&id), "{on_leader:?}");
        }
    }

    // An agent on the leader, a task running.
    c.port = m.ports[leader];
    c.start_agent(0, "cpus:2;mem:512");
    c.wait_agents(1).await;

    // kill -9 of the leader: another master leads and accepts writes.
    m.kill(leader);
    let killed = Instant::now();
    let (next, _) = write_to_leader(&c, &m, Some(leader), "/after-failover").await;
    let took = killed.elapsed();
    println!("failover: leader killed to first acknowledged write on the new leader: {took:?}");
    let ids = app_ids(&m.url(next))
        .await
        .expect("the new leader lists apps");
    assert!(ids.contains(&"/after-failover".to_string()), "{ids:?}");
    // The survivors still agree on one leader.
    for i in (0..3).filter(|&i| i != leader) {
        let s = eventually(Duration::from_secs(20), "an answer", || {
            let u = m.url(i);
            async move { state_status(&u).await }
        })
        .await;
        assert_eq!(s == 200, i == next, "master {i} answered /master/state {s}");
    }
    // The killed master comes back as a standby: the leader stays.
    m.start_one(leader);
    eventually(Duration::from_secs(60), "three znodes again", || async {
        (m.znodes().await?.len() == 3).then_some(())
    })
    .await;
    assert_eq!(m.wait_leader(None, Duration::from_secs(30)).await, next);

    // DELETE /v2/leader abdicates, as Marathon's does: the answer, then another master leads and
    // the one that stepped down comes back as a standby.
    let (user, pass) = support::CREDENTIALS.split_once(':').expect("credentials");
    let r = no_redirects()
        .delete(format!("{}/v2/leader", m.url(next)))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .expect("DELETE /v2/leader");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body, json!({"message": "Leadership abdicated"}));
    let (third, _) = write_to_leader(&c, &m, Some(next), "/after-abdication").await;
    eventually(
        Duration::from_secs(60),
        "the abdicated master back in the group",
        || async { (m.znodes().await?.len() == 3).then_some(()) },
    )
    .await;
    assert_eq!(m.wait_leader(None, Duration::from_secs(30)).await, third);
    let ids = app_ids(&m.url(third))
        .await
        .expect("the new leader lists apps");
    assert!(ids.contains(&"/after-failover".to_string()), "{ids:?}");

    // A leader stopped with SIGTERM leaves the group itself (its znode deleted, not left to
    // expire), and another master leads.
    let next = third;
    m.stop(next);
    let log = m.log(next);
    assert!(
        log.contains("resigned from the masters' group") && log.contains("deleted=true"),
        "{}",
        &log[log.len().saturating_sub(3000)..]
    );
    write_to_leader(&c, &m, Some(next), "/after-sigterm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_past_its_session_timeout_refuses_writes_when_it_runs_again() {
    let ens = Ensemble::start(3);
    let c = Cluster::unstarted();
    let m = HaMasters::start(
        &c,
        &ens.connect_string(),
        "/gantry",
        3,
        &["--zk-session-timeout", "2secs"],
    );
    let (old, _) = write_to_leader(&c, &m, None, "/before").await;
    m.signal(old, nix::sys::signal::Signal::SIGSTOP);
    let (next, _) = write_to_leader(&c, &m, Some(old), "/on-the-new-leader").await;
    // A write sent while it is stopped waits in its socket; the first thing it answers when it
    // runs again is a refusal (its lease in ZooKeeper is stale), in Marathon's shape, saying why.
    let pending = {
        let (url, marker) = (m.url(old), c.marker_env());
        tokio::spawn(async move { create_app_with(&url, "/from-the-old-leader", marker).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.signal(old, nix::sys::signal::Signal::SIGCONT);
    let (status, body) = pending
        .await
        .expect("the request")
        .expect("the old leader answers");
    assert_eq!(status, 503, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("ZooKeeper"), "{body}");
    // Nothing of it landed in the new leader's state, and the new leader still leads.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = app_ids(&m.url(next))
        .await
        .expect("the new leader lists apps");
    assert!(
        !ids.contains(&"/from-the-old-leader".to_string()),
        "{ids:?}"
    );
    assert!(ids.contains(&"/on-the-new-leader".to_string()), "{ids:?}");
    assert_eq!(m.wait_leader(None, Duration::from_secs(30)).await, next);
    // The old leader rejoins as a fresh contender (a new znode).
    eventually(Duration::from_secs(60), "three znodes again", || async {
        (m.znodes().await?.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_zookeeper_down_writes_are_refused_reads_served_and_writes_resume_after() {
    let mut ens = Ensemble::start(3);
    let mut c = Cluster::unstarted();
    let m = HaMasters::start(
        &c,
        &ens.connect_string(),
        "/gantry",
        3,
        &["--zk-session-timeout", "2secs"],
    );
    let (leader, _) = write_to_leader(&c, &m, None, "/kept").await;
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
    c.wait_running("/sleepy", 1).await;
    let tasks_before = c.task_processes();
    assert_eq!(tasks_before.len(), 1);

    ens.kill_all();
    let base = m.url(leader);
    // Until the master notices that ZooKeeper is gone (a fraction of the session timeout), its
    // writes may still be accepted (into the store, which refuses them on ZooKeeper's store);
    // each attempt has its own id.
    let mut attempt = 0;
    let (status, body) = eventually(Duration::from_secs(30), "writes refused", || {
        attempt += 1;
        let id = format!("/while-down-{attempt}");
        let (c, base) = (&c, &base);
        async move {
            let r = create_app(c, base, &id).await?;
            (r.0 == 503).then_some(r)
        }
    })
    .await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ZooKeeper")),
        "{status} {body}"
    );
    // Reads are served from the last state, also past the session timeout (deposed by then).
    for _ in 0..2 {
        let ids = app_ids(&base).await.expect("reads are served");
        assert!(ids.contains(&"/kept".to_string()) && ids.contains(&"/sleepy".to_string()));
        assert!(!ids.contains(&"/refused".to_string()));
        let r = create_app(&c, &base, "/refused").await.expect("answers");
        assert_eq!(r.0, 503, "{:?}", r.1);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert_eq!(c.task_processes(), tasks_before, "the task kept running");

    ens.restart_all();
    write_to_leader(&c, &m, None, "/after-zk-is-back").await;
    assert_eq!(c.task_processes(), tasks_before, "the task kept running");
}
