//! Debian's `haproxy` run in master-worker mode (`-W`, master CLI on `-S`): a new config is
//! checked with `haproxy -c` first and the old one kept when it fails; a valid one replaces the
//! file and the master is told to reload (SIGUSR2), which starts new workers on the listening
//! sockets the old ones hand over and lets the old ones finish their connections. Server changes
//! go through the runtime API instead ([`Haproxy::runtime`]): each command is sent through the
//! master CLI to the current worker by its pid (`@!<pid>`), so none lands on an old worker still
//! finishing after a reload, and each backend touched is read back (`show servers state`).

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
    /// The current worker's pid (from the master's `show proc`), once known.
    pub worker: Option<i32>,
    /// Runtime API commands applied.
    pub runtime_commands: u64,
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
            worker: None,
            runtime_commands: 0,
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
            let before = self.current_worker().await.ok();
            kill(Pid::from_raw(pid), Signal::SIGUSR2).context("signalling the haproxy master")?;
            self.reloads += 1;
            self.wait_worker(before).await;
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
        self.wait_worker(None).await;
        Ok(Applied::Started)
    }

    /// Waits (up to 10 s) until the master names a worker other than `before`, and remembers it;
    /// unknown when it does not (the next runtime change then fails and reloads).
    async fn wait_worker(&mut self, before: Option<i32>) {
        self.worker = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            match self.current_worker().await {
                Ok(w) if Some(w) != before => {
                    self.worker = Some(w);
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tracing::warn!("haproxy's master names no new worker");
    }

    /// The current worker's pid: the first line under `# workers` of the master's `show proc`.
    pub async fn current_worker(&self) -> anyhow::Result<i32> {
        let answer = cli(&self.master_socket, "show proc").await?;
        worker_of(&answer).with_context(|| format!("no worker in `show proc`: {answer:?}"))
    }

    /// Applies runtime API commands to the current worker, backend by backend, and checks each
    /// backend against its expected slots with `check`. Any error (an answer that is not a
    /// success, a read-back that differs, no worker) ends it: the caller reloads instead.
    pub async fn runtime(
        &mut self,
        commands: &[(String, Vec<String>)],
        check: &dyn Fn(&str, &str) -> Result<(), String>,
    ) -> anyhow::Result<()> {
        let Some(pid) = self.worker.filter(|_| self.pid.is_some()) else {
            bail!("the haproxy worker is not known");
        };
        for (backend, cmds) in commands {
            for c in cmds {
                let answer = cli(&self.master_socket, &format!("@!{pid} {c}")).await?;
                if let Some(e) = runtime_error(&answer) {
                    bail!("`{c}`: {e}");
                }
                self.runtime_commands += 1;
            }
            let state = cli(
                &self.master_socket,
                &format!("@!{pid} show servers state {backend}"),
            )
            .await?;
            check(backend, &state).map_err(|e| anyhow::anyhow!("read back: {e}"))?;
        }
        Ok(())
    }

    /// The master's pid while it runs (or was adopted).
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

/// One command over a CLI socket (the master's: its answer ends when it closes the connection,
/// which it does once the write side is shut), within 5 s.
async fn cli(socket: &Path, command: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let talk = async {
        let mut s = tokio::net::UnixStream::connect(socket).await?;
        s.write_all(format!("{command}\n").as_bytes()).await?;
        s.shutdown().await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(5), talk).await {
        Ok(r) => r.with_context(|| format!("haproxy CLI {}", socket.display())),
        Err(_) => bail!("haproxy CLI {}: no answer in 5 s", socket.display()),
    }
}

/// The first pid under `# workers` in `show proc`.
fn worker_of(show_proc: &str) -> Option<i32> {
    show_proc
        .lines()
        .skip_while(|l| !l.starts_with("# workers"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}

/// The error in a `set server` answer: success is an empty answer or one saying what changed.
fn runtime_error(answer: &str) -> Option<String> {
    let a = answer.trim();
    let ok = a.is_empty()
        || a.starts_with("IP changed from")
        || a.starts_with("no need to change the addr")
        || a.starts_with("health check port updated");
    (!ok).then(|| a.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_the_master_cli() {
        let proc = "#<PID> <type> <reloads> <uptime> <version>\n2582 master 1 [failed: 0] 0d 2.6\n\
                    # workers\n32120 worker 0 0d 2.6\n# old workers\n2632 worker 1 0d 2.6\n";
        assert_eq!(worker_of(proc), Some(32120));
        assert_eq!(worker_of("# workers\n"), None);
        assert_eq!(runtime_error("\n"), None);
        assert_eq!(
            runtime_error("no need to change the addr, port changed from '1' to '18102' by 'stats socket command'\n\n"),
            None
        );
        assert_eq!(
            runtime_error("No such server.\n\n").as_deref(),
            Some("No such server.")
        );
        assert!(runtime_error("Can't find the target PID matching the prefix '@!9'\n").is_some());
    }
}
