//! Issue 18's load balancer figures, with Debian's `haproxy` on loopback: a release master and
//! agent (`GantryCluster`) and a release `gantry lb` following it with its default settings
//! (events when the master streams them, else polling every second);
//! (a) TASK_RUNNING → serving: an app of one `python3 -m http.server` (no health check) scaled
//!     0 → 1 → 0, `GANTRY_BENCH_LB_SAMPLES` times (default 20): the time from the task's
//!     `startedAt` to the first answer through its service port (polled every 5 ms), which
//!     includes the server's own start (measured alone too, as the floor);
//! (b) churn: an app of 5 instances with an HTTP health check, one task killed every second
//!     (replaced by the master) for `GANTRY_BENCH_LB_CHURN_SECS` (default 60), under a request
//!     loop (a new connection each, 50/s): HAProxy reloads per minute and requests that failed.
//! Run (as root): `cargo build --release --bins && cargo bench -p gantry-cli --bench lb_haproxy`

mod support;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::gantry::{GantryCluster, PASSWORD, USER};
use support::{bin, free_port, Killed};

const SERVE: &str = "mkdir -p www && echo $MESOS_TASK_ID > www/id && echo ok > www/ok && cd www \
                     && exec python3 -m http.server $PORT0";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The lb's status.json.
fn status(dir: &std::path::Path) -> Value {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

async fn get_id(http: &reqwest::Client, port: u16) -> Option<String> {
    try_id(http, port).await.ok()
}

/// The answer through `port`, or why there was none.
async fn try_id(http: &reqwest::Client, port: u16) -> Result<String, String> {
    let r = http
        .get(format!("http://127.0.0.1:{port}/id"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{e:?}"))?;
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            text.lines().nth(1).unwrap_or_default()
        ));
    }
    Ok(text.trim().to_string())
}

