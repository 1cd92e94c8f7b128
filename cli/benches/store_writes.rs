//! Store writes per second, ZooKeeper against SQLite, in the same run: batches shaped like an app
//! create (PutApp + PutAppVersion + PutDeployment + Event + Audit) and like a job run (PutRun +
//! PutJob + PutTask + Event), applied one after another (`Store::apply`, the caller waits for
//! each) and by 16 concurrent callers through `AsyncStore` (group commit: the writer thread
//! commits every batch waiting in one transaction, one multi for ZooKeeper). `SqliteStore` is a
//! file in the temp dir (WAL, `synchronous=FULL`); `ZkStore` runs on a 3-server loopback ensemble
//! (tests/support/zookeeper.rs, Debian's ZooKeeper 3.8, each server's data in the temp dir).
//! Prints batches/s and p50/p99 latency per batch.
//!
//! `GANTRY_BENCH_BATCHES` (default 1000) batches per shape and mode.
//! Run: `cargo bench -p gantry-cli --bench store_writes` (release), or with `--profile dev`.

#[path = "../tests/support/zookeeper.rs"]
mod zookeeper;

use gantry_masterd::store::records::{AuditRecord, TaskOwner, TaskRecord};
use gantry_masterd::store::{AsyncStore, SqliteStore, Store, StoredEvent, Write, ZkStore};
use gantry_proto::{CommandInfo, Resources, TaskInfo, TaskState};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A free loopback port (the ensemble's support module asks its parent for one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Makes the `i`th batch of one shape.
type Shape = fn(u64) -> Vec<Write>;

static EVENT: AtomicU64 = AtomicU64::new(1);

fn event() -> Write {
    let id = EVENT.fetch_add(1, Ordering::SeqCst);
    Write::Event(Box::new(StoredEvent {
        id,
        event_type: "status_update_event".into(),
        body: json!({"eventType": "status_update_event", "taskId": format!("t{id}"),
                     "taskStatus": "TASK_RUNNING", "timestamp": "2026-12-02T16:00:00.000Z"})
        .to_string(),
    }))
}

fn app_create(i: u64) -> Vec<Write> {
    let id = format!("/bench/app-{i}");
    let app = json!({
        "id": id, "cmd": "python3 -m http.server $PORT0", "cpus": 0.1, "mem": 64, "disk": 0,
        "instances": 3, "portDefinitions": [{"port": 0, "protocol": "tcp"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "gracePeriodSeconds": 30}],
        "labels": {"team": "bench"}, "env": {"MODE": "bench"},
        "version": "2026-12-02T16:00:00.000Z",
    });
    vec![
        Write::PutApp {
            id: id.clone(),
            app: app.clone(),
        },
        Write::PutAppVersion {
            id: id.clone(),
            version: "2026-12-02T16:00:00.000Z".into(),
            app,
        },
        Write::PutDeployment {
            id: format!("deployment-{i}"),
            deployment: json!({"id": format!("deployment-{i}"), "affectedApps": [id],
                               "steps": [[{"action": "StartApplication", "app": id}]],
                               "currentStep": 1}),
        },
        event(),
        Write::Audit(Box::new(AuditRecord {
            seq: 0,
            at: 1_764_691_200.0,
            principal: "ops".into(),
            method: "POST".into(),
            path: "/v2/apps".into(),
            status: 201,
            remote: "127.0.0.1:40000".into(),
        })),
    ]
}

fn job_run(i: u64) -> Vec<Write> {
    let job = format!("job-{}", i % 50);
    let task_id = format!("ct:{i}:0:{job}");
    let task = TaskRecord {
        info: TaskInfo {
            task_id: task_id.as_str().into(),
            name: job.clone(),
            agent_id: "agent-1".into(),
            command: CommandInfo::default(),
            resources: Resources::scalars(0.1, 32.0, 0.0),
            kill_grace_period_secs: 3.0,
            ..TaskInfo::default()
        },
        owner: TaskOwner::JobRun {
            job: job.clone(),
            run: i,
        },
        state: TaskState::TaskStaging,
        status: None,
        last_seq: 0,
        staged_at: 1_764_691_200.0,
        started_at: None,
        unreachable_since: None,
        expunged: false,
        kill_requested: false,
        health: Vec::new(),
    };
    vec![
        Write::PutRun {
            id: i,
            job: job.clone(),
            run: json!({"id": i, "job": job, "state": "launched", "task": task_id,
                        "scheduledAt": "2026-12-02T16:00:00.000Z"}),
        },
        Write::PutJob {
            name: job.clone(),
            job: json!({"name": job, "command": "true", "schedule": "R/2026-12-02T16:00:00Z/PT1M",
                        "successCount": i, "errorCount": 0, "lastSuccess": ""}),
        },
        Write::PutTask(Box::new(task)),
        event(),
    ]
}

/// Batches/s and p50/p99 of the latencies, for `n` batches in `total`.
fn report(store: &str, shape: &str, mode: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
    };
    println!(
        "store_writes: {store:<6} {shape:<10} {mode:<13} {n} batches in {t:.2} s: {rate:>7.0} batches/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
        n = lat.len(),
        t = total.as_secs_f64(),
        rate = lat.len() as f64 / total.as_secs_f64(),
        p50 = pct(0.5),
        p99 = pct(0.99),
    );
}

fn sequential(name: &str, store: &dyn Store, shape: &str, make: Shape, n: u64, base: u64) {
    let mut lat = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        let writes = make(base + i);
        let t = Instant::now();
        store
            .apply(&writes)
            .unwrap_or_else(|e| panic!("{name} apply: {e}"));
        lat.push(t.elapsed());
    }
    report(name, shape, "sequential", lat, start.elapsed());
}

fn concurrent(
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: Arc<dyn Store>,
    shape: &str,
    make: Shape,
    n: u64,
    base: u64,
) {
    let store = AsyncStore::new(store);
    let callers = 16;
    let start = Instant::now();
    let lat = rt.block_on(async {
        let mut handles = Vec::new();
        for c in 0..callers {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c;
                while i < n {
                    let writes = make(base + i);
                    let t = Instant::now();
                    if let Err(e) = store.apply(writes).await {
                        panic!("apply: {e}");
                    }
                    lat.push(t.elapsed());
                    i += callers;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap_or_default());
        }
        all
    });
    report(name, shape, "16 concurrent", lat, start.elapsed());
}

fn main() {
    let n: u64 = std::env::var("GANTRY_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path()).unwrap_or_else(|e| panic!("sqlite: {e}")));
    let ensemble = zookeeper::Ensemble::start(3);
    let zk: Arc<dyn Store> = Arc::new(
        ZkStore::open(
            &ensemble.connect_string(),
            "/bench",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("zookeeper: {e}")),
    );
    let shapes: [(&str, Shape); 2] = [("app create", app_create), ("job run", job_run)];
    for (si, (shape, make)) in shapes.into_iter().enumerate() {
        for (name, store) in [("sqlite", &sqlite), ("zk", &zk)] {
            let base = si as u64 * 10 * n;
            sequential(name, store.as_ref(), shape, make, n, base);
            concurrent(&rt, name, store.clone(), shape, make, n, base + 2 * n);
        }
    }
}
