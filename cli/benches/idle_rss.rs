//! Idle memory of the daemons: starts a release gantry-masterd and gantry-agentd, waits until the
//! agent is registered, lets them idle, and prints each one's RSS and PSS (from /proc).
//! Run: `cargo build --release --bins && cargo bench -p gantry-cli --bench idle_rss`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_gantry"));
    let path = dir.parent().map(|d| d.join(name)).unwrap_or_default();
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --bins` first",
        path.display()
    );
    path
}

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

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let master = Killed(
        Command::new(bin("gantry-masterd"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--token", "bench"])
            .arg("--state-dir")
            .arg(dir.path().join("m"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the master"),
    );
    let agent = Killed(
        Command::new(bin("gantry-agentd"))
            .args([
                "--master",
                &format!("http://127.0.0.1:{port}"),
                "--token",
                "bench",
            ])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--work-dir")
            .arg(dir.path().join("a"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    rt.block_on(async {
        loop {
            let url = format!("http://127.0.0.1:{port}/master/slaves");
            if let Ok(r) = reqwest::get(&url).await {
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
    for (name, child) in [("gantry-masterd", &master.0), ("gantry-agentd", &agent.0)] {
        let (rss, pss) = memory_kib(child.id());
        println!(
            "{name:<15} idle, 1 agent registered, 0 tasks: RSS {:.1} MiB, PSS {:.1} MiB",
            rss as f64 / 1024.0,
            pss as f64 / 1024.0
        );
    }
}
