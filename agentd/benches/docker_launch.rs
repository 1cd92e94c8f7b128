//! Launch latency of the Docker containerizer next to the docker CLI, in one run against one
//! private dockerd (Debian's docker.io; run as root): `cargo bench -p gantry-agentd --bench
//! docker_launch` (GANTRY_BENCH_N launches each, default 200). The image is a busybox-static root
//! imported locally (cached: nothing is pulled). Host network, `sleep 3600`, 0.1 CPU, 32 MiB.
//!
//! - Gantry → TASK_RUNNING: the task table's launch until it emitted TASK_RUNNING (image check,
//!   create, start, inspect, checkpoint), then the task is killed and its container removed.
//! - `docker run -d`: the CLI until it returns (create + start), then `docker rm -f`.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

use anyhow::{bail, Context, Result};
use gantry_agentd::containerizer::docker::{DockerConfig, DockerContainerizer, DockerPolicy};
use gantry_agentd::recovery::WorkDir;
use gantry_agentd::tasks::TaskTable;
use gantry_proto::{DockerSpec, StatusUpdate, TaskInfo, TaskState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const IMAGE: &str = "gantry-bench:latest";

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn line(name: &str, v: &mut [f64]) {
    println!(
        "{name:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   (n={})",
        pct(v, 0.5),
        pct(v, 0.99),
        v.len()
    );
}

/// A private dockerd under `dir`, stopped (and its mounts released) on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path) -> Result<Self> {
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("sock").display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("dockerd (apt-get install docker.io)")?;
        let d = Daemon {
            child,
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while !d.docker(&["info"])?.status.success() {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("dockerd did not answer in 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(d)
    }

    fn docker(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("sock").display()))
            .args(args)
            .output()?)
    }

    fn must(&self, args: &[&str]) -> Result<()> {
        let out = self.docker(args)?;
        if !out.status.success() {
            bail!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

async fn next_state(
    rx: &mut UnboundedReceiver<StatusUpdate>,
    id: &str,
    terminal: bool,
) -> Result<StatusUpdate> {
    loop {
        let u = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await?
            .context("outbox closed")?;
        if u.status.task_id.as_str() == id && u.status.state.is_terminal() == terminal {
            return Ok(u);
        }
    }
}

fn task(id: &str) -> TaskInfo {
    let mut t = TaskInfo::default();
    t.task_id = id.into();
    t.command.arguments = vec!["/bin/sleep".into(), "3600".into()];
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    t.kill_grace_period_secs = 0.0;
    t.container.docker = Some(DockerSpec {
        image: IMAGE.into(),
        ..DockerSpec::default()
    });
    t
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root (dockerd)");
    }
    let n: usize = std::env::var("GANTRY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::Builder::new().prefix("gdkb").tempdir_in("/tmp")?;
    let daemon = Daemon::start(dir.path())?;
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .context("/bin/busybox (apt-get install busybox-static)")?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep"))?;
    let tar = dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()?;
    if !st.success() {
        bail!("tar failed");
    }
    daemon.must(&["import", &tar.display().to_string(), IMAGE])?;

    let cz = Arc::new(
        DockerContainerizer::connect(&DockerConfig {
            socket: dir.path().join("sock"),
            policy: DockerPolicy::default(),
        })
        .map_err(anyhow::Error::msg)?,
    );
    let wd = WorkDir::open(&dir.path().join("work"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let table = TaskTable::new(wd, cz, "127.0.0.1".into(), tx);

    println!("docker launch benchmark: {n} launches each of `sleep 3600` ({IMAGE}, host network)");
    let mut gantry = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("b{i}");
        let i0 = Instant::now();
        table.launch(task(&id));
        let u = next_state(&mut rx, &id, false).await?;
        if u.status.state != TaskState::TaskRunning {
            bail!("expected TASK_RUNNING, got {:?}", u.status);
        }
        gantry.push(i0.elapsed().as_secs_f64() * 1e3);
        table.acknowledge(&u.status.task_id, u.seq);
        table.kill(&u.status.task_id, Some(0.0));
        let end = next_state(&mut rx, &id, true).await?;
        table.acknowledge(&end.status.task_id, end.seq);
    }
    let mut cli = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("gb-{i}");
        let i0 = Instant::now();
        daemon.must(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "--cpus",
            "0.1",
            "-m",
            "32m",
            IMAGE,
            "/bin/sleep",
            "3600",
        ])?;
        cli.push(i0.elapsed().as_secs_f64() * 1e3);
        daemon.must(&["rm", "-f", &name])?;
    }
    line("Gantry docker: launch → TASK_RUNNING", &mut gantry);
    line("docker run -d (CLI: create + start)", &mut cli);
    // Let the task table's removals finish before the daemon stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(daemon);
    Ok(())
}
