//! `gantry doctor agent|master`: a preflight of this host. Each check is a small function over an
//! injected [`Host`] root and injected [`Probes`], so tests fake every failure; this module runs
//! the checks, prints ✓/✗/! lines (or `--json`) and gives the exit status.

mod cgroups;
mod hardware;
mod kernel;
mod master_link;
mod services;
mod storage;

use clap::{Args, Subcommand};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use kernel::run_unshare_if_requested;

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome: what it looked at, and when not ok, the exact fix.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn mark(&self) -> &'static str {
        match self.status {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// The filesystem the checks read: `/` on a real host, a fixture directory in tests. Paths that
/// the host's own files name (mount points in mountinfo) are used as written.
#[derive(Clone, Debug)]
pub struct Host {
    pub root: PathBuf,
}

impl Host {
    pub fn real() -> Self {
        Self { root: "/".into() }
    }

    /// `abs` (e.g. `/proc/filesystems`) under this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn read(&self, abs: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.path(abs))
    }
}

/// What the checks ask of the running system besides files: each real implementation is in the
/// module of its check; tests replace any of them.
pub trait Probes {
    /// Can this process create a namespace of this kind (`pid`, `mnt`, `uts`, `ipc`, `net`)?
    fn unshare(&self, ns: &str) -> Result<(), String>;
    /// hwloc's view of this machine.
    fn topology(&self) -> Result<hardware::TopologySummary, String>;
    /// NVML's GPUs (index, minor, name), or why NVML cannot be used.
    fn nvml(&self) -> Result<Vec<hardware::GpuSeen>, String>;
    /// `GET /_ping` over a Unix socket: the first line of the answer.
    fn docker_ping(&self, socket: &Path) -> Result<String, String>;
    /// Runs a program: `None` when it is not installed, else its stdout or why it failed.
    fn command(&self, program: &str, args: &[&str]) -> Option<Result<String, String>>;
    /// Binds a TCP listener on `addr` and drops it.
    fn bind(&self, addr: SocketAddr) -> std::io::Result<()>;
    /// The process listening on `addr`'s TCP port: its pid and program name (`/proc/PID/comm`).
    fn listener(&self, addr: SocketAddr) -> Option<(u32, String)>;
    /// A user from the password database.
    fn user(&self, name: &str) -> Option<gantry_agentd::containerizer::native::users::TaskUser>;
}

/// The probes of the running system.
pub struct RealProbes;

impl Probes for RealProbes {
    fn unshare(&self, ns: &str) -> Result<(), String> {
        Self::unshare_in_child(ns)
    }
    fn topology(&self) -> Result<hardware::TopologySummary, String> {
        Self::hwloc()
    }
    fn nvml(&self) -> Result<Vec<hardware::GpuSeen>, String> {
        Self::nvml_gpus()
    }
    fn docker_ping(&self, socket: &Path) -> Result<String, String> {
        Self::ping_docker(socket)
    }
    fn command(&self, program: &str, args: &[&str]) -> Option<Result<String, String>> {
        Self::run(program, args)
    }
    fn bind(&self, addr: SocketAddr) -> std::io::Result<()> {
        std::net::TcpListener::bind(addr).map(drop)
    }
    fn listener(&self, addr: SocketAddr) -> Option<(u32, String)> {
        storage::listener_of(Path::new("/proc"), addr.port())
    }
    fn user(&self, name: &str) -> Option<gantry_agentd::containerizer::native::users::TaskUser> {
        gantry_agentd::containerizer::native::users::lookup(name)
    }
}

/// `gantry doctor`.
#[derive(Subcommand)]
pub enum DoctorCommand {
    /// Checks an agent host: cgroups, namespaces, overlayfs, hwloc, GPUs, Docker, clock, port,
    /// work dir, and the master with the join token.
    Agent(AgentArgs),
    /// Checks a master host: clock, port, state dir.
    Master(MasterArgs),
}

/// The agent's own flags and environment variables, so that the doctor reads what the agent will;
/// with `--config`, the agent's TOML file fills in what they do not give.
#[derive(Args)]
pub struct AgentArgs {
    /// The agent's config file (as `gantry-agentd --config`, e.g. /etc/gantry/agent.toml): its
    /// token, token_file, work_dir, listen, default_user and master are used where no flag or
    /// variable here gives them.
    #[arg(long, env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The join token (as `gantry-agentd --token`).
    #[arg(long, env = "GANTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the join token (as `gantry-agentd --token-file`).
    #[arg(long, env = "GANTRY_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The agent's work dir [default: /var/lib/gantry/agent].
    #[arg(long, env = "GANTRY_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The address the agent will listen on [default: 127.0.0.1:5051].
    #[arg(long, env = "GANTRY_AGENT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The user tasks run as by default (as `gantry-agentd --default-user`) [default: nobody].
    #[arg(long, env = "GANTRY_DEFAULT_USER")]
    pub default_user: Option<String>,
}

