//! Memory of the daemons: starts a release gantry-masterd and gantry-agentd (the agent's default
//! containerizer: native when run as root), measures both idle with the agent registered, then with
//! 100 running tasks, and prints RSS and PSS (from /proc) and what each container's init adds.
//! Run (as root): `cargo build --release --bins && cargo bench -p gantry-cli --bench daemon_memory`

mod support;

use support::{bin, free_port, Killed};

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// (VmRSS, Pss) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let field = |file: &str, key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("status", "VmRSS:"), field("smaps_rollup", "Pss:"))
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let master = Killed::quiet(
        Command::new(bin("gantry-masterd"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--token", "bench"])
            .args(["--http-credentials", "bench:bench-secret"])
            .arg("--state-dir")
            .arg(dir.path().join("m")),
    )
    .expect("start the master");
    let agent = Killed::quiet(
        Command::new(bin("gantry-agentd"))
            .args([
                "--master",
                &format!("http://127.0.0.1:{port}"),
                "--token",
                "bench",
            ])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--resources",
                "cpus:16;mem:16384;disk:1000",
            ])
            .arg("--work-dir")
            .arg(dir.path().join("a")),
    )
    .expect("start the agent");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    rt.block_on(async {
        loop {
            let url = format!("http://127.0.0.1:{port}/master/slaves");
            let req = reqwest::Client::new()
                .get(&url)
                .basic_auth("bench", Some("bench-secret"));
            if let Ok(r) = req.send().await {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if v["slaves"].as_array().is_some_and(|a| !a.is_empty()) {
                        break;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the agent never registered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    std::thread::sleep(Duration::from_secs(5));
    report("idle, 1 agent registered, 0 tasks", &master.0, &agent.0);

    // 100 running tasks.
    let base = format!("http://127.0.0.1:{port}");
    let app = serde_json::json!({"id": "/mem", "cmd": "sleep 3600", "instances": 100,
                                 "cpus": 0.01, "mem": 16});
    rt.block_on(async {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/v2/apps"))
            .basic_auth("bench", Some("bench-secret"))
            .json(&app)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status().as_u16(), 201, "the app is accepted");
        let start = Instant::now();
        loop {
            let v: serde_json::Value = http
                .get(format!("{base}/v2/apps/mem"))
                .basic_auth("bench", Some("bench-secret"))
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON");
            if v["app"]["tasksRunning"] == 100 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "100 tasks never ran: {}",
                v["app"]["tasksRunning"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    std::thread::sleep(Duration::from_secs(5));
    report("100 running tasks", &master.0, &agent.0);
    let inits = container_inits(agent.0.id());
    if !inits.is_empty() {
        let n = inits.len() as f64;
        let (rss, pss) = inits.iter().fold((0, 0), |(r, p), pid| {
            let (a, b) = memory_kib(*pid);
            (r + a, p + b)
        });
        println!(
            "{:<15} {} processes the agent runs besides the tasks (executor/init): mean RSS {:.0} KiB, mean PSS {:.0} KiB",
            "per container", inits.len(), rss as f64 / n, pss as f64 / n
        );
    }
    rt.block_on(async {
        let _ = reqwest::Client::new()
            .delete(format!("{base}/v2/apps/mem"))
            .basic_auth("bench", Some("bench-secret"))
            .send()
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
}

fn report(when: &str, master: &Child, agent: &Child) {
    for (name, child) in [("gantry-masterd", master), ("gantry-agentd", agent)] {
        let (rss, pss) = memory_kib(child.id());
        println!(
            "{name:<15} {when}: RSS {:.1} MiB, PSS {:.1} MiB",
            rss as f64 / 1024.0,
            pss as f64 / 1024.0
        );
    }
}

/// The per-container helper processes: copies of the agent binary (executor shim / container init)
/// other than the agent itself.
fn container_inits(agent_pid: u32) -> Vec<u32> {
    let exe = std::fs::read_link(format!("/proc/{agent_pid}/exe")).unwrap_or_default();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != agent_pid)
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}
