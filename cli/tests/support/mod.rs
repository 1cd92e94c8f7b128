//! Harness for whole-cluster tests: real gantry-masterd and gantry-agentd processes on loopback,
//! each test in its own temp dir, with every process it started (tasks included) killed at the end.
#![allow(dead_code)]

pub mod certs;
pub mod docker;
pub mod ha_client;
pub mod ha_masters;
pub mod registry;
pub mod zookeeper;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A built binary of the workspace (built by `cargo build --workspace --bins`, which the test
/// command runs first).
pub fn bin(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_gantry"))
        .parent()
        .expect("the gantry binary has a directory")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the daemons first with `cargo build --workspace --bins` \
         (the README's test command does)",
        path.display()
    );
    path
}

/// The interpreter of the Python clients' venv (`GANTRY_PYTHON`, else `target/py-venv`), or a
/// failure that says how to get one.
pub fn python() -> PathBuf {
    let p = std::env::var_os("GANTRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-venv/bin/python")
        });
    assert!(
        p.exists(),
        "{} is missing: the Python client tests need the venv that scripts/test builds \
         (marathon==0.13.0, chronos-python==1.2.1, pymesos==0.3.15)",
        p.display()
    );
    p
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin credentials every test master is started with (`--http-credentials`).
pub const CREDENTIALS: &str = "gantry:test-secret";

/// One test's cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    /// A string put in every app command of this test, to find (and clean up) its task processes.
    pub marker: String,
    master: Option<Child>,
    agents: Vec<Option<Child>>,
    http: reqwest::Client,
    /// Extra master flags (heartbeat settings).
    master_flags: Vec<String>,
    /// `--token-file` for the master instead of `--token`.
    token_file: Option<PathBuf>,
    /// `https` once `use_https` was called.
    scheme: &'static str,
    /// The agents' `--master` instead of this cluster's URL (a list, `zk://`).
    agent_master: Option<String>,
}

impl Cluster {
    /// A master with fast heartbeats (0.25 s; 8 missed, 2 s, = unreachable: short for the tests,
    /// long enough that a loaded CI machine does not lose agents by accident).
    pub fn new() -> Self {
        let mut c = Self::unstarted();
        c.start_master();
        c
    }

    /// As [`Cluster::new`], with extra flags for the master (`--principals-file`, limits).
    pub fn with_master_flags(extra: &[&str]) -> Self {
        let mut c = Self::unstarted();
        c.add_master_flags(extra);
        c.start_master();
        c
    }