/// What the agent checks use: the flags, else the config file, else the agent's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSettings {
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub work_dir: PathBuf,
    pub listen: SocketAddr,
    pub default_user: String,
    /// The config file's master URL, used when `--master` is left at its default.
    pub master: Option<String>,
}

impl AgentArgs {
    /// Merges the flags with the config file (when given) and the agent's defaults.
    pub fn settings(self) -> anyhow::Result<AgentSettings> {
        let file = match &self.config {
            Some(p) => gantry_agentd::config::AgentArgs::from_file(p)?,
            None => gantry_agentd::config::AgentArgs::default(),
        };
        let (token, token_file) = if self.token.is_some() || self.token_file.is_some() {
            (self.token, self.token_file)
        } else {
            (file.token, file.token_file)
        };
        Ok(AgentSettings {
            token,
            token_file,
            work_dir: self
                .work_dir
                .or(file.work_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/gantry/agent")),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5051))),
            default_user: self
                .default_user
                .or(file.default_user)
                .unwrap_or_else(|| "nobody".into()),
            master: file.master,
        })
    }
}

/// The master's own flags and environment variables; with `--config`, its TOML file fills in what
/// they do not give.
#[derive(Args)]
pub struct MasterArgs {
    /// The master's config file (as `gantry-masterd --config`, e.g. /etc/gantry/master.toml): its
    /// state_dir and listen are used where no flag or variable here gives them.
    #[arg(long, env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The master's state dir [default: /var/lib/gantry/master].
    #[arg(long, env = "GANTRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The address the master will listen on [default: 127.0.0.1:5050].
    #[arg(long, env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
}

impl MasterArgs {
    /// The state dir and listen address: the flags, else the config file, else the defaults.
    pub fn settings(self) -> anyhow::Result<(PathBuf, SocketAddr)> {
        let file = match &self.config {
            Some(p) => gantry_masterd::config::MasterArgs::from_file(p)?,
            None => gantry_masterd::config::MasterArgs::default(),
        };
        Ok((
            self.state_dir
                .or(file.state_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/gantry/master")),
            self.listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5050))),
        ))
    }
}

/// The CLI's `--master` when nobody gives one.
pub const DEFAULT_MASTER: &str = "http://127.0.0.1:5050";

/// Where the master is and how to reach it (the CLI's global flags).
pub struct MasterTarget<'a> {
    pub url: &'a str,
    pub ca_file: Option<&'a Path>,
}

/// Runs the checks of `cmd`, prints them, and returns the exit status (0: nothing failed).
pub fn run(cmd: DoctorCommand, master: MasterTarget<'_>, json: bool) -> anyhow::Result<i32> {
    let host = Host::real();
    let probes = RealProbes;
    let checks = match cmd {
        DoctorCommand::Agent(a) => {
            let a = a.settings()?;
            let token = master_link::token_from(a.token.as_deref(), a.token_file.as_deref());
            let mut checks = agent_host_checks(&host, &probes, &a);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let http = crate::client::http_client(master.ca_file)?;
            let url = match &a.master {
                Some(from_file) if master.url == DEFAULT_MASTER => from_file.as_str(),
                _ => master.url,
            };
            checks.extend(rt.block_on(master_link::checks(&http, url, token)));
            checks
        }
        DoctorCommand::Master(m) => {
            let (state_dir, listen) = m.settings()?;
            vec![
                services::clock(&host, &probes),
                storage::port_free(&probes, listen, "gantry-masterd"),
                storage::dir_writable("state dir", &state_dir, "--state-dir"),
            ]
        }
    };
    print(&checks, json)?;
    Ok(exit_status(&checks))
}

/// The checks that look only at this host (everything but the master link).
pub fn agent_host_checks(host: &Host, probes: &dyn Probes, a: &AgentSettings) -> Vec<Check> {
    let mut checks = cgroups::checks(host, probes);
    checks.push(kernel::namespaces(host, probes));
    checks.push(kernel::overlayfs(host));
    checks.push(hardware::topology(probes));
    checks.push(hardware::gpus(host, probes));
    checks.push(services::docker(host, probes));
    checks.push(services::clock(host, probes));
    checks.push(storage::port_free(probes, a.listen, "gantry-agentd"));
    checks.push(storage::dir_writable("work dir", &a.work_dir, "--work-dir"));
    checks.push(storage::sandboxes_reachable(
        probes,
        &a.work_dir,
        &a.default_user,
    ));
    checks
}

/// 0 when no check failed (warnings allowed), else 1.
pub fn exit_status(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}

