//! The ZooKeeper store against a real ensemble: the same snapshots and audit pages as SQLite for
//! the same batches, atomic multis, big values in blob chunks, fencing of a deposed leader, and
//! bounded failure while ZooKeeper is gone.

mod support;

use gantry_masterd::store::records::{
    AgentLifecycle, AgentRecord, AuditRecord, TaskOwner, TaskRecord,
};
use gantry_masterd::store::{
    Snapshot, SqliteStore, Store, StoreError, StoredEvent, Write, ZkStore, EVENTS_KEPT,
};
use gantry_proto::{AgentInfo, CommandInfo, Resources, TaskInfo, TaskState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Duration;
use support::zookeeper::Ensemble;

const SESSION: Duration = Duration::from_secs(4);

fn task(id: &str, n: u64) -> TaskRecord {
    TaskRecord {
        info: TaskInfo {
            task_id: id.into(),
            name: "app".into(),
            agent_id: "a1".into(),
            command: CommandInfo::default(),
            resources: Resources::scalars(0.1, 32.0, 0.0),
            ports: vec![31000],
            kill_grace_period_secs: 3.0,
            ..TaskInfo::default()
        },
        owner: TaskOwner::App {
            id: "/app".into(),
            version: "v1".into(),
        },
        state: TaskState::TaskStaging,
        status: None,
        last_seq: n,
        staged_at: 1.5,
        started_at: None,
        unreachable_since: None,
        expunged: false,
        kill_requested: false,
        health: Vec::new(),
    }
}

fn agent(id: &str, at: f64) -> AgentRecord {
    AgentRecord {
        id: id.into(),
        info: AgentInfo::default(),
        lifecycle: AgentLifecycle::Active,
        registered_at: at,
        reregistered_at: None,
        unreachable_since: None,
    }
}

fn audit(path: &str) -> Write {
    Write::Audit(Box::new(AuditRecord {
        seq: 0,
        at: 1.25,
        principal: "ops".into(),
        method: "POST".into(),
        path: path.into(),
        status: 201,
        remote: "127.0.0.1:9".into(),
    }))
}

fn event(id: u64) -> Write {
    Write::Event(Box::new(StoredEvent {
        id,
        event_type: "status_update_event".into(),
        body: format!("{{\"n\":{id}}}"),
    }))
}

/// Ids that need escaping: slashes, dots, `@`, `%`, spaces, non-ASCII, the empty id.
const IDS: &[&str] = &[
    "/web",
    "/a/b.c",
    "x@y",
    "100%",
    "é t",
    "",
    ".",
    "/prod/api-1",
];

fn id(rng: &mut StdRng) -> String {
    IDS[rng.random_range(0..IDS.len())].to_string()
}

/// One random write of any variant, over small key pools so that keys are overwritten and
/// deleted often.
fn random_write(rng: &mut StdRng, n: u64) -> Write {
    let v = json!({"n": n, "nested": {"x": [1, 2.5, "s"]}});
    match rng.random_range(0..19) {
        0 => Write::PutApp {
            id: id(rng),
            app: v,
        },
        1 => Write::DeleteApp(id(rng)),
        2 | 3 => Write::PutAppVersion {
            id: id(rng),
            version: format!("2026-01-0{}T00:00:00.000Z", rng.random_range(1..4)),
            app: v,
        },
        4 => Write::PutDeployment {
            id: id(rng),
            deployment: v,
        },
        5 => Write::DeleteDeployment(id(rng)),
        6 => Write::PutGroup {
            id: id(rng),
            group: v,
        },
        7 => Write::DeleteGroup(id(rng)),
        8 => Write::PutTask(Box::new(task(
            &format!("t{}{}", id(rng), rng.random_range(0..3)),
            n,
        ))),
        9 => Write::DeleteTask(format!("t{}{}", id(rng), rng.random_range(0..3))),
        10 => Write::PutAgent(Box::new(agent(
            &format!("agent-{}", rng.random_range(0..4)),
            n as f64,
        ))),
        11 => Write::PutJob {
            name: id(rng),
            job: v,
        },
        12 => Write::DeleteJob(id(rng)),
        13 | 14 => Write::PutRun {
            id: rng.random_range(0..20),
            job: id(rng),
            run: v,
        },
        15 => Write::DeleteRun(rng.random_range(0..20)),
        16 => Write::PutMeta {
            key: id(rng),
            value: format!("value {n}"),
        },
        17 => Write::DeleteMeta(id(rng)),
        _ => {
            if rng.random_bool(0.5) {
                audit(&format!("/v2/apps/{n}"))
            } else {
                // Mostly increasing ids, some far ahead (trimming everything older).
                let jump = if rng.random_bool(0.05) {
                    EVENTS_KEPT
                } else {
                    0
                };
                event(n + jump + rng.random_range(0..3))
            }
        }
    }
}

fn assert_same(zk: &Snapshot, sql: &Snapshot, when: &str) {
    assert_eq!(zk.apps, sql.apps, "apps {when}");
    assert_eq!(zk.app_versions, sql.app_versions, "app versions {when}");
    assert_eq!(zk.deployments, sql.deployments, "deployments {when}");
    assert_eq!(zk.groups, sql.groups, "groups {when}");
    assert_eq!(zk.tasks, sql.tasks, "tasks {when}");
    assert_eq!(zk.agents, sql.agents, "agents {when}");
    assert_eq!(zk.jobs, sql.jobs, "jobs {when}");
    assert_eq!(zk.runs, sql.runs, "runs {when}");
    assert_eq!(zk.meta, sql.meta, "meta {when}");
    assert_eq!(zk.events, sql.events, "events {when}");
}

fn assert_same_audit(zk: &dyn Store, sql: &dyn Store) {
    for (after, limit) in [(0, 1000000), (0, 3), (5, 7), (17, 1), (1_000_000, 5)] {
        assert_eq!(
            zk.audit_log(after, limit).expect("zk audit"),
            sql.audit_log(after, limit).expect("sqlite audit"),
            "audit_log({after}, {limit})"
        );
    }
}

/// Polls `f` (a blocking check) until it holds, or panics with `what` after `timeout`.
fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn open(zk: &Ensemble, root: &str) -> ZkStore {
    ZkStore::open(&zk.connect_string(), root, SESSION).expect("open the ZooKeeper store")
}

#[test]
fn random_batches_load_and_page_as_they_do_in_sqlite() {
    let zk = Ensemble::start(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = SqliteStore::open(dir.path()).expect("sqlite");
    let store = open(&zk, "/gantry/state-test");
    let mut rng = StdRng::seed_from_u64(12);
    let mut n = 0;
    for batch in 0..300 {
        let writes: Vec<Write> = (0..rng.random_range(1..9))
            .map(|_| {
                n += 1;
                random_write(&mut rng, n)
            })
            .collect();
        sql.apply(&writes).expect("sqlite apply");
        store.apply(&writes).expect("zk apply");
        if batch % 60 == 59 {
            assert_same(
                &store.load().expect("zk load"),
                &sql.load().expect("sqlite load"),
                &format!("after batch {batch}"),
            );
        }
    }
    let sql_snap = sql.load().expect("sqlite load");
    assert_same(&store.load().expect("zk load"), &sql_snap, "at the end");
    assert_same_audit(&store, &sql);
    assert!(
        !sql_snap.apps.is_empty() && !sql_snap.runs.is_empty() && !sql_snap.events.is_empty(),
        "the batches left something of each kind to compare"
    );

    // Another store opened on the same root (a new leader) reads the same, and writes on.
    let next = open(&zk, "/gantry/state-test");
    assert_same(
        &next.load().expect("zk load"),
        &sql_snap,
        "from a new leader",
    );
    let more = vec![audit("/v2/after"), Write::DeleteApp("/web".into())];
    sql.apply(&more).expect("sqlite");
    next.apply(&more).expect("the new leader writes");
    assert_same(
        &next.load().expect("load"),
        &sql.load().expect("load"),
        "after the new leader wrote",
    );
    assert_same_audit(&next, &sql);
}

#[test]
fn the_audit_log_and_events_are_trimmed_as_in_sqlite() {
    let zk = Ensemble::start(1);
    let sql = SqliteStore::in_memory().expect("sqlite");
    let store = open(&zk, "/trim");
    // 100,000 kept audit entries and then some, 2,000 per batch; events far apart.
    let kept = gantry_masterd::store::AUDIT_KEPT;
    let mut written = 0;
    let mut ev = 0;
    while written < kept + 3_000 {
        let mut writes: Vec<Write> = (0..2_000)
            .map(|i| audit(&format!("/v2/apps/{}", written + i)))
            .collect();
        written += 2_000;
        ev += 4_000;
        writes.push(event(ev));
        writes.push(event(ev + 1));
        sql.apply(&writes).expect("sqlite");
        store.apply(&writes).expect("zk");
    }
    let (z, s) = (store.load().expect("zk"), sql.load().expect("sqlite"));
    assert_same(&z, &s, "after trimming");
    assert_eq!(s.events.len(), 6, "events older than EVENTS_KEPT went");
    assert_same_audit(&store, &sql);
    let oldest = sql.audit_log(0, 1).expect("sqlite");
    assert_eq!(store.audit_log(0, 1).expect("zk"), oldest);
    assert!(oldest[0].seq > 3_000, "the oldest entries were trimmed");
    let tail = store.audit_log(written - 10, 100).expect("zk");
    assert_eq!(tail, sql.audit_log(written - 10, 100).expect("sqlite"));
    assert_eq!(tail.len(), 10);
}

#[test]
fn a_deposed_store_is_fenced_and_nothing_of_its_batch_lands() {
    let zk = Ensemble::start(1);
    let old = open(&zk, "/fence");
    old.apply(&[Write::PutMeta {
        key: "k".into(),
        value: "old".into(),
    }])
    .expect("the first leader writes");
    let new = open(&zk, "/fence");
    assert!(new.epoch() > old.epoch());
    let big = json!({"blob": "x".repeat(1_500_000)});
    let err = old
        .apply(&[
            Write::PutMeta {
                key: "k".into(),
                value: "deposed".into(),
            },
            Write::PutApp {
                id: "/big".into(),
                app: big,
            },
            audit("/v2/deposed"),
        ])
        .expect_err("the deposed leader cannot write");
    assert!(matches!(err, StoreError::Fenced), "{err}");
    assert!(err.to_string().contains("another master leads"), "{err}");
    let snap = new.load().expect("load");
    assert_eq!(snap.meta, vec![("k".to_string(), "old".to_string())]);
    assert!(snap.apps.is_empty());
    assert!(new.audit_log(0, 10).expect("audit").is_empty());
    wait_until(
        Duration::from_secs(30),
        "the fenced batch's blob chunks are deleted",
        || new.blobs().map(|b| b.is_empty()).unwrap_or(false),
    );
    new.apply(&[Write::PutMeta {
        key: "k".into(),
        value: "new".into(),
    }])
    .expect("the new leader writes");
    assert!(matches!(
        old.apply(&[Write::DeleteMeta("k".into())]),
        Err(StoreError::Fenced)
    ));
}

#[test]
fn big_apps_go_to_blob_chunks_and_too_big_batches_write_nothing() {
    let zk = Ensemble::start(1);
    let store = open(&zk, "/big");
    let big = json!({"id": "/big", "cmd": "y".repeat(3 * 1024 * 1024 + 17)});
    store
        .apply(&[
            Write::PutApp {
                id: "/big".into(),
                app: big.clone(),
            },
            Write::PutAppVersion {
                id: "/big".into(),
                version: "v1".into(),
                app: big.clone(),
            },
            Write::PutMeta {
                key: "small".into(),
                value: "s".into(),
            },
        ])
        .expect("a 3 MiB app is stored");
    assert!(!store.blobs().expect("blobs").is_empty());
    let reopened = open(&zk, "/big");
    let snap = reopened.load().expect("load");
    assert_eq!(snap.apps, vec![("/big".to_string(), big.clone())]);
    assert_eq!(snap.app_versions[0].2, big);

    // Many records of medium size in one batch: the biggest move to blobs and it still commits.
    let many: Vec<Write> = (0..400)
        .map(|i| Write::PutGroup {
            id: format!("/g{i}"),
            group: json!({"pad": "p".repeat(5000)}),
        })
        .collect();
    reopened
        .apply(&many)
        .expect("a 2 MB batch of 5 KB records commits");
    assert_eq!(reopened.load().expect("load").groups.len(), 400);

    // Replaced and deleted: no chunk stays.
    reopened
        .apply(&[
            Write::PutApp {
                id: "/big".into(),
                app: json!({"id": "/big"}),
            },
            Write::DeleteApp("/big".into()),
        ])
        .expect("replace");
    reopened
        .apply(
            &(0..400)
                .map(|i| Write::DeleteGroup(format!("/g{i}")))
                .collect::<Vec<_>>(),
        )
        .expect("delete the groups");
    wait_until(Duration::from_secs(30), "no blob chunk is left", || {
        reopened.blobs().map(|b| b.is_empty()).unwrap_or(false)
    });

    // 20,000 small records cannot fit one multi: a clear error, and none of them is stored.
    let too_many: Vec<Write> = (0..20_000)
        .map(|i| Write::PutMeta {
            key: format!("key-{i}"),
            value: "v".repeat(100),
        })
        .collect();
    let err = reopened
        .apply(&too_many)
        .expect_err("too big for one multi");
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(reopened
        .load()
        .expect("load")
        .meta
        .iter()
        .all(|(k, _)| !k.starts_with("key-")));
    assert_eq!(reopened.load().expect("load").meta.len(), 1);
}

#[test]
fn writes_go_on_with_one_server_down_fail_in_bounded_time_without_quorum_and_resume() {
    let mut zk = Ensemble::start(3);
    let store = std::sync::Arc::new(open(&zk, "/ha"));
    let put = |k: &str| {
        vec![Write::PutMeta {
            key: k.into(),
            value: "v".into(),
        }]
    };
    store.apply(&put("before")).expect("write with 3 servers");
    zk.kill(0);
    wait_until(
        Duration::from_secs(60),
        "a write succeeds with one server down",
        || store.apply(&put("one-down")).is_ok(),
    );
    zk.kill_all();
    let (tx, rx) = std::sync::mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        let _ = tx.send(s.apply(&put("no-quorum")));
    });
    let answer = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("apply answers while ZooKeeper is gone");
    assert!(matches!(answer, Err(StoreError::Zk(_))), "{answer:?}");
    zk.restart_all();
    wait_until(
        Duration::from_secs(120),
        "writes resume once ZooKeeper is back",
        || store.apply(&put("after")).is_ok(),
    );
    let keys: Vec<String> = store
        .load()
        .expect("load")
        .meta
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for k in ["before", "one-down", "after"] {
        assert!(keys.contains(&k.to_string()), "{k} is stored: {keys:?}");
    }
}

