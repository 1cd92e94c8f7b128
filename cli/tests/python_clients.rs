//! The unmodified Python clients against a real master with authentication on (issue 15):
//! `marathon` 0.13.0 with HTTP Basic and token credentials (`py/marathon_auth.py`) and through
//! its own itest scenarios (`py/marathon_scenarios.py`), and `chronos-python` 1.2.1 through its
//! own scenarios (`py/chronos_scenarios.py`). The test
//! command builds the venv (`target/py-venv`, see scripts/test) and names its interpreter in
//! `GANTRY_PYTHON`; without it the test fails and says so.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{eventually, Cluster, CREDENTIALS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marathon_client_works_with_credentials() {
    let py = support::python();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    std::fs::write(
        &file,
        "[[principal]]\nname = \"reader\"\ntokens = [\"reader-token-0001\"]\npermissions = [\"read\"]\n",
    )
    .expect("principals");
    let c = Cluster::with_master_flags(&["--principals-file", file.to_str().expect("utf-8")]);
    eventually(Duration::from_secs(20), "the master", || async {
        c.try_get("/version").await.map(|_| ())
    })
    .await;
    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/marathon_auth.py");
    let out = Command::new(py)
        .arg(script)
        .args([c.url().as_str(), user, pass, "reader-token-0001"])
        .output()
        .expect("run the marathon client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("marathon client: ok"),
        "marathon 0.13.0 against Gantry:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marathon_client_runs_its_own_scenarios() {
    let py = support::python();
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/marathon_scenarios.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .args([
            c.url().as_str(),
            user,
            pass,
            &c.marker_env().to_string(),
            "--events",
        ])
        .output()
        .await
        .expect("run the marathon client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 10,
        "marathon 0.13.0 scenarios against Gantry:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    print!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chronos_client_runs_its_own_scenarios() {
    let py = support::python();
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let (user, pass) = CREDENTIALS.split_once(':').expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/chronos_scenarios.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .args([c.url().as_str(), user, pass])
        .output()
        .await
        .expect("run the chronos client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 10,
        "chronos-python 1.2.1 against Gantry:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}