fn print(checks: &[Check], json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "checks": checks }))?
        );
        return Ok(());
    }
    for c in checks {
        println!("{} {:<12} {}", c.mark(), c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("  fix: {fix}");
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    println!(
        "{} checks: {} ok, {warned} warnings, {failed} failed",
        checks.len(),
        checks.len() - failed - warned
    );
    Ok(())
}

#[cfg(test)]
pub(crate) mod fake {
    //! Probes that answer what a test says.
    use super::hardware::{GpuSeen, TopologySummary};
    use super::Probes;
    use gantry_agentd::containerizer::native::users::TaskUser;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::path::Path;

    #[derive(Default)]
    pub struct FakeProbes {
        pub unshare_fails: HashMap<&'static str, String>,
        pub topology: Option<Result<TopologySummary, String>>,
        pub nvml: Option<Result<Vec<GpuSeen>, String>>,
        pub docker: Option<Result<String, String>>,
        /// program → answer; a program not here is "not installed".
        pub commands: HashMap<&'static str, Result<String, String>>,
        pub port_taken: bool,
        /// Who holds the taken port.
        pub listener: Option<(u32, String)>,
        pub users: Vec<TaskUser>,
    }

    impl Probes for FakeProbes {
        fn unshare(&self, ns: &str) -> Result<(), String> {
            match self.unshare_fails.get(ns) {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            }
        }
        fn topology(&self) -> Result<TopologySummary, String> {
            self.topology
                .clone()
                .unwrap_or_else(|| Err("no topology faked".into()))
        }
        fn nvml(&self) -> Result<Vec<GpuSeen>, String> {
            self.nvml
                .clone()
                .unwrap_or_else(|| Err("libnvidia-ml.so.1: not found".into()))
        }
        fn docker_ping(&self, _socket: &Path) -> Result<String, String> {
            self.docker
                .clone()
                .unwrap_or_else(|| Err("connection refused".into()))
        }
        fn command(&self, program: &str, _args: &[&str]) -> Option<Result<String, String>> {
            self.commands.get(program).cloned()
        }
        fn bind(&self, _addr: SocketAddr) -> std::io::Result<()> {
            if self.port_taken {
                Err(std::io::Error::from(std::io::ErrorKind::AddrInUse))
            } else {
                Ok(())
            }
        }
        fn listener(&self, _addr: SocketAddr) -> Option<(u32, String)> {
            self.listener.clone()
        }
        fn user(&self, name: &str) -> Option<TaskUser> {
            self.users.iter().find(|u| u.name == name).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_do_not_fail_the_run_and_json_has_the_documented_shape() {
        let checks = vec![Check::ok("a", "fine"), Check::warn("b", "meh", "do x")];
        assert_eq!(exit_status(&checks), 0);
        let mut with_fail = checks.clone();
        with_fail.push(Check::fail("c", "broken", "do y"));
        assert_eq!(exit_status(&with_fail), 1);
        let v = serde_json::json!({ "checks": with_fail });
        assert_eq!(v["checks"][1]["status"], "warn");
        assert_eq!(v["checks"][2]["status"], "fail");
        assert_eq!(v["checks"][2]["fix"], "do y");
        assert_eq!(v["checks"][0]["fix"], serde_json::Value::Null);
        assert_eq!(v["checks"][0]["name"], "a");
    }

    #[test]
    fn host_paths_are_under_the_root() {
        let h = Host {
            root: "/tmp/fake".into(),
        };
        assert_eq!(
            h.path("/proc/filesystems"),
            Path::new("/tmp/fake/proc/filesystems")
        );
    }

    #[test]
    fn the_config_file_fills_in_what_no_flag_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("agent.toml");
        std::fs::write(
            &cfg,
            "master = \"http://m:5050\"\ntoken_file = \"/etc/gantry/join-token\"\n\
             work_dir = \"/srv/agent\"\nlisten = \"0.0.0.0:5151\"\n",
        )
        .expect("write");
        let args = |work_dir: Option<&str>, token: Option<&str>| AgentArgs {
            config: Some(cfg.clone()),
            token: token.map(String::from),
            token_file: None,
            work_dir: work_dir.map(PathBuf::from),
            listen: None,
            default_user: None,
        };
        let s = args(None, None).settings().expect("settings");
        assert_eq!(s.work_dir, Path::new("/srv/agent"));
        assert_eq!(s.listen.port(), 5151);
        assert_eq!(s.default_user, "nobody");
        assert_eq!(
            s.token_file.as_deref(),
            Some(Path::new("/etc/gantry/join-token"))
        );
        assert_eq!(s.master.as_deref(), Some("http://m:5050"));
        let s = args(Some("/flag"), Some("t")).settings().expect("settings");
        assert_eq!(s.work_dir, Path::new("/flag"));
        assert_eq!((s.token.as_deref(), s.token_file), (Some("t"), None));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "wrok_dir = \"/x\"").expect("write");
        let e = AgentArgs {
            config: Some(bad),
            ..args(None, None)
        }
        .settings()
        .expect_err("an unknown key");
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let m = MasterArgs {
            config: None,
            state_dir: None,
            listen: None,
        };
        assert_eq!(
            m.settings().expect("defaults"),
            (
                PathBuf::from("/var/lib/gantry/master"),
                "127.0.0.1:5050".parse().expect("addr")
            )
        );
    }
}
