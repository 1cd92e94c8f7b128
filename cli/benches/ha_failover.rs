//! Failover time of three masters on a 3-server ZooKeeper ensemble (Debian's ZooKeeper 3.8 on
//! loopback, tests/support/zookeeper.rs) sharing the ZooKeeper store: `kill -9` of the leader,
//! then the time until another master acknowledges a write (`POST /v2/apps` answered 201), asking
//! ZooKeeper for the leader on every try (every 100 ms). The killed master is started again as a
//! standby before the next kill. Prints each kill's time and p50/p99.
//!
//! `GANTRY_BENCH_KILLS` (default 20) kills; `GANTRY_BENCH_ZK_SESSION` (default `3secs`) is the
//! masters' `--zk-session-timeout`, which bounds the time from below: the dead leader's znode goes
//! only when ZooKeeper expires its session.
//! Run (debug binaries suffice: the time is ZooKeeper's): `cargo build --workspace --bins &&
//! cargo bench -p gantry-cli --bench ha_failover --profile dev`

#[path = "../tests/support/mod.rs"]
mod test_support;

use serde_json::json;
use std::time::{Duration, Instant};
use test_support::ha_masters::HaMasters;
use test_support::zookeeper::Ensemble;
use test_support::{Cluster, CREDENTIALS};

/// Asks ZooKeeper for the leader (not `not`) and creates `id` there, until one answers 201.
async fn write_to_leader(m: &HaMasters, not: Option<usize>, id: &str) -> usize {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let leader = m.leader_info().await.and_then(|l| m.index_of(&l));
        if let Some(i) = leader.filter(|&i| Some(i) != not) {
            let app =
                json!({"id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01, "mem": 8});
            let r = http
                .post(format!("{}/v2/apps", m.url(i)))
                .basic_auth(user, Some(pass))
                .json(&app)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 201) {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader accepted {id} within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kills: usize = std::env::var("GANTRY_BENCH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let session = std::env::var("GANTRY_BENCH_ZK_SESSION").unwrap_or_else(|_| "3secs".into());
    let ens = Ensemble::start(3);
    let c = Cluster::unstarted();
    let mut m = HaMasters::start(
        &c,
        &ens.connect_string(),
        "/gantry",
        3,
        &["--zk-session-timeout", &session, "--quorum", "2"],
    );
    let mut leader = write_to_leader(&m, None, "/warm-up").await;
    let mut times = Vec::new();
    for k in 0..kills {
        m.kill(leader);
        let killed = Instant::now();
        let next = write_to_leader(&m, Some(leader), &format!("/after-kill-{k}")).await;
        let took = killed.elapsed();
        println!(
            "kill {k}: master {leader} killed, master {next} acknowledged a write after {took:.2?}"
        );
        times.push(took);
        m.start_one(leader);
        // The restarted master joins the group before the next kill.
        let deadline = Instant::now() + Duration::from_secs(60);
        while m.znodes().await.map_or(0, |n| n.len()) < 3 {
            assert!(Instant::now() < deadline, "master {leader} did not rejoin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        leader = next;
    }
    times.sort();
    println!(
        "failover (leader kill to first acknowledged write), {kills} kills, --zk-session-timeout {session}: \
         p50 {:.2?}, p99 {:.2?}, min {:.2?}, max {:.2?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[0],
        times[times.len() - 1]
    );
}
