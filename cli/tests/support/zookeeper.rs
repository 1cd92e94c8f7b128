//! A real ZooKeeper ensemble for the high-availability tests: Debian's `zookeeper` 3.8 (installed by
//! `scripts/deps`), one JVM per server on free loopback ports, each with its own data directory
//! under the test's temp dir. Servers can be killed (`kill -9`) and started again; dropping the
//! ensemble kills every server it started.
#![allow(dead_code)]

use super::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's ZooKeeper jar; its manifest names the jars it needs.
const JAR: &str = "/usr/share/java/zookeeper.jar";
const JAVA: &str = "/usr/bin/java";

/// One server of the ensemble.
struct Server {
    id: usize,
    client_port: u16,
    config: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble.
pub struct Ensemble {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Ensemble {
    /// Starts `n` servers (1 for standalone, 3 or 5 for a quorum) and waits until every one of
    /// them serves (a quorum formed for n > 1).
    pub fn start(n: usize) -> Ensemble {
        for (path, package) in [(JAVA, "a Java runtime"), (JAR, "zookeeper")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the high-availability tests need Debian's {package} \
                 (scripts/deps installs the `zookeeper` package)"
            );
        }
        let dir = tempfile::tempdir().expect("a temp dir for ZooKeeper");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut servers = Vec::new();
        for (i, &(client, _, _)) in ports.iter().enumerate() {
            let id = i + 1;
            let sdir = dir.path().join(format!("zk{id}"));
            let data = sdir.join("data");
            std::fs::create_dir_all(&data).expect("ZooKeeper data dir");
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
            let mut cfg = format!(
                "tickTime=250\ninitLimit=40\nsyncLimit=20\ndataDir={}\nclientPort={client}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=ruok,srvr,mntr\nmaxSessionTimeout=60000\n\
                 minSessionTimeout=500\n",
                data.display()
            );
            if n > 1 {
                for (j, (_, p, e)) in ports.iter().enumerate() {
                    cfg.push_str(&format!("server.{}=127.0.0.1:{p}:{e}\n", j + 1));
                }
            }
            let config = sdir.join("zoo.cfg");
            std::fs::write(&config, cfg).expect("zoo.cfg");
            servers.push(Server {
                id,
                client_port: client,
                config,
                dir: sdir,
                child: None,
            });
        }
        let mut ensemble = Ensemble { servers, _dir: dir };
        for i in 0..n {
            ensemble.spawn(i);
        }
        for i in 0..n {
            ensemble.wait_serving(i, Duration::from_secs(90));
        }
        ensemble
    }

    fn spawn(&mut self, i: usize) {
        let s = &mut self.servers[i];
        let log = std::fs::File::create(s.dir.join("server.log")).expect("ZooKeeper log");
        let child = Command::new(JAVA)
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-Dzookeeper.jmx.log4j.disable=true",
                &format!("-Dzookeeper.log.dir={}", s.dir.display()),
                "-cp",
                JAR,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&s.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start a ZooKeeper server");
        s.child = Some(child);
    }

    /// Waits until server `i` answers `srvr` as a standalone server, leader or follower.
    fn wait_serving(&self, i: usize, timeout: Duration) {
        let port = self.servers[i].client_port;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mode) = four_letter(port, "srvr").and_then(|out| {
                out.lines()
                    .find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
            }) {
                if ["standalone", "leader", "follower"].contains(&mode.trim()) {
                    return;
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.servers[i].dir.join("server.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "ZooKeeper server {} (port {port}) did not serve within {timeout:?}; its log ends:\n{}",
                    self.servers[i].id,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...`: ZooKeeper's connect string for every server.
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `zk://<connect string><path>`, the form `--zk` and `--master` take.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}{path}", self.connect_string())
    }

    /// The client port of server `i` (0-based).
    pub fn client_port(&self, i: usize) -> u16 {
        self.servers[i].client_port
    }

    /// How many servers the ensemble has.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// `kill -9` server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every server: ZooKeeper entirely down.
    pub fn kill_all(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }

    /// Starts server `i` again (after [`Ensemble::kill`]) and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_serving(i, Duration::from_secs(90));
    }

    /// Starts every killed server again and waits until the ensemble serves.
    pub fn restart_all(&mut self) {
        let down: Vec<usize> = (0..self.servers.len())
            .filter(|&i| self.servers[i].child.is_none())
            .collect();
        for &i in &down {
            self.spawn(i);
        }
        for &i in &down {
            self.wait_serving(i, Duration::from_secs(90));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// One of ZooKeeper's four-letter commands, answered on the client port.
fn four_letter(port: u16, cmd: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(cmd.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
