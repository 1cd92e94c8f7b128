//! Several real `gantry-masterd` processes on one ZooKeeper ensemble (`--zk`), for the HA tests:
//! start, `kill -9`, SIGSTOP/SIGCONT each, and find the leader the way agents and pymesos do, from
//! the lowest `json.info_` znode. The agents and the HTTP helpers stay the [`Cluster`]'s: point
//! `Cluster::port` at a master to talk to it. Dropping the set kills every master it started.
#![allow(dead_code)]

use super::{bin, Cluster, CREDENTIALS};
use gantry_daemon::masters::{leader_child, MasterInfo};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use zookeeper_client as zk;

/// The masters of one test.
pub struct HaMasters {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    /// `zk://.../path` as given to `--zk`.
    pub zk_url: String,
    /// ZooKeeper's connect string and the masters' path.
    servers: String,
    pub path: String,
    dir: std::path::PathBuf,
    token: String,
    flags: Vec<String>,
}

impl HaMasters {
    /// Starts `n` masters of `c` (its token, credentials and heartbeat flags) on `servers`
    /// (a connect string) under `path`, each with its own state dir, plus `extra` flags.
    pub fn start(c: &Cluster, servers: &str, path: &str, n: usize, extra: &[&str]) -> HaMasters {
        let mut m = HaMasters {
            ports: (0..n).map(|_| super::free_port()).collect(),
            children: (0..n).map(|_| None).collect(),
            zk_url: format!("zk://{servers}{path}"),
            servers: servers.to_owned(),
            path: path.to_owned(),
            dir: c.dir.path().to_owned(),
            token: c.token.clone(),
            flags: [
                "--heartbeat-interval-secs",
                "0.25",
                "--max-missed-heartbeats",
                "20",
                "--agent-reregister-secs",
                "30",
            ]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect(),
        };
        for i in 0..n {
            m.start_one(i);
        }
        m
    }

    /// Starts master `i` (again).
    pub fn start_one(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("master{i}.log")))
            .expect("master log");
        let child = Command::new(bin("gantry-masterd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .arg("--state-dir")
            .arg(self.dir.join(format!("master{i}")))
            .args(["--token", &self.token])
            .args(["--http-credentials", CREDENTIALS])
            .args(["--zk", &self.zk_url])
            .args(&self.flags)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start gantry-masterd --zk");
        self.children[i] = Some(child);
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub fn pid(&self, i: usize) -> i32 {
        self.children[i].as_ref().expect("master running").id() as i32
    }

    /// `kill -9` of master `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM to master `i`, and wait until it exited.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    /// What master `i` has logged.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("master{i}.log"))).unwrap_or_default()
    }

    pub fn signal(&self, i: usize, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid(i)), sig)
            .expect("signal the master");
    }

    /// Which master a `MasterInfo` is (by port).
    pub fn index_of(&self, info: &MasterInfo) -> Option<usize> {
        self.ports.iter().position(|&p| p == info.port)
    }

    /// Every master's `json.info_` znode under the path: (name, data).
    pub async fn znodes(&self) -> Option<Vec<(String, Vec<u8>)>> {
        let client = tokio::time::timeout(Duration::from_secs(10), async {
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(5))
                .connect(&self.servers)
                .await
        })
        .await
        .ok()?
        .ok()?;
        let mut children = client.list_children(&self.path).await.ok()?;
        // The masters' znodes only (the shared store lives under `store` beside them).
        children.retain(|c| c.starts_with(gantry_daemon::masters::ZNODE_PREFIX));
        children.sort();
        let mut out = Vec::new();
        for c in children {
            if let Ok((data, _)) = client.get_data(&format!("{}/{c}", self.path)).await {
                out.push((c, data));
            }
        }
        Some(out)
    }

    /// The leader's `MasterInfo` as ZooKeeper says now: the lowest `json.info_` znode's data.
    pub async fn leader_info(&self) -> Option<MasterInfo> {
        let nodes = self.znodes().await?;
        let lowest = leader_child(nodes.iter().map(|(n, _)| n.as_str()))?;
        let (_, data) = nodes.iter().find(|(n, _)| n == lowest)?;
        serde_json::from_slice(data).ok()
    }

    /// Waits until ZooKeeper names a leader among the running masters other than `not`; its
    /// index.
    pub async fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        super::eventually(timeout, "a leader in ZooKeeper", || async {
            let i = self.index_of(&self.leader_info().await?)?;
            (Some(i) != not && self.children[i].is_some()).then_some(i)
        })
        .await
    }
}

impl Drop for HaMasters {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What each master said last, to tell why a test failed.
            for i in 0..self.ports.len() {
                let log = std::fs::read_to_string(self.dir.join(format!("master{i}.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!("--- master{i}.log (last 25 lines)");
                for l in &lines[lines.len().saturating_sub(25)..] {
                    eprintln!("{l}");
                }
            }
        }
        for c in self.children.iter_mut().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
