//! Slurm as a benchmark peer: a throwaway one-node Slurm cluster (Debian's `slurm-wlm`, 22.05 on
//! bookworm) started from a temp dir, with its own munged, slurmctld and slurmd as child processes,
//! and the time it takes to run n trivial batch jobs (`sbatch --wrap=true`) from submit to all
//! finished. The configuration is Slurm's default apart from what a private instance needs: one
//! node (this host, with the CPUs and memory `slurmd -C` reports), free ports, state, spool and
//! munge socket in the temp dir, no accounting, and `proctrack/linuxproc` so that no cgroup setup
//! is needed. Everything is stopped and removed when the cluster is dropped. Needs root (slurmd
//! launches the jobs) and the Debian packages `slurm-wlm` and `munge`.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs the cluster needs, all from `slurm-wlm` but munged (`munge`).
const PROGRAMS: [&str; 7] = [
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
];

/// How long a daemon gets to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often the queue is polled while waiting for the jobs to finish.
const POLL: Duration = Duration::from_millis(100);

/// A daemon stopped with SIGTERM (then SIGKILL after [`STOP_GRACE`]) and reaped when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Daemon { name, child })
    }

    /// Fails if the daemon has exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the jobs are submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submit {
    /// n sequential `sbatch --wrap=true -o /dev/null` calls, as a user's loop would make them.
    Sequential,
    /// One `sbatch --array=1-n --wrap=true -o /dev/null` (Slurm's MaxArraySize default is 1001).
    Array,
}

impl Submit {
    /// The command line, for the printed figures.
    pub fn describe(self) -> &'static str {
        match self {
            Submit::Sequential => "sbatch --wrap=true",
            Submit::Array => "sbatch --array=1-n --wrap=true",
        }
    }
}

/// What one run of n jobs took.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub jobs: usize,
    /// From the first submission to the last sbatch returning.
    pub submit: Duration,
    /// From the first submission to the queue being empty.
    pub total: Duration,
}

impl Timings {
    /// Jobs finished per second, submit to all finished.
    pub fn jobs_per_s(&self) -> f64 {
        self.jobs as f64 / self.total.as_secs_f64()
    }
}

/// A running one-node Slurm cluster in a temp dir.
pub struct SlurmCluster {
    // Dropped in this order: slurmd, slurmctld, munged, then the dir.
    slurmd: Daemon,
    slurmctld: Daemon,
    munged: Daemon,
    dir: tempfile::TempDir,
    conf: PathBuf,
    node: String,
    /// `slurmctld -V`, e.g. `slurm-wlm 22.05.8`.
    pub version: String,
}

/// Fails, naming the Debian packages, if a program the cluster needs is not installed.
pub fn check_installed() -> Result<()> {
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the Slurm peer needs {}: install the Debian packages with \
             `apt-get install -y slurm-wlm munge`",
            missing.join(", ")
        );
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("the Slurm peer must run as root (slurmd launches the jobs)");
    }
    Ok(())
}

/// The program's path on PATH, or in /usr/sbin (munged and the daemons live there and a non-login
/// root shell may not have it on PATH).
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn program(name: &str) -> Result<PathBuf> {
    which(name)
        .with_context(|| format!("{name} is not installed (apt-get install -y slurm-wlm munge)"))
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The node line for this host: `slurmd -C`'s first line (NodeName=<host> CPUs=.. Boards=..
/// SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..), and the node's name.
fn node_line() -> Result<(String, String)> {
    let out = output(Command::new(program("slurmd")?).arg("-C"))?;
    let line = out
        .lines()
        .find(|l| l.starts_with("NodeName="))
        .with_context(|| format!("`slurmd -C` printed no NodeName line: {out}"))?
        .trim()
        .to_string();
    let name = line
        .split_whitespace()
        .next()
        .and_then(|f| f.strip_prefix("NodeName="))
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        bail!("`slurmd -C` printed no node name: {line}");
    }
    Ok((line, name))
}

