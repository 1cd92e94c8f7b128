//! Harness for the load balancer tests: a `gantry lb` process following a test cluster, with
//! Debian's `haproxy` on loopback ports, its files in the cluster's temp dir; on drop, the lb and
//! every haproxy process of its state dir are ended.
#![allow(dead_code)]

use crate::support::{self, Cluster};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test, naming the package, when Debian's `haproxy` cannot be run.
pub fn require_haproxy() {
    let ok = Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Debian's haproxy is missing: these tests run the real HAProxy (apt-get install haproxy; \
         scripts/deps installs it)"
    );
}

/// A running `gantry lb`.
pub struct Lb {
    child: Option<Child>,
    pub state_dir: PathBuf,
    pub http_port: u16,
    pub https_port: u16,
    pub log: PathBuf,
}

impl Lb {
    /// `gantry lb --group GROUP` following `masters` (the cluster's URL among them) with the
    /// test's credentials, HTTP vhosts on a free port and `extra` flags.
    pub fn start(c: &Cluster, name: &str, masters: &[String], extra: &[&str]) -> Lb {
        require_haproxy();
        let state_dir = c.dir.path().join(format!("lb-{name}"));
        let log = c.dir.path().join(format!("lb-{name}.log"));
        let http_port = support::free_port();
        let https_port = support::free_port();
        let file = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("lb log")
        };
        let mut cmd = Command::new(support::bin("gantry"));
        for m in masters {
            cmd.args(["--master", m]);
        }
        let child = cmd
            .args(["--credentials", support::CREDENTIALS, "lb"])
            .arg("--state-dir")
            .arg(&state_dir)
            .args(["--bind-address", "127.0.0.1"])
            .args(if extra.contains(&"--poll-secs") {
                &[][..]
            } else {
                &["--poll-secs", "0.5"][..]
            })
            .args(["--http-port", &http_port.to_string()])
            .args(["--https-port", &https_port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file())
            .stderr(file())
            .spawn()
            .expect("start gantry lb");
        Lb {
            child: Some(child),
            state_dir,
            http_port,
            https_port,
            log,
        }
    }

    /// The lb's `status.json` (Null before the first pass).
    pub fn status(&self) -> Value {
        std::fs::read_to_string(self.state_dir.join("status.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    /// The live HAProxy config.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("haproxy.cfg")).unwrap_or_default()
    }

    /// The lb's log and its live config, for a failure message.
    pub fn debug(&self) -> String {
        format!(
            "--- lb log\n{}\n--- haproxy.cfg\n{}\n--- status {}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            self.config(),
            self.status()
        )
    }

    /// Pids of the haproxy processes (master and workers) of this lb.
    pub fn haproxy_pids(&self) -> Vec<i32> {
        let needle = self.state_dir.to_string_lossy().into_owned();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.starts_with("haproxy") && cmdline.contains(&needle) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.haproxy_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// An HTTP client that opens a new connection for every request (as a fresh client would), with
/// short timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}

/// `GET http://127.0.0.1:{port}/id`'s body (a task id) when it answers 200.
pub async fn get_id(
    http: &reqwest::Client,
    port: u16,
    host: Option<&str>,
) -> Result<String, String> {
    let mut r = http.get(format!("http://127.0.0.1:{port}/id"));
    if let Some(h) = host {
        r = r.header("host", h);
    }
    let r = r.send().await.map_err(|e| format!("{e:?}"))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| format!("{e:?}"))?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body.trim().to_string())
}

/// An app command: serves `$MESOS_SANDBOX/www` on PORT0 with `id` (the task id) and `ok` (for
/// the health check; removing it makes the check fail while the server still answers).
pub const SERVE_ID: &str = "mkdir -p www && echo $MESOS_TASK_ID > www/id && echo ok > www/ok \
                            && cd www && exec python3 -m http.server $PORT0";

/// An app serving its task id on service port `port`, `instances` of it, with an HTTP health
/// check of `/ok` every second (never killing), in `group`.
pub fn http_app(c: &Cluster, id: &str, instances: u32, port: u16, labels: Value) -> Value {
    json!({"id": id, "cmd": SERVE_ID, "instances": instances, "cpus": 0.05, "mem": 32,
           "env": c.marker_env(), "labels": labels, "backoffSeconds": 1,
           "portDefinitions": [{"port": port, "protocol": "tcp", "name": "http"}],
           "healthChecks": [{"protocol": "HTTP", "path": "/ok", "portIndex": 0,
                             "gracePeriodSeconds": 30, "intervalSeconds": 1,
                             "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]})
}

/// The ids of `app`'s tasks that are running and healthy.
pub async fn healthy_ids(c: &Cluster, app: &str) -> Vec<String> {
    let mut ids: Vec<String> = c
        .tasks(app)
        .await
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING" && t["healthCheckResults"][0]["alive"] == true)
        .filter_map(|t| t["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// Waits until `n` tasks of `app` run and pass their health check; returns their ids.
pub async fn wait_healthy(c: &Cluster, app: &str, n: usize) -> Vec<String> {
    support::eventually(
        Duration::from_secs(60),
        &format!("{n} healthy tasks of {app}"),
        || async {
            let ids = healthy_ids(c, app).await;
            (ids.len() == n).then_some(ids)
        },
    )
    .await
}

/// Task ids answering on `port` in `tries` requests (errors as `ERR ...`), sorted and deduplicated.
pub async fn answers(
    http: &reqwest::Client,
    port: u16,
    host: Option<&str>,
    tries: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..tries {
        out.push(
            get_id(http, port, host)
                .await
                .unwrap_or_else(|e| format!("ERR {e}")),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Waits until the ids answering on `port` are exactly `want` (over 3 × its length requests),
/// then for the old workers' grace to end.
pub async fn wait_answers(
    lb: &Lb,
    http: &reqwest::Client,
    port: u16,
    host: Option<&str>,
    want: &[String],
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = answers(http, port, host, want.len() * 3 + 3).await;
        if got == want {
            // The workers of the config before keep accepting for HAProxy's `grace` (500 ms).
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} (host {host:?}) answers {got:?}, not {want:?}\n{}",
            lb.debug()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