#[test]
fn ten_thousand_tasks_load() {
    let zk = Ensemble::start(1);
    let store = open(&zk, "/many");
    for chunk in 0..20 {
        let writes: Vec<Write> = (0..500)
            .map(|i| Write::PutTask(Box::new(task(&format!("app.{chunk}-{i}"), i))))
            .collect();
        store.apply(&writes).expect("500 tasks");
    }
    let snap = open(&zk, "/many").load().expect("load");
    assert_eq!(snap.tasks.len(), 10_000);
    assert!(snap
        .tasks
        .windows(2)
        .all(|w| w[0].info.task_id.as_str() < w[1].info.task_id.as_str()));
}

#[test]
fn a_store_written_by_a_newer_build_is_refused() {
    let zk = Ensemble::start(1);
    drop(open(&zk, "/newer"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = zookeeper_client::Client::connect(&zk.connect_string())
            .await
            .expect("connect");
        client
            .set_data("/newer/version", b"2", None)
            .await
            .expect("a newer build's version");
    });
    match ZkStore::open(&zk.connect_string(), "/newer", SESSION) {
        Ok(_) => panic!("a newer layout was opened"),
        Err(err) => {
            assert!(
                matches!(
                    err,
                    StoreError::NewerLayout {
                        found: 2,
                        supported: 1
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("version 2"), "{err}");
        }
    }
}