/// The last lines of a log in the temp dir, for error messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Polls `ready` every 100 ms until it says yes or `timeout` passes.
fn wait_for(timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

impl SlurmCluster {
    /// Writes the configuration and munge key, starts munged, slurmctld and slurmd, and waits
    /// (up to 60 s) until the node is idle.
    pub fn start() -> Result<Self> {
        check_installed()?;
        let version = output(Command::new(program("slurmctld")?).arg("-V"))?
            .trim()
            .to_string();
        let (node_line, node) = node_line()?;

        let dir = tempfile::Builder::new().prefix("gantry-slurm-").tempdir()?;
        let d = dir.path();
        // munged wants its socket's directory searchable by everyone.
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        for sub in ["state", "spool"] {
            fs::create_dir(d.join(sub))?;
        }

        let key = d.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        fs::write(&key, &bytes)?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o400))?;
        let socket = d.join("munge.socket");
        let mut munged = Daemon::spawn(
            "munged",
            Command::new(program("munged")?)
                // --force: the temp dir's parent (/tmp) is world-writable, which munged's
                // directory checks refuse otherwise.
                .args(["--foreground", "--force"])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--pid-file={}", d.join("munged.pid").display()))
                .arg(format!("--seed-file={}", d.join("munged.seed").display()))
                .arg(format!("--log-file={}", d.join("munged.log").display())),
        )?;
        if !wait_for(Duration::from_secs(10), || {
            munged.check_running()?;
            Ok(socket.exists())
        })? {
            bail!(
                "munged made no socket in 10 s:\n{}",
                log_tail(&d.join("munged.log"))
            );
        }

        let ctld_port = super::free_port();
        let slurmd_port = super::free_port();
        let p = |name: &str| d.join(name).display().to_string();
        let conf_text = format!(
            "# A private one-node Slurm for Gantry's benchmarks; Slurm's defaults otherwise.\n\
             ClusterName=gantrybench\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmUser=root\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctld_pid}\n\
             SlurmdPidFile={slurmd_pid}\n\
             SlurmctldLogFile={ctld_log}\n\
             SlurmdLogFile={slurmd_log}\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             MpiDefault=none\n\
             MailProg=/bin/true\n\
             {node_line} NodeAddr=127.0.0.1 State=UNKNOWN\n\
             PartitionName=bench Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
            socket = socket.display(),
            state = p("state"),
            spool = p("spool"),
            ctld_pid = p("slurmctld.pid"),
            slurmd_pid = p("slurmd.pid"),
            ctld_log = p("slurmctld.log"),
            slurmd_log = p("slurmd.log"),
        );
        let conf = d.join("slurm.conf");
        fs::write(&conf, conf_text)?;

        let slurmctld = Daemon::spawn(
            "slurmctld",
            Command::new(program("slurmctld")?)
                .args(["-D", "-f"])
                .arg(&conf)
                .env("SLURM_CONF", &conf),
        )?;
        let slurmd = Daemon::spawn(
            "slurmd",
            Command::new(program("slurmd")?)
                .args(["-D", "-N", &node, "-f"])
                .arg(&conf)
                .env("SLURM_CONF", &conf),
        )?;
        let mut cluster = SlurmCluster {
            slurmd,
            slurmctld,
            munged,
            dir,
            conf,
            node,
            version,
        };
        cluster.wait_idle()?;
        Ok(cluster)
    }

    /// A Slurm client command pointed at this cluster's configuration.
    pub fn command(&self, name: &str) -> Result<Command> {
        let mut command = Command::new(program(name)?);
        command.env("SLURM_CONF", &self.conf);
        Ok(command)
    }

    fn wait_idle(&mut self) -> Result<()> {
        let mut last = String::new();
        let idle = wait_for(Duration::from_secs(60), || {
            self.check_running()?;
            let out = self
                .command("sinfo")?
                .args(["-h", "-N", "-n", &self.node, "-o", "%T"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()?;
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok(out.status.success() && last == "idle")
        })?;
        if !idle {
            bail!(
                "node {} not idle in 60 s (sinfo: {last:?})\nslurmctld.log:\n{}\nslurmd.log:\n{}",
                self.node,
                log_tail(&self.dir.path().join("slurmctld.log")),
                log_tail(&self.dir.path().join("slurmd.log")),
            );
        }
        Ok(())
    }

    /// A line of `scontrol show config` (e.g. `SelectType`), for printing beside the figures.
    pub fn config_value(&self, key: &str) -> Result<String> {
        let out = output(self.command("scontrol")?.args(["show", "config"]))?;
        Ok(out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .and_then(|l| l.split_once('='))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default())
    }

    /// Jobs in the queue (pending, running or completing).
    fn queued(&self) -> Result<usize> {
        let out = output(self.command("squeue")?.args(["-h", "-r", "-o", "%i"]))?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// Submits n `true` jobs and waits until the queue is empty; fails if a job record Slurm
    /// still holds (MinJobAge, 300 s by default) ended in any state but COMPLETED.
    pub fn submit_and_wait(&mut self, n: usize, how: Submit) -> Result<Timings> {
        if self.queued()? != 0 {
            bail!("the queue is not empty before the run");
        }
        let start = Instant::now();
        match how {
            Submit::Sequential => {
                for _ in 0..n {
                    output(self.command("sbatch")?.args([
                        "--parsable",
                        "--wrap=true",
                        "-o",
                        "/dev/null",
                    ]))?;
                }
            }
            Submit::Array => {
                output(self.command("sbatch")?.args([
                    "--parsable",
                    &format!("--array=1-{n}"),
                    "--wrap=true",
                    "-o",
                    "/dev/null",
                ]))?;
            }
        }
        let submit = start.elapsed();
        while self.queued()? != 0 {
            self.check_running()?;
            std::thread::sleep(POLL);
        }
        let total = start.elapsed();
        self.check_failures()?;
        Ok(Timings {
            jobs: n,
            submit,
            total,
        })
    }

    /// Fails if a daemon has exited.
    fn check_running(&mut self) -> Result<()> {
        self.munged.check_running()?;
        self.slurmctld.check_running()?;
        self.slurmd.check_running()
    }

    fn check_failures(&self) -> Result<()> {
        let out = output(self.command("scontrol")?.args(["-o", "show", "jobs"]))?;
        let bad: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("JobState=") && !l.contains("JobState=COMPLETED"))
            .collect();
        if !bad.is_empty() {
            bail!("{} job(s) did not complete, first: {}", bad.len(), bad[0]);
        }
        Ok(())
    }
}
