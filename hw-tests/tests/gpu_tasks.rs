//! On a real NVIDIA GPU, through real daemons (gantry-masterd and gantry-agentd as root, the native
//! containerizer, NVML discovery): the agent reports each GPU with its NUMA node; a task given one
//! GPU sees exactly it (`nvidia-smi -L`, `CUDA_VISIBLE_DEVICES=0`); a task given none cannot open
//! `/dev/nvidia*` (EPERM from the device cgroup); the agent's `/monitor/statistics` shows the
//! NVML readings of the GPU task's GPU. Without a GPU each test prints why it skipped.

use gantry_hw_tests::gpu_machine_or_skip;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's daemons, built next to this test (`cargo build --workspace --bins`).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/..");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The admin credentials the test's master is started with.
const USER: &str = "hw";
const PASSWORD: &str = "hw-secret";

async fn get(url: &str) -> Value {
    let req = reqwest::Client::new()
        .get(url)
        .basic_auth(USER, Some(PASSWORD));
    match req.send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_see_exactly_their_gpus_and_others_cannot_open_them() {
    let Some(m) = gpu_machine_or_skip("tasks_see_exactly_their_gpus_and_others_cannot_open_them")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let base = format!("http://127.0.0.1:{port}");
    let log = |n: &str| std::fs::File::create(dir.path().join(n)).expect("log file");
    let _master = Daemon(
        Command::new(bin("gantry-masterd"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--token", "hw"])
            .args(["--http-credentials", &format!("{USER}:{PASSWORD}")])
            .arg("--state-dir")
            .arg(dir.path().join("m"))
            .stdout(log("master.log"))
            .stderr(log("master.log"))
            .spawn()
            .expect("start the master"),
    );
    let work = dir.path().join("a");
    let _agent = Daemon(
        Command::new(bin("gantry-agentd"))
            .args([
                "--master",
                &base,
                "--token",
                "hw",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--containerizer", "native", "--hostname", "127.0.0.1"])
            // The same Basic credentials as the master's, so that `get` reads the agent's own
            // /monitor/statistics too.
            .args(["--http-credentials", &format!("{USER}:{PASSWORD}")])
            .arg("--work-dir")
            .arg(&work)
            .stdin(Stdio::null())
            .stdout(log("agent.log"))
            .stderr(log("agent.log"))
            .spawn()
            .expect("start the agent"),
    );

    // The agent reports every GPU NVML sees, each on its NUMA node.
    let agent = until("the agent to register with its GPUs", || async {
        let s = get(&format!("{base}/master/state")).await;
        s["slaves"].as_array()?.first().cloned()
    })
    .await;
    let reported = agent["gpus"].as_array().cloned().unwrap_or_default();
    println!("agent reports {} GPU(s): {}", reported.len(), agent["gpus"]);
    assert_eq!(reported.len(), m.gpus.len(), "every GPU is reported");
    for g in &m.gpus {
        let r = reported
            .iter()
            .find(|r| r["uuid"] == g.uuid.as_str())
            .unwrap_or_else(|| panic!("GPU {} is reported", g.uuid));
        assert_eq!(
            r["numa_node"],
            json!(g.numa_node),
            "NUMA node of {}",
            g.uuid
        );
    }

    let http = reqwest::Client::new();
    let post = |app: Value| {
        let http = http.clone();
        let url = format!("{base}/v2/apps");
        async move {
            let r = http
                .post(url)
                .basic_auth(USER, Some(PASSWORD))
                .json(&app)
                .send()
                .await
                .expect("POST");
            assert_eq!(r.status().as_u16(), 201, "app accepted");
        }
    };
    post(json!({"id": "/gpu", "gpus": 1, "cpus": 0.5, "mem": 256, "cmd":
        "nvidia-smi -L > $MESOS_SANDBOX/smi.txt 2>&1; echo \"$CUDA_VISIBLE_DEVICES\" > $MESOS_SANDBOX/cvd.txt; sleep 600"}))
    .await;
    post(json!({"id": "/nogpu", "cpus": 0.1, "mem": 64, "cmd":
        "cat /dev/nvidia0 > /dev/null 2> $MESOS_SANDBOX/err.txt; echo done > $MESOS_SANDBOX/ran.txt; sleep 600"}))
    .await;

    let task = |app: &'static str| {
        let base = base.clone();
        async move {
            until(app, || async {
                let s = get(&format!("{base}/master/state")).await;
                s["frameworks"][0]["tasks"]
                    .as_array()?
                    .iter()
                    .find(|t| t["id"].as_str().is_some_and(|id| id.starts_with(app)))
                    .filter(|t| t["state"] == "TASK_RUNNING")
                    .cloned()
            })
            .await
        }
    };
    let gpu_task = task("gpu.").await;
    let given = gpu_task["placement"]["gpus"][0]["uuid"]
        .as_str()
        .expect("the task was given a GPU")
        .to_string();
    let sandbox = |t: &Value| work.join("sandboxes").join(t["id"].as_str().unwrap_or(""));
    let read = |p: PathBuf| async move {
        until(&p.display().to_string(), || async {
            std::fs::read_to_string(&p).ok()
        })
        .await
    };
    let smi = read(sandbox(&gpu_task).join("smi.txt")).await;
    println!("nvidia-smi -L in the task:\n{smi}");
    let lines: Vec<&str> = smi.lines().filter(|l| l.starts_with("GPU ")).collect();
    assert_eq!(lines.len(), 1, "the task sees exactly one GPU: {smi}");
    assert!(
        lines[0].contains(&given),
        "the one it was given ({given}): {smi}"
    );
    assert_eq!(read(sandbox(&gpu_task).join("cvd.txt")).await.trim(), "0");

    // Its GPU's NVML readings, attributed to it on the agent (sampled every 5 s by default).
    let agent_port = agent["port"].as_u64().expect("agent port");
    let task_id = gpu_task["id"].as_str().unwrap_or("").to_string();
    let reading = until("the GPU task's readings on /monitor/statistics", || async {
        let stats = get(&format!("http://127.0.0.1:{agent_port}/monitor/statistics")).await;
        let entry = stats
            .as_array()?
            .iter()
            .find(|e| e["executor_id"] == task_id.as_str())?
            .clone();
        let gpus = entry["statistics"]["gpu_usage"].as_array()?.clone();
        gpus.into_iter().find(|g| g["uuid"] == given.as_str())
    })
    .await;
    println!("the GPU task's reading: {reading}");
    let g = m
        .gpus
        .iter()
        .find(|g| g.uuid == given)
        .expect("the given GPU is NVML's");
    assert_eq!(
        reading["memory_total_bytes"].as_u64().map(|b| b >> 20),
        Some(g.memory_mib),
        "{reading}"
    );
    let util = reading["gpu_util_percent"].as_f64().expect("utilisation");
    assert!((0.0..=100.0).contains(&util), "{reading}");

    let other = task("nogpu.").await;
    read(sandbox(&other).join("ran.txt")).await;
    let err = std::fs::read_to_string(sandbox(&other).join("err.txt")).unwrap_or_default();
    println!("a task without GPUs opening /dev/nvidia0: {err}");
    assert!(
        err.contains("Operation not permitted"),
        "EPERM from the device cgroup: {err}"
    );

    for app in ["gpu", "nogpu"] {
        let _ = http.delete(format!("{base}/v2/apps/{app}")).send().await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
}
