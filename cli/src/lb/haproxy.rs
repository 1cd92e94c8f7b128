//! Debian's `haproxy` run in master-worker mode (`-W`, master CLI on `-S`): a new config is
//! checked with `haproxy -c` first and the old one kept when it fails; a valid one replaces the
//! file and the master is told to reload (SIGUSR2), which starts new workers on the listening
//! sockets the old ones hand over and lets the old ones finish their connections.

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The haproxy master process this load balancer drives.
pub struct Haproxy {
    bin: PathBuf,
    config: PathBuf,
    pidfile: PathBuf,
    master_socket: PathBuf,
    /// The master when this process started it (reaped on exit).
    child: Option<Child>,
    /// The master's pid, started here or adopted from the pid file of an earlier run.
    pid: Option<i32>,
    /// Reloads done (not counting the start).
    pub reloads: u64,
}

/// What [`Haproxy::apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Started,
    Reloaded,
}

impl Haproxy {
    /// `config` is where the live configuration is written; the pid file and the master CLI
    /// socket live in `state_dir`.
    pub fn new(bin: PathBuf, config: PathBuf, state_dir: &Path) -> Self {
        Haproxy {
            bin,
            config,
            pidfile: state_dir.join("haproxy.pid"),
            master_socket: state_dir.join("haproxy-master.sock"),
            child: None,
            pid: None,
            reloads: 0,
        }
    }

    /// `haproxy -v`'s first line, or an error that says how to install it.
    pub async fn version(&self) -> anyhow::Result<String> {
        let out = Command::new(&self.bin).arg("-v").output().await;
        match out {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()),
            Ok(o) => bail!("{} -v failed: {}", self.bin.display(), o.status),
            Err(e) => bail!(
                "cannot run {}: {e}; gantry lb needs HAProxy (Debian: apt-get install haproxy, \
                 or --haproxy-bin PATH)",
                self.bin.display()
            ),
        }
    }

    /// Takes over a master that an earlier run left serving (its pid file names a live haproxy),
    /// so that a restart of `gantry lb` reloads it instead of dropping its connections.
    pub fn adopt(&mut self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "haproxy").then(|| {
            self.pid = Some(pid);
            pid
        })
    }

    /// `haproxy -c` of a config file; the error holds HAProxy's messages.
    pub async fn check(&self, path: &Path) -> anyhow::Result<()> {
        let out = Command::new(&self.bin)
            .args(["-c", "-q", "-f"])
            .arg(path)
            .output()
            .await
            .with_context(|| format!("running {} -c", self.bin.display()))?;
        if out.status.success() {
            return Ok(());
        }
        bail!(
            "haproxy -c refused it: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }

    /// Checks `text`; when valid, makes it the live config and starts or reloads HAProxy. When
    /// invalid, the running HAProxy and the live file stay as they were.
    pub async fn apply(&mut self, text: &str) -> anyhow::Result<Applied> {
        let candidate = self.config.with_extension("candidate");
        tokio::fs::write(&candidate, text)
            .await
            .with_context(|| format!("writing {}", candidate.display()))?;
        if let Err(e) = self.check(&candidate).await {
            let _ = tokio::fs::remove_file(&candidate).await;
            return Err(e);
        }
        tokio::fs::rename(&candidate, &self.config)
            .await
            .with_context(|| format!("replacing {}", self.config.display()))?;
        self.start_or_reload().await
    }

    /// Starts HAProxy on the live config when none runs, else reloads it.
    pub async fn start_or_reload(&mut self) -> anyhow::Result<Applied> {
        if let Some(pid) = self.running_pid() {
            kill(Pid::from_raw(pid), Signal::SIGUSR2).context("signalling the haproxy master")?;
            self.reloads += 1;
            return Ok(Applied::Reloaded);
        }
        let mut child = Command::new(&self.bin)
            .arg("-W")
            .arg("-db")
            .arg("-f")
            .arg(&self.config)
            .arg("-p")
            .arg(&self.pidfile)
            .arg("-S")
            .arg(format!("{},mode,600", self.master_socket.display()))
            .stdin(Stdio::null())
            .kill_on_drop(false)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        // A config that passed -c can still fail to start (a port taken): say so now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(status) = child.try_wait()? {
            bail!("haproxy exited at once ({status}); see its messages above");
        }
        self.pid = child.id().map(|p| p as i32);
        self.child = Some(child);
        Ok(Applied::Started)
    }

    /// The master's pid while it runs.
    fn running_pid(&mut self) -> Option<i32> {
        if let Some(child) = &mut self.child {
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                self.pid = None;
            }
        }
        let pid = self.pid?;
        if kill(Pid::from_raw(pid), None).is_err() {
            self.pid = None;
        }
        self.pid
    }

    /// Stops HAProxy: SIGUSR1 lets workers finish their connections (up to `hard-stop-after`),
    /// SIGTERM ends them at once.
    pub async fn stop(&mut self, graceful: bool) {
        if let Some(pid) = self.running_pid() {
            let sig = if graceful {
                Signal::SIGUSR1
            } else {
                Signal::SIGTERM
            };
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if let Some(mut child) = self.child.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        self.pid = None;
    }
}
