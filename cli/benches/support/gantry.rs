//! A Gantry cluster for the benchmarks: a release gantry-masterd (HTTP Basic, a rate limit high
//! enough that the bench is never answered 429) and one gantry-agentd (or several) with the
//! default containerizer (native when run as root) and the resources given, all in a temp dir and
//! killed when dropped; plus an HTTP client with the bench's credentials, the store's transaction count
//! from the master's Prometheus `/metrics`, and the bytes the master has written to disk.

use super::{bin, free_port, Killed};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The bench's HTTP Basic principal.
pub const USER: &str = "bench";
pub const PASSWORD: &str = "bench-secret";

/// A running master with its registered agents.
pub struct GantryCluster {
    // Dropped in this order: the agents, the master, then the dir.
    agent: Killed,
    more_agents: Vec<Killed>,
    master: Killed,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub http: reqwest::Client,
}

impl GantryCluster {
    /// Starts the master and an agent advertising `resources` (the agent's `--resources`, e.g.
    /// `cpus:64;mem:65536;disk:100000`) and waits until the agent is registered.
    pub async fn start(resources: &str) -> Result<Self> {
        Self::start_agents(&[resources]).await
    }

    /// Starts the master and one agent per entry of `resources` (each agent's `--resources`,
    /// with its own work dir), and waits until all are registered.
    pub async fn start_agents(resources: &[&str]) -> Result<Self> {
        // `GANTRY_BENCH_DIR` puts the master's store and the agent's work dir on another file
        // system (e.g. /dev/shm, to see what the disk's file system costs).
        let dir = match std::env::var_os("GANTRY_BENCH_DIR") {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .context("temp dir")?;
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let master = Killed::quiet(
            Command::new(bin("gantry-masterd"))
                .args(["--listen", &format!("127.0.0.1:{port}"), "--token", "bench"])
                .args(["--http-credentials", &format!("{USER}:{PASSWORD}")])
                .args(["--rate-limit", "1000000"])
                .arg("--state-dir")
                .arg(dir.path().join("m")),
        )
        .context("start gantry-masterd")?;
        let mut agents = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            let work = if i == 0 {
                "a".to_string()
            } else {
                format!("a{i}")
            };
            agents.push(
                Killed::quiet(
                    Command::new(bin("gantry-agentd"))
                        .args(["--master", &base, "--token", "bench"])
                        .args(["--listen", "127.0.0.1:0", "--resources", r])
                        .arg("--work-dir")
                        .arg(dir.path().join(work)),
                )
                .context("start gantry-agentd")?,
            );
        }
        let mut agents = agents.into_iter();
        let agent = agents.next().context("no agent to start")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let c = GantryCluster {
            agent,
            more_agents: agents.collect(),
            master,
            dir,
            base,
            http,
        };
        c.wait_for_agent().await?;
        Ok(c)
    }

    async fn wait_for_agent(&self) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(v) = self.get_json("/master/slaves").await {
                let want = 1 + self.more_agents.len();
                if v["slaves"].as_array().is_some_and(|a| a.len() >= want) {
                    return Ok(());
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the agents never registered");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A request to `path` with the bench's credentials.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD))
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let r = self.request(reqwest::Method::GET, path).send().await?;
        let status = r.status();
        if !status.is_success() {
            bail!(
                "GET {path}: {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(r.json().await?)
    }

    /// `POST path` with a JSON body; fails unless the answer is a success.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<()> {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// `method path` with a JSON body; fails unless the answer is a success.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<()> {
        let r = self.request(method.clone(), path).json(body).send().await?;
        let status = r.status();
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The store's transactions so far and the seconds spent applying them:
    /// `gantry_store_apply_seconds_count` and `_sum` on `/metrics`.
    pub async fn store_transactions(&self) -> Result<(u64, f64)> {
        let text = self
            .request(reqwest::Method::GET, "/metrics")
            .header("Accept", "text/plain")
            .send()
            .await?
            .text()
            .await?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .with_context(|| format!("no {name} on /metrics"))
        };
        Ok((
            value("gantry_store_apply_seconds_count")? as u64,
            value("gantry_store_apply_seconds_sum")?,
        ))
    }

    /// The master's state dir (its SQLite store is `gantry.db` there).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("m")
    }

    /// The size of `gantry.db` plus its WAL, bytes.
    pub fn store_size(&self) -> u64 {
        ["gantry.db", "gantry.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.state_dir().join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The bytes the master process has caused to be written to storage (`write_bytes` of
    /// /proc/<pid>/io: its store, as it logs to /dev/null), if the kernel accounts for them.
    pub fn master_write_bytes(&self) -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{}/io", self.master.0.id()))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes: "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// CPU seconds used so far by the master, and by the agent with every process it reaped
    /// (its containers' launchers and inits, and through them the tasks): user + system time
    /// from /proc/<pid>/stat, children included.
    pub fn cpu_secs(&self) -> Option<(f64, f64)> {
        Some((
            cpu_secs_of(self.master.0.id())?,
            cpu_secs_of(self.agent.0.id())?,
        ))
    }

    /// The (first) agent's process id.
    pub fn agent_pid(&self) -> u32 {
        self.agent.0.id()
    }

    /// Resident memory of the master and of each agent, bytes (VmRSS of /proc/<pid>/status).
    pub fn rss(&self) -> (Option<u64>, Vec<Option<u64>>) {
        let agents = std::iter::once(&self.agent)
            .chain(&self.more_agents)
            .map(|a| rss_of(a.0.id()))
            .collect();
        (rss_of(self.master.0.id()), agents)
    }
}

/// VmRSS of a process, bytes.
fn rss_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// utime + stime + cutime + cstime of a process, seconds (/proc counts in USER_HZ, 100 on Linux).
fn cpu_secs_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime is field 14 of the whole line, so 11 here (state is 0).
    let ticks: u64 = f
        .get(11..15)?
        .iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks as f64 / 100.0)
}
