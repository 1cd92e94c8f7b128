//! The agent's task table over the native containerizer, as root: the statuses the master sees.
//! An OOM-killed task is TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY; the fetcher, with an
//! HTTP server on loopback serving an archive (extracted, its script executable and run), a
//! path-traversal archive (refused, the task fails saying so) and a 404 (the task fails clearly);
//! a task killed while its container is being launched leaves no container behind.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

use gantry_agentd::containerizer::native::cgroup::CgroupLayout;
use gantry_agentd::containerizer::native::users::UserPolicy;
use gantry_agentd::containerizer::native::{NativeConfig, NativeContainerizer};
use gantry_agentd::fetcher::Fetcher;
use gantry_agentd::recovery::WorkDir;
use gantry_agentd::tasks::TaskTable;
use gantry_proto::{FetchUri, Reason, StatusUpdate, TaskInfo, TaskState, TaskStatus};
use std::os::unix::fs::PermissionsExt;
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

async fn terminal(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<StatusUpdate>,
    id: &str,
) -> TaskStatus {
    loop {
        let u = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a status in time")
            .expect("outbox open");
        if u.status.task_id.as_str() == id && u.status.state.is_terminal() {
            return u.status;
        }
    }
}

#[tokio::test]
async fn an_oom_killed_task_is_task_failed_with_the_memory_reason() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (native containers)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let wd = WorkDir::open(&dir.path().join("work")).expect("work dir");
    let parent = format!("gantry-test-{}-tt-oom", std::process::id());
    let layout = CgroupLayout::detect().unwrap_or_else(|e| panic!("no usable cgroups: {e}"));
    let cz = Arc::new(NativeContainerizer::new(NativeConfig {
        shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
        layout: layout.clone(),
        cgroup_parent: parent.clone(),
        users: UserPolicy::default(),
        pids_max: Some(64),
    }));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let table = TaskTable::new(wd, cz, "127.0.0.1".into(), tx);
    let mut t = TaskInfo::default();
    t.task_id = "hog".into();
    t.command.value = Some("dd if=/dev/zero of=/dev/null bs=200M count=1".into());
    t.command.shell = true;
    t.resources.cpus = 0.2;
    t.resources.mem = 32.0;
    table.launch(t);
    let s = terminal(&mut rx, "hog").await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?}");
    assert_eq!(
        s.reason,
        Some(Reason::ReasonContainerLimitationMemory),
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    for root in layout.v1.values() {
        let p = root.join(&parent);
        assert!(!p.join("hog").exists(), "the cgroup was removed");
        let _ = std::fs::remove_dir(&p);
    }
}

#[tokio::test]
async fn fetches_extracts_runs_and_refuses_bad_archives_and_404s() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (native containers)"
    );
    let base = serve().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let wd = WorkDir::open(&dir.path().join("work")).expect("work dir");
    let parent = format!("gantry-test-{}-fetch", std::process::id());
    let layout = CgroupLayout::detect().unwrap_or_else(|e| panic!("no usable cgroups: {e}"));
    let cz = Arc::new(NativeContainerizer::new(NativeConfig {
        shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
        layout: layout.clone(),
        cgroup_parent: parent.clone(),
        users: UserPolicy::default(),
        pids_max: Some(64),
    }));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let table = TaskTable::new(wd, cz, "127.0.0.1".into(), tx);
    table.set_fetcher(Arc::new(Fetcher::new(dir.path().join("cache"), 1 << 20)));

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
    let s = terminal(&mut rx, "good").await;
    let sandbox = table.work_dir().sandbox(&"good".into());
    let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert_eq!(s.state, TaskState::TaskFinished, "{s:?} stdout: {out}");
    assert_eq!(out, "fetched-and-ran\ntool\n");

    table.launch(task(
        "evil",
        "true",
        vec![uri(format!("{base}/evil.tar.gz"), false)],
    ));
    let s = terminal(&mut rx, "evil").await;
    assert_eq!(s.state, TaskState::TaskFailed);
    assert_eq!(s.reason, Some(Reason::ReasonContainerLaunchFailed));
    let msg = s.message.unwrap_or_default();
    assert!(
        msg.contains("escapes the sandbox") && msg.contains("evil.tar.gz"),
        "{msg}"
    );
    assert!(!dir.path().join("work/escaped").exists() && !dir.path().join("escaped").exists());

    table.launch(task(
        "missing",
        "true",
        vec![uri(format!("{base}/nope.tar.gz"), false)],
    ));
    let s = terminal(&mut rx, "missing").await;
    assert_eq!(s.state, TaskState::TaskFailed);
    let msg = s.message.unwrap_or_default();
    assert!(msg.contains("404") && msg.contains("nope.tar.gz"), "{msg}");

    // Nothing left: the good task's cgroup went with it, and the per-test parent is empty.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for root in layout.v1.values() {
        let p = root.join(&parent);
        if p.exists() {
            let children = std::fs::read_dir(&p)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_dir())
                        .count()
                })
                .unwrap_or(0);
            assert_eq!(children, 0, "leftover cgroups under {}", p.display());
            let _ = std::fs::remove_dir(&p);
        }
    }
}

#[tokio::test]
async fn a_task_killed_while_it_launches_leaves_no_container_behind() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (native containers)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let wd = WorkDir::open(&dir.path().join("work")).expect("work dir");
    let parent = format!("gantry-test-{}-early-kill", std::process::id());
    let layout = CgroupLayout::detect().unwrap_or_else(|e| panic!("no usable cgroups: {e}"));
    let cz = Arc::new(NativeContainerizer::new(NativeConfig {
        shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
        layout: layout.clone(),
        cgroup_parent: parent.clone(),
        users: UserPolicy::default(),
        pids_max: Some(64),
    }));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let table = TaskTable::new(wd, cz, "127.0.0.1".into(), tx);
    let mut t = TaskInfo::default();
    t.task_id = "early".into();
    t.command.value = Some("sleep 1000".into());
    t.command.shell = true;
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    // The launch runs on the blocking pool; the kill comes before the container exists.
    table.launch(t);
    table.kill(&"early".into(), Some(0.0));
    let s = terminal(&mut rx, "early").await;
    assert_eq!(s.state, TaskState::TaskKilled, "{s:?}");
    // The container that came up meanwhile is killed and its cgroup removed.
    let gone = |root: &PathBuf| !root.join(&parent).join("early").exists();
    for _ in 0..100 {
        if layout.v1.values().all(gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for root in layout.v1.values() {
        assert!(gone(root), "leftover cgroup under {}", root.display());
        let _ = std::fs::remove_dir(root.join(&parent));
    }
}