/// Seconds since the epoch of a Marathon timestamp.
fn epoch(ts: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

async fn scale(c: &GantryCluster, app: &str, n: u32) -> Result<()> {
    c.send_json(
        Method::PUT,
        &format!("/v2/apps/{app}?force=true"),
        &json!({"instances": n}),
    )
    .await
}

async fn tasks(c: &GantryCluster, app: &str) -> Vec<Value> {
    c.get_json(&format!("/v2/apps/{app}/tasks"))
        .await
        .ok()
        .and_then(|v| v["tasks"].as_array().cloned())
        .unwrap_or_default()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The floor of (a): from spawning the app's command to its first answer, without Gantry.
async fn server_start_floor(http: &reqwest::Client) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let start = Instant::now();
    let _server = Killed::quiet(
        Command::new("sh")
            .args(["-c", SERVE])
            .current_dir(dir.path())
            .env("PORT0", port.to_string())
            .env("MESOS_TASK_ID", "floor"),
    )?;
    loop {
        if get_id(http, port).await.is_some() {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("the server never answered");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn running_to_serving(c: &GantryCluster, http: &reqwest::Client) -> Result<()> {
    let port = free_port();
    let app = json!({"id": "/lb-latency", "cmd": SERVE, "instances": 0, "cpus": 0.05, "mem": 32,
                     "labels": {"HAPROXY_GROUP": "external"},
                     "portDefinitions": [{"port": port, "name": "http"}]});
    c.post_json("/v2/apps", &app).await?;
    let samples = env_num("GANTRY_BENCH_LB_SAMPLES", 20);
    let mut lat = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..samples {
        floor.push(server_start_floor(http).await?);
        // At a random point of the lb's poll period, not in step with its last reload.
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..1000))).await;
        scale(c, "lb-latency", 1).await?;
        let start = Instant::now();
        let id = loop {
            if let Some(id) = get_id(http, port).await {
                break id;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the task was never served");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let served = now_epoch();
        let t = tasks(c, "lb-latency").await;
        let started = t
            .iter()
            .find(|t| t["id"] == id.as_str())
            .and_then(|t| t["startedAt"].as_str())
            .and_then(epoch)
            .context("the served task's startedAt")?;
        lat.push(served - started);
        scale(c, "lb-latency", 0).await?;
        let start = Instant::now();
        while get_id(http, port).await.is_some() || !tasks(c, "lb-latency").await.is_empty() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the task never went away");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    lat.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    println!(
        "(a) TASK_RUNNING -> served through HAProxy, n={}: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms \
         (server start alone: p50 {:.0} ms)",
        lat.len(),
        pct(&lat, 0.5) * 1000.0,
        pct(&lat, 0.9) * 1000.0,
        pct(&lat, 1.0) * 1000.0,
        pct(&floor, 0.5) * 1000.0
    );
    c.send_json(Method::DELETE, "/v2/apps/lb-latency?force=true", &json!({}))
        .await
}

async fn churn(c: &GantryCluster, http: &reqwest::Client, lb_dir: &std::path::Path) -> Result<()> {
    let port = free_port();
    let app = json!({"id": "/lb-churn", "cmd": SERVE, "instances": 5, "cpus": 0.05, "mem": 32,
                     "labels": {"HAPROXY_GROUP": "external"}, "backoffSeconds": 1,
                     "portDefinitions": [{"port": port, "name": "http"}],
                     "healthChecks": [{"protocol": "HTTP", "path": "/ok", "portIndex": 0,
                        "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 1,
                        "maxConsecutiveFailures": 3}]});
    c.post_json("/v2/apps", &app).await?;
    let start = Instant::now();
    while status(lb_dir)["servers"].as_u64() != Some(5) {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the 5 instances were never all served: {}", status(lb_dir));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = env_num("GANTRY_BENCH_LB_CHURN_SECS", 60);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (stop, ok, failed, http) = (stop.clone(), ok.clone(), failed.clone(), http.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match try_id(&http, port).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failed.lock().map(|mut f| f.push(e)).unwrap_or_default(),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let reloads_before = status(lb_dir)["reloads"].as_u64().unwrap_or(0);
    let start = Instant::now();
    let mut kills = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        let t = tasks(c, "lb-churn").await;
        if let Some(id) = t
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .nth(kills % 5)
            .and_then(|t| t["id"].as_str())
        {
            let r = c
                .request(Method::DELETE, &format!("/v2/apps/lb-churn/tasks/{id}"))
                .send()
                .await?;
            if r.status().is_success() {
                kills += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    let reloads = status(lb_dir)["reloads"].as_u64().unwrap_or(0) - reloads_before;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    println!(
        "(b) churn for {:.0} s: {kills} tasks killed and replaced ({:.0}/min); {reloads} HAProxy \
         reloads ({:.0}/min); requests: {} served, {} failed",
        minutes * 60.0,
        kills as f64 / minutes,
        reloads as f64 / minutes,
        ok.load(Ordering::Relaxed),
        failed.lock().map(|f| f.len()).unwrap_or_default()
    );
    for e in failed
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default()
        .iter()
        .take(5)
    {
        println!("    failed: {e}");
    }
    // Tasks outlive a SIGKILLed agent: end them through the master first.
    c.send_json(Method::DELETE, "/v2/apps/lb-churn?force=true", &json!({}))
        .await?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let all = c.get_json("/v2/tasks").await.unwrap_or_default();
        if !all["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["appId"] == "/lb-churn"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let base = free_port().min(60_000);
    let c = GantryCluster::start(&format!(
        "cpus:8;mem:8192;disk:1000;ports:[{base}-{}]",
        base + 200
    ))
    .await?;
    let lb_dir = tempfile::tempdir()?;
    let _lb = Lb(Killed::quiet(
        Command::new(bin("gantry"))
            .args([
                "--master",
                &c.base,
                "--credentials",
                &format!("{USER}:{PASSWORD}"),
            ])
            .arg("lb")
            .arg("--state-dir")
            .arg(lb_dir.path())
            .args(["--bind-address", "127.0.0.1", "--https-port", "0"])
            .args(["--http-port", &free_port().to_string()]),
    )?);
    let start = Instant::now();
    while status(lb_dir.path()).is_null() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("gantry lb never started (is Debian's haproxy installed?)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()?;
    running_to_serving(&c, &http).await?;
    churn(&c, &http, lb_dir.path()).await?;
    println!(
        "lb: {} (event-driven: {})",
        status(lb_dir.path()),
        status(lb_dir.path())["eventDriven"]
    );
    Ok(())
}

/// The `gantry lb` process: SIGTERM first when dropped, so that it stops its HAProxy (Killed's
/// SIGKILL alone would leave HAProxy serving).
struct Lb(Killed);

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 .0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) && matches!(self.0 .0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
