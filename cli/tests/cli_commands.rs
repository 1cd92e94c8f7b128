//! The `gantry` CLI against real daemons, and `gantry dev` as a one-process cluster: apps run, list,
//! rm (which kills the tasks), tasks list and agents list, as tables and as JSON.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{bin, eventually, free_port, Cluster};

fn gantry(master: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--master")
        .arg(master)
        .args(["--credentials", support::CREDENTIALS])
        .args(args)
        .output()
        .expect("run gantry");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_tasks_and_agents_from_the_cli() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:512;disk:100;ports:[31000-31010]");
    c.wait_agents(1).await;
    let url = c.url();
    let file = c.dir.path().join("app.json");
    let app = serde_json::json!({"id": "/fromfile", "cmd": "sleep 3600", "instances": 1,
                                 "cpus": 0.1, "mem": 16, "env": c.marker_env()});
    std::fs::write(&file, app.to_string()).expect("write the app file");
    let (ok, out) = gantry(
        &url,
        &["apps", "run", "-f", file.to_str().expect("utf-8 path")],
    );
    assert!(ok, "{out}");
    assert!(out.contains("created /fromfile"), "{out}");
    let (ok, out) = gantry(
        &url,
        &[
            "apps",
            "run",
            "/flags",
            "--cmd",
            "sleep 3601",
            "--instances",
            "2",
            "--ports",
            "1",
        ],
    );
    assert!(ok, "{out}");
    c.wait_running("flags", 2).await;
    c.wait_running("fromfile", 1).await;

    let (ok, table) = gantry(&url, &["apps", "list"]);
    assert!(ok, "{table}");
    let header = table.lines().next().unwrap_or("");
    assert!(
        header.starts_with("ID") && header.contains("RUNNING") && header.contains("WAITING"),
        "{table}"
    );
    let flags_row = table
        .lines()
        .find(|l| l.starts_with("/flags"))
        .expect("a row for /flags");
    assert_eq!(
        flags_row.split_whitespace().nth(1),
        Some("2"),
        "instances: {flags_row}"
    );
    assert_eq!(
        flags_row.split_whitespace().nth(2),
        Some("2"),
        "running: {flags_row}"
    );

    let (ok, json) = gantry(&url, &["--json", "tasks", "list"]);
    assert!(ok, "{json}");
    let v: Value = serde_json::from_str(&json).expect("--json prints JSON");
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(3));
    let (ok, table) = gantry(&url, &["tasks", "list"]);
    assert!(
        ok && table.lines().count() == 4,
        "a header and 3 tasks: {table}"
    );
    let (ok, table) = gantry(&url, &["agents", "list"]);
    assert!(ok, "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("active") && l.contains("/2")),
        "{table}"
    );

    // rm: the app is gone at once and its tasks are killed.
    let (ok, out) = gantry(&url, &["apps", "rm", "/flags"]);
    assert!(ok, "{out}");
    assert_eq!(
        c.get("/v2/apps/flags").await["message"],
        "App '/flags' does not exist"
    );
    eventually(
        Duration::from_secs(15),
        "the app's tasks to be killed",
        || async {
            let tasks = c.get("/v2/tasks").await;
            let left = tasks["tasks"]
                .as_array()?
                .iter()
                .filter(|t| t["appId"] == "/flags")
                .count();
            (left == 0).then_some(())
        },
    )
    .await;
    let (ok, out) = gantry(&url, &["apps", "rm", "/flags"]);
    assert!(!ok && out.contains("does not exist"), "{out}");
    // The /flags tasks carried no marker: make sure their processes ended (by command line).
    let leftovers = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).starts_with("sleep\x003601"))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(leftovers, 0, "killed tasks leave no process behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gantry_dev_runs_a_master_and_an_agent_in_one_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // `gantry dev` on one port and state dir; started twice below.
    let start_dev = |log: &str| {
        let log = std::fs::File::create(dir.path().join(log)).expect("log");
        Command::new(bin("gantry"))
            .args([
                "dev",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--resources",
                "cpus:2;mem:512",
            ])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start gantry dev")
    };
    let mut dev = start_dev("dev.log");
    let marker = format!("devtest{}", uuid::Uuid::new_v4().simple());
    let app = serde_json::json!({"id": "/devapp", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16,
                                 "env": {"GANTRY_TEST_MARKER": marker}});
    let http = reqwest::Client::new();
    let status = eventually(
        Duration::from_secs(20),
        "gantry dev to accept an app",
        || async {
            let r = http
                .post(format!("{url}/v2/apps"))
                .json(&app)
                .send()
                .await
                .ok()?;
            Some(r.status().as_u16())
        },
    )
    .await;
    assert_eq!(status, 201);
    // The app's first task, once it runs.
    let running_task = |what: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            eventually(Duration::from_secs(20), what, || async {
                let v: Value = http
                    .get(format!("{url}/v2/apps/devapp"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let t = v["app"]["tasks"].as_array()?.first()?.clone();
                (t["state"] == "TASK_RUNNING").then_some(t)
            })
            .await
        }
    };
    let task = running_task("the app to run on the local agent").await;
    assert_eq!(task["host"], "127.0.0.1");
    // The local agent's own endpoint is open in gantry dev (and only there: docs/security.md).
    let slaves: Value = http
        .get(format!("{url}/master/slaves"))
        .send()
        .await
        .expect("/master/slaves")
        .json()
        .await
        .expect("JSON");
    let agent_port = slaves["slaves"][0]["port"].as_u64().expect("agent port");
    let agent_state = http
        .get(format!("http://127.0.0.1:{agent_port}/state"))
        .send()
        .await
        .expect("the agent's /state");
    assert_eq!(agent_state.status(), 200, "no credentials in gantry dev");
    let file = http
        .get(format!(
            "http://127.0.0.1:{agent_port}/files/read?path={}/stdout",
            task["id"].as_str().unwrap_or("")
        ))
        .send()
        .await
        .expect("the agent's /files/read");
    assert_ne!(file.status(), 401, "no credentials in gantry dev");
    let _ = dev.kill();
    let _ = dev.wait();
    let with_marker = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
                String::from_utf8_lossy(&env).contains(&marker)
            })
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .collect()
    };
    assert!(
        !with_marker().is_empty(),
        "the task survived the dev process"
    );

    // Started again on the same state, the dev cluster has the same task; deleting the app ends
    // it, with everything the container held.
    let mut dev = start_dev("dev2.log");
    let again = running_task("the same task after the restart").await;
    assert_eq!(again["id"], task["id"]);
    let r = http
        .delete(format!("{url}/v2/apps/devapp"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    let id = task["id"].as_str().unwrap_or("").to_string();
    eventually(
        Duration::from_secs(30),
        "the task and its cgroup to be gone",
        || async {
            let cgroup = std::path::Path::new("/sys/fs/cgroup/memory/gantry")
                .join(&id)
                .exists();
            (with_marker().is_empty() && !cgroup).then_some(())
        },
    )
    .await;
    let _ = dev.kill();
    let _ = dev.wait();
}