    /// The same cluster with its master not started yet: set it up (`add_master_flags`,
    /// `use_https`, `use_token_file`, files in `dir`), then call `start_master`.
    pub fn unstarted() -> Self {
        Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            token: format!("tok-{}", uuid::Uuid::new_v4().simple()),
            marker: format!("gantrytest{}", uuid::Uuid::new_v4().simple()),
            master: None,
            agents: Vec::new(),
            http: reqwest::Client::new(),
            master_flags: vec![
                "--heartbeat-interval-secs".into(),
                "0.25".into(),
                "--max-missed-heartbeats".into(),
                "8".into(),
                "--agent-reregister-secs".into(),
                "5".into(),
            ],
            token_file: None,
            scheme: "http",
            agent_master: None,
        }
    }

    /// Lets agents miss `n` heartbeats (0.25 s each) before the master calls them unreachable,
    /// from the master's next start on: for tests that sample task states throughout and must not
    /// see an agent lost because a loaded machine starved it for 2 s.
    pub fn tolerate_missed_heartbeats(&mut self, n: u32) {
        if let Some(i) = self
            .master_flags
            .iter()
            .position(|f| f == "--max-missed-heartbeats")
        {
            self.master_flags[i + 1] = n.to_string();
        }
    }

    /// More flags for the master (from its next start on).
    pub fn add_master_flags<S: AsRef<std::ffi::OsStr>>(&mut self, flags: &[S]) {
        self.master_flags.extend(
            flags
                .iter()
                .map(|f| f.as_ref().to_string_lossy().into_owned()),
        );
    }

    /// The master is HTTPS with a certificate `ca_pem` signed: the cluster's URL becomes
    /// `https://`, and its client (and the agents' `--master`) trust that CA.
    pub fn use_https(&mut self, ca_pem: &str) {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the test CA is PEM");
        self.http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .expect("an HTTPS client");
        self.scheme = "https";
    }

    /// Agents started from now on get `--master master` (a list of URLs, `zk://...`) instead of
    /// this cluster's URL.
    pub fn set_agent_master(&mut self, master: &str) {
        self.agent_master = Some(master.to_owned());
    }

    /// The master takes its join tokens from `path` (`--token-file`) instead of `--token`.
    pub fn use_token_file(&mut self, path: &Path) {
        self.token_file = Some(path.to_owned());
    }

    /// The master's pid.
    pub fn master_pid(&self) -> i32 {
        self.master.as_ref().expect("master running").id() as i32
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Waits until `name`'s log holds `needle` at least `times` times.
    pub async fn wait_log(&self, name: &str, needle: &str, times: usize) {
        eventually(
            Duration::from_secs(20),
            &format!("{times} × '{needle}' in {name}"),
            || async { (self.read_log(name).matches(needle).count() >= times).then_some(()) },
        )
        .await
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(name))
            .expect("log file")
    }

    /// The text a process has logged so far.
    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn start_master(&mut self) {
        let token: [&std::ffi::OsStr; 2] = match &self.token_file {
            Some(path) => ["--token-file".as_ref(), path.as_os_str()],
            None => ["--token".as_ref(), self.token.as_ref()],
        };
        let child = Command::new(bin("gantry-masterd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state-dir")
            .arg(self.dir.path().join("master"))
            .args(token)
            .args(["--http-credentials", CREDENTIALS])
            .args(&self.master_flags)
            .env("RUST_LOG", "info")
            .stdout(self.log("master.log"))
            .stderr(self.log("master.log"))
            .spawn()
            .expect("start gantry-masterd");
        self.master = Some(child);
    }

    /// kill -9 of the master.
    pub fn kill_master(&mut self) {
        if let Some(mut m) = self.master.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    pub fn signal_master(&self, sig: nix::sys::signal::Signal) {
        let pid = self.master.as_ref().expect("master running").id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).expect("signal the master");
    }

    /// Starts agent `i` (a new one, or again after a kill) offering `resources`.
    pub fn start_agent(&mut self, i: usize, resources: &str) {
        self.start_agent_with_token(i, resources, &self.token.clone());
    }

    pub fn start_agent_with_token(&mut self, i: usize, resources: &str, token: &str) {
        self.start_agent_with(i, resources, token, &[], &[]);
    }

    /// Starts agent `i` with extra flags (`--gpu-fixture PATH`) and environment variables
    /// (`HWLOC_XMLFILE`).
    pub fn start_agent_with(
        &mut self,
        i: usize,
        resources: &str,
        token: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) {
        let with_token: Vec<&str> = ["--token", token]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        self.start_agent_flags(i, resources, &with_token, env);
    }

    /// Starts agent `i` with `flags` and no `--token` of the harness's: the flags say how it joins
    /// (`--token-file PATH`, `--token T`).
    pub fn start_agent_flags<S: AsRef<std::ffi::OsStr>>(
        &mut self,
        i: usize,
        resources: &str,
        flags: &[S],
        env: &[(&str, &str)],
    ) {
        let log = format!("agent{i}.log");
        // By default these tests exercise the master/agent protocol with plain processes (tasks
        // that run as root and write outside their sandbox); a test that wants the native
        // containerizer passes `--containerizer native`.
        let containerizer: &[&str] = if flags.iter().any(|f| f.as_ref() == "--containerizer") {
            &[]
        } else {
            &["--containerizer", "process"]
        };
        let child = Command::new(bin("gantry-agentd"))
            .args(flags)
            .args(containerizer)
            .envs(env.iter().copied())
            .arg("--master")
            .arg(self.agent_master.clone().unwrap_or_else(|| self.url()))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--work-dir")
            .arg(self.agent_dir(i))
            .arg("--hostname")
            .arg("127.0.0.1")
            .arg("--resources")
            .arg(resources)
            .arg("--max-backoff-secs")
            .arg("0.5")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(self.log(&log))
            .stderr(self.log(&log))
            .spawn()
            .expect("start gantry-agentd");
        if self.agents.len() <= i {
            self.agents.resize_with(i + 1, || None);
        }
        self.agents[i] = Some(child);
    }

    pub fn agent_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent{i}"))
    }

    pub fn agent_pid(&self, i: usize) -> i32 {
        self.agents[i].as_ref().expect("agent running").id() as i32
    }

    /// kill -9 of agent `i`.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut a) = self.agents[i].take() {
            let _ = a.kill();
            let _ = a.wait();
        }
    }

    pub fn signal_agent(&self, i: usize, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.agent_pid(i)), sig)
            .expect("signal the agent");
    }

    /// A request to the master with the test's admin credentials.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
        self.http
            .request(method, format!("{}{path}", self.url()))
            .basic_auth(user, Some(pass))
    }

    /// A GET of an agent's own endpoint (`/state`, `/monitor/statistics`, `/files/...` on its
    /// `--listen` port) with the cluster's join token as `Authorization: Bearer`, as the agent
    /// requires (docs/security.md).
    pub fn agent_get(&self, port: u16, path: &str) -> reqwest::RequestBuilder {
        self.agent_get_with(port, path, &self.token)
    }

    /// As [`Cluster::agent_get`], presenting `token` (an agent started with another one).
    pub fn agent_get_with(&self, port: u16, path: &str, token: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(token)
    }

    /// The `gantry` CLI aimed at this cluster, with its credentials.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(bin("gantry"));
        c.args(["--master", &self.url(), "--credentials", CREDENTIALS]);
        c
    }

    pub async fn get(&self, path: &str) -> Value {
        self.try_get(path).await.unwrap_or(Value::Null)
    }

    pub async fn try_get(&self, path: &str) -> Option<Value> {
        let r = self.request(reqwest::Method::GET, path).send().await.ok()?;
        r.json().await.ok()
    }

    /// POST with a raw body; returns (status, JSON body).
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST reaches the master");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the master answers and `n` agents are registered and connected. On a timeout
    /// the panic shows the end of every log of the test, to tell a master that never started
    /// (its port taken meanwhile) from agents that could not join.
    pub async fn wait_agents(&self, n: usize) {
        let timeout = Duration::from_secs(20);
        let start = Instant::now();
        loop {
            let connected = self.try_get("/master/slaves").await.and_then(|s| {
                let list = s["slaves"].as_array()?.clone();
                Some(
                    list.iter()
                        .filter(|a| a["connected"] == true && a["active"] == true)
                        .count(),
                )
            });
            if connected == Some(n) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {n} connected agents (now: \
                     {connected:?})\n{}",
                    self.log_tails(8)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of each log of this test.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            let text = self.read_log(&name);
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {name} (last {lines} lines)\n"));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The app's tasks as the master lists them.
    pub async fn tasks(&self, app: &str) -> Vec<Value> {
        self.get(&format!("/v2/apps/{app}/tasks")).await["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `app` has exactly `n` tasks, all TASK_RUNNING; returns them.
    pub async fn wait_running(&self, app: &str, n: usize) -> Vec<Value> {
        eventually(
            Duration::from_secs(30),
            &format!("{n} running tasks of {app}"),
            || async {
                let t = self.tasks(app).await;
                (t.len() == n && t.iter().all(|t| t["state"] == "TASK_RUNNING")).then_some(t)
            },
        )
        .await
    }

    /// Waits until `app`'s `lastTaskFailure` names `task_id`; returns its message.
    pub async fn wait_failure_of(&self, app: &str, task_id: &str) -> String {
        let failure = eventually(
            Duration::from_secs(30),
            "the failure to be reported",
            || async {
                let f =
                    self.get(&format!("/v2/apps/{app}")).await["app"]["lastTaskFailure"].clone();
                (f["taskId"] == task_id).then_some(f)
            },
        )
        .await;
        failure["message"].as_str().unwrap_or("").to_string()
    }

    /// Pids of this test's task processes (`sleep` commands carrying the marker), from /proc.
    pub fn task_processes(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            if cmdline.starts_with("sleep 3600") && self.carries_marker(pid) && !zombie {
                out.push(pid);
            }
        }
        out
    }

    /// True when process `pid` has this test's marker in its environment.
    pub fn carries_marker(&self, pid: i32) -> bool {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        String::from_utf8_lossy(&env).contains(&self.marker)
    }

    /// The environment every app of this test gets (`"env": c.marker_env()`), so that its task
    /// processes can be found and cleaned up.
    pub fn marker_env(&self) -> Value {
        serde_json::json!({ "GANTRY_TEST_MARKER": self.marker })
    }

    /// A command for an app: records its pid in the sandbox and sleeps (`sleep 3600`). Exits with
    /// the code in `$MESOS_SANDBOX/exit` when that file appears.
    pub fn sleeper_cmd(&self) -> String {
        "echo $$ > $MESOS_SANDBOX/pid; sleep 3600 & c=$!; \
         while [ ! -f $MESOS_SANDBOX/exit ]; do sleep 0.1; done; kill $c; exit $(cat $MESOS_SANDBOX/exit)"
            .to_string()
    }

    /// The sandbox of a task on agent `i`.
    pub fn sandbox(&self, i: usize, task_id: &str) -> PathBuf {
        self.agent_dir(i).join("sandboxes").join(task_id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(m) = &self.master {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(m.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
        for a in self.agents.iter_mut().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(a.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = a.kill();
            let _ = a.wait();
        }
        self.kill_master();
        // Task processes live in their own sessions: end them and their shims by the marker.
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if self.carries_marker(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.remove_task_cgroups();
    }
}

impl Cluster {
    /// Removes the cgroups the agents made for this cluster's native tasks (found by the task
    /// ids of the agents' sandboxes). The agents were SIGKILLed, so nothing else would, and a task
    /// still running at the end of a test would leave its (now empty) cgroup behind. Only empty
    /// cgroups can be removed, so another test's are never touched; a cgroup whose last process is
    /// still exiting is tried again for a moment.
    fn remove_task_cgroups(&self) {
        let mut ids = Vec::new();
        for i in 0..self.agents.len() {
            for e in std::fs::read_dir(self.agent_dir(i).join("sandboxes"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let task = e.file_name().to_string_lossy().into_owned();
                ids.push(gantry_agentd::containerizer::native::plan::container_id(
                    &task,
                ));
            }
        }
        if ids.is_empty() {
            return;
        }
        let roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("gantry"))
            .chain([PathBuf::from("/sys/fs/cgroup/gantry")])
            .filter(|p| p.is_dir())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut left = 0;
            for root in &roots {
                for id in &ids {
                    let cg = root.join(id);
                    if cg.is_dir() && std::fs::remove_dir(&cg).is_err() {
                        left += 1;
                    }
                }
            }
            if left == 0 || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
