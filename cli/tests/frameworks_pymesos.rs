//! An unmodified pymesos 0.3.15 framework (`py/pymesos_framework.py`; the venv comes from
//! scripts/test) against a real cluster through `/api/v1/scheduler` (issue 11): it runs a task to
//! TASK_FINISHED and tears down, and it survives a master `kill -9` (re-subscribes with its id,
//! reconciles, its task still running), then kills its task and tears down.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{eventually, Cluster, CREDENTIALS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmodified_pymesos_framework_runs_a_task_to_finished() {
    let py = support::python();
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/pymesos_framework.py");
    let master = format!("127.0.0.1:{}", c.port);
    let out = tokio::process::Command::new(py)
        .arg(script)
        .args([master.as_str(), user, pass, &c.marker])
        .output()
        .await
        .expect("run the pymesos framework");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("pymesos framework: ok"),
        "pymesos 0.3.15 against Gantry:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log_tails(40)
    );
    assert!(
        stdout.contains("TASK_RUNNING TASK_FINISHED") || stdout.contains("TASK_FINISHED"),
        "{stdout}"
    );
    // TEARDOWN removed it.
    let fw_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("framework: "))
        .expect("the framework id printed")
        .to_owned();
    let state = c.get("/master/state").await;
    let ids: Vec<&str> = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(fw_line.len() > 8, "a framework id: {stdout}");
    assert!(!ids.contains(&fw_line.as_str()), "torn down: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pymesos_framework_survives_a_master_kill_and_reconciles_its_running_task() {
    let py = support::python();
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/pymesos_framework.py");
    let master = format!("127.0.0.1:{}", c.port);
    let flags = tempfile::tempdir().expect("tempdir");
    let flag_dir = flags.path().to_str().expect("utf-8").to_owned();
    let child = tokio::process::Command::new(py)
        .arg(script)
        .args([
            master.as_str(),
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
        Duration::from_secs(30),
        "the pymesos task running",
        || async { running.exists().then_some(()) },
    )
    .await;
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    std::fs::write(flags.path().join("agents"), "").expect("flag");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the framework ends within 90 s")
        .expect("its output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("pymesos framework: ok"),
        "pymesos across a master kill:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log_tails(40)
    );
    assert!(stdout.contains("reregistered"), "{stdout}");
    assert!(
        stdout.contains("TASK_RUNNING REASON_RECONCILIATION"),
        "{stdout}"
    );
}
