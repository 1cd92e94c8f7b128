//! The agent's task table over the native containerizer, as root: the statuses the master sees.
//! An OOM-killed task is TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY; the fetcher, with an
//! HTTP server on loopback serving an archive (extracted, its script executable and run), a
//! path-traversal archive (refused, the task fails saying so) and a 404 (the task fails clearly);
//! a task killed while its container is being launched leaves no container behind; a task that
//! cannot start (no such program, a sandbox its user cannot enter) fails with the init's words.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::NativeTable;
use gantry_agentd::fetcher::Fetcher;
use gantry_proto::{FetchUri, Reason, TaskInfo, TaskState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn targz(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar").finish().expect("gzip")
}

async fn serve() -> String {
    use axum::routing::get;
    let good = targz(&[(
        "app/bin/run.sh",
        b"#!/bin/sh\necho fetched-and-ran\n",
        0o755,
    )]);
    let evil = targz(&[("../../escaped", b"x", 0o644)]);
    let app = axum::Router::new()
        .route("/app.tar.gz", get(move || async move { good.clone() }))
        .route("/evil.tar.gz", get(move || async move { evil.clone() }))
        .route("/tool.sh", get(|| async { "#!/bin/sh\necho tool\n" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn uri(u: String, executable: bool) -> FetchUri {
    FetchUri {
        uri: u,
        extract: true,
        executable,
        cache: true,
        dest_path: None,
    }
}

#[tokio::test]
async fn an_oom_killed_task_is_task_failed_with_the_memory_reason() {
    let mut rig = NativeTable::new("tt-oom");
    let table = rig.table.clone();
    let mut t = TaskInfo::default();
    t.task_id = "hog".into();
    t.command.value = Some("dd if=/dev/zero of=/dev/null bs=200M count=1".into());
    t.command.shell = true;
    t.resources.cpus = 0.2;
    t.resources.mem = 32.0;
    table.launch(t);
    let s = rig.terminal("hog").await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?}");
    assert_eq!(
        s.reason,
        Some(Reason::ReasonContainerLimitationMemory),
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    for p in rig.parents() {
        assert!(!p.join("hog").exists(), "the cgroup was removed");
    }
}

#[tokio::test]
async fn fetches_extracts_runs_and_refuses_bad_archives_and_404s() {
    let base = serve().await;
    let mut rig = NativeTable::new("fetch");
    let table = rig.table.clone();
    table.set_fetcher(Arc::new(Fetcher::new(
        rig.dir.path().join("cache"),
        1 << 20,
    )));

    let task = |id: &str, cmd: &str, uris: Vec<FetchUri>| {
        let mut t = TaskInfo::default();
        t.task_id = id.into();
        t.command.value = Some(cmd.into());
        t.command.shell = true;
        t.command.uris = uris;
        t.command
            .environment
            .insert("PATH".into(), "/usr/bin:/bin".into());
        t.resources.cpus = 0.2;
        t.resources.mem = 64.0;
        t
    };
    table.launch(task(
        "good",
        "./app/bin/run.sh && ./tool.sh && test -x tool.sh",
        vec![
            uri(format!("{base}/app.tar.gz"), false),
            uri(format!("{base}/tool.sh"), true),
        ],
    ));
    let s = rig.terminal("good").await;
    let sandbox = table.work_dir().sandbox(&"good".into());
    let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert_eq!(s.state, TaskState::TaskFinished, "{s:?} stdout: {out}");
    assert_eq!(out, "fetched-and-ran\ntool\n");

    table.launch(task(
        "evil",
        "true",
        vec![uri(format!("{base}/evil.tar.gz"), false)],
    ));
    let s = rig.terminal("evil").await;
    assert_eq!(s.state, TaskState::TaskFailed);
    assert_eq!(s.reason, Some(Reason::ReasonContainerLaunchFailed));
    let msg = s.message.unwrap_or_default();
    assert!(
        msg.contains("escapes the sandbox") && msg.contains("evil.tar.gz"),
        "{msg}"
    );
    assert!(
        !rig.dir.path().join("work/escaped").exists() && !rig.dir.path().join("escaped").exists()
    );

    table.launch(task(
        "missing",
        "true",
        vec![uri(format!("{base}/nope.tar.gz"), false)],
    ));
    let s = rig.terminal("missing").await;
    assert_eq!(s.state, TaskState::TaskFailed);
    let msg = s.message.unwrap_or_default();
    assert!(msg.contains("404") && msg.contains("nope.tar.gz"), "{msg}");

    // Nothing left: the good task's cgroup went with it, and the per-test parent is empty.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for p in rig.parents() {
        if p.exists() {
            let children = std::fs::read_dir(&p)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_dir())
                        .count()
                })
                .unwrap_or(0);
            assert_eq!(children, 0, "leftover cgroups under {}", p.display());
        }
    }
}

#[tokio::test]
async fn a_task_killed_while_it_launches_leaves_no_container_behind() {
    let mut rig = NativeTable::new("early-kill");
    let table = rig.table.clone();
    let mut t = TaskInfo::default();
    t.task_id = "early".into();
    t.command.value = Some("sleep 1000".into());
    t.command.shell = true;
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    // The launch runs on the blocking pool; the kill comes before the container exists.
    table.launch(t);
    table.kill(&"early".into(), Some(0.0));
    let s = rig.terminal("early").await;
    assert_eq!(s.state, TaskState::TaskKilled, "{s:?}");
    // The container that came up meanwhile is killed and its cgroup removed.
    let gone = |p: &PathBuf| !p.join("early").exists();
    for _ in 0..100 {
        if rig.parents().iter().all(gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in rig.parents() {
        assert!(gone(&p), "leftover cgroup under {}", p.display());
    }
}

#[tokio::test]
async fn a_task_that_cannot_start_fails_with_the_inits_own_words() {
    // Outside /tmp, which each container gets afresh: there the host's directories are the path.
    let mut rig = NativeTable::new_in("tt-nostart", std::path::Path::new("/var/tmp"));
    let table = rig.table.clone();

    let mut t = TaskInfo::default();
    t.task_id = "noprog".into();
    t.command.value = Some("/no/such/program".into());
    t.command.shell = false;
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    table.launch(t);
    let s = rig.terminal("noprog").await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?}");
    let msg = s.message.clone().unwrap_or_default();
    assert!(
        msg.contains("could not start") && msg.contains("/no/such/program"),
        "the message names the program: {msg}"
    );
    assert!(msg.contains("No such file or directory"), "{msg}");

    // The sandboxes' parent closed to others: `nobody` cannot chdir into its sandbox.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rig.dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let mut t = TaskInfo::default();
    t.task_id = "noentry".into();
    t.command.value = Some("true".into());
    t.command.shell = true;
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    table.launch(t);
    let s = rig.terminal("noentry").await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?}");
    let msg = s.message.clone().unwrap_or_default();
    assert!(
        msg.contains("cannot start the task") && msg.contains("Permission denied"),
        "the message carries the chdir error: {msg}"
    );
    assert!(
        !msg.contains("exited with status 127"),
        "not just an exit code: {msg}"
    );
}
