//! Harness for the package tests: building the packages with `packaging/build`, a cached Debian
//! bookworm minbase root (debootstrap from this host's mirror), and booting a copy of it under
//! `systemd-nspawn --boot` to run commands inside. Everything it starts or mounts is stopped and
//! removed on drop, and a missing tool fails the test naming the package that brings it.
#![allow(dead_code)]

use anyhow::{bail, ensure, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("packaging/ sits in the workspace")
        .to_path_buf()
}

/// The cargo target directory this test binary was built into (`target/debug/deps/x` → `target`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            workspace().join(d)
        };
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target"))
}

/// Fails naming the Debian package to install when `program` is not on PATH.
pub fn require(program: &str, debian_package: &str) -> anyhow::Result<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ensure!(
        found,
        "{program} is missing: apt-get install {debian_package} (scripts/deps installs it)"
    );
    Ok(())
}

/// Runs a command, failing with its output when it does not succeed.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo profile of the packaged binaries: `dev` (what `cargo build --workspace --bins`
/// already built: nothing to compile), or `GANTRY_PKG_TEST_PROFILE` (e.g. `dist`, for the
/// figures BENCHMARKS.md quotes; built here).
pub fn profile() -> String {
    std::env::var("GANTRY_PKG_TEST_PROFILE").unwrap_or_else(|_| "dev".into())
}

/// Builds the packages with `packaging/build` (profile [`profile`]; for `target`, cross-built
/// here), into `target/packaging/test-<name>`, with `revision` as the package revision. Returns
/// their paths.
pub fn build_packages(
    target: Option<&str>,
    revision: u32,
    name: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let out = target_dir().join("packaging").join(format!("test-{name}"));
    let profile = profile();
    let mut cmd = Command::new(workspace().join("packaging/build"));
    cmd.current_dir(workspace())
        .args([
            "--profile",
            &profile,
            "--fast",
            "--revision",
            &revision.to_string(),
        ])
        .arg("--out")
        .arg(&out);
    match target {
        Some(t) => {
            cmd.args(["--target", t]);
        }
        None if profile != "dev" => {}
        None => {
            let debug = target_dir().join("debug");
            for b in ["gantry", "gantry-masterd", "gantry-agentd"] {
                ensure!(
                    debug.join(b).exists(),
                    "{} is missing: build the binaries first with `cargo build --workspace --bins` \
                     (scripts/test does)",
                    debug.join(b).display()
                );
            }
            cmd.arg("--no-build");
        }
    }
    let stdout = run(&mut cmd)?;
    let paths: Vec<PathBuf> = stdout
        .lines()
        .filter(|l| l.ends_with(".deb") || l.ends_with(".rpm"))
        .map(PathBuf::from)
        .collect();
    ensure!(
        paths.len() == 6,
        "packaging/build wrote {paths:?}, not 3 .deb and 3 .rpm"
    );
    Ok(paths)
}

/// [`build_packages`] for the host, once per test binary (its tests run in parallel and
/// `packaging/build` stages into one directory).
pub fn host_packages() -> anyhow::Result<Vec<PathBuf>> {
    static BUILT: std::sync::Mutex<Option<Vec<PathBuf>>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let p = build_packages(None, 1, "host")?;
    *built = Some(p.clone());
    Ok(p)
}

/// The package file of `name` (`gantry-masterd`, ...) with extension `ext` among `paths`.
pub fn package<'a>(paths: &'a [PathBuf], name: &str, ext: &str) -> anyhow::Result<&'a Path> {
    paths
        .iter()
        .find(|p| {
            let f = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            f.ends_with(ext)
                && f.strip_prefix(name).is_some_and(|rest| {
                    rest.starts_with(['_', '-'])
                        && rest[1..].starts_with(|c: char| c.is_ascii_digit())
                })
        })
        .map(PathBuf::as_path)
        .with_context(|| format!("no {name} {ext} among {paths:?}"))
}

/// The Debian mirror this host uses (`/etc/apt/sources.list` or the deb822 `debian.sources`).
pub fn mirror() -> anyhow::Result<String> {
    let mut texts = Vec::new();
    for f in [
        "/etc/apt/sources.list",
        "/etc/apt/sources.list.d/debian.sources",
    ] {
        if let Ok(t) = std::fs::read_to_string(f) {
            texts.push(t);
        }
    }
    for t in &texts {
        for line in t.lines().map(str::trim) {
            let url = if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                line.strip_prefix("URIs:").map(str::trim)
            };
            if let Some(u) = url.and_then(|u| u.split_whitespace().next()) {
                if !u.contains("security") {
                    return Ok(u.to_owned());
                }
            }
        }
    }
    bail!("no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/debian.sources")
}

/// What the cached root holds besides minbase: systemd to boot, and what the packages depend on
/// (the container has no network, so `apt-get install ./x.deb` must find its dependencies there).
pub const ROOT_PACKAGES: &str = "systemd,systemd-sysv,dbus,libhwloc15,procps";

/// The cached bookworm minbase root, made by debootstrap on first use (about a minute).
pub fn debian_root() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("packaging/bookworm-minbase");
    let stamp = dir.join(".gantry-root-complete");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == ROOT_PACKAGES) {
        return Ok(dir);
    }
    require("debootstrap", "debootstrap")?;
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    let mirror = mirror()?;
    eprintln!(
        "debootstrap of bookworm minbase into {} from {mirror}",
        tmp.display()
    );
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={ROOT_PACKAGES}"))
        .arg("bookworm")
        .arg(&tmp)
        .arg(&mirror))?;
    std::fs::write(tmp.join(".gantry-root-complete"), ROOT_PACKAGES)?;
    std::fs::rename(&tmp, &dir)?;
    Ok(dir)
}

/// A fresh copy of the cached root in `target/packaging/<name>`, removed on drop.
pub struct RootCopy {
    pub dir: PathBuf,
}

impl RootCopy {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let cached = debian_root()?;
        let dir = target_dir().join("packaging").join(name);
        if dir.exists() {
            run(Command::new("rm").arg("-rf").arg(&dir))?;
        }
        run(Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&cached)
            .arg(&dir))?;
        Ok(Self { dir })
    }
}

impl Drop for RootCopy {
    fn drop(&mut self) {
        let _ = Command::new("rm").arg("-rf").arg(&self.dir).status();
    }
}

/// A booted container: systemd as PID 1 of its own namespaces, with no network but loopback.
pub struct Machine {
    pub root: RootCopy,
    nspawn: Child,
    /// The container's PID 1, as this host sees it.
    leader: u32,
    pub log: PathBuf,
}

impl Machine {
    /// Boots a copy of the cached root, waiting until systemd says the system is up.
    pub fn boot(name: &str) -> anyhow::Result<Self> {
        require("systemd-nspawn", "systemd-container")?;
        require("nsenter", "util-linux")?;
        let root = RootCopy::new(name)?;
        let log = root.dir.with_extension("log");
        let logf = std::fs::File::create(&log)?;
        let nspawn = Command::new("systemd-nspawn")
            .args([
                "--register=no",
                "--keep-unit",
                "--boot",
                "--private-network",
            ])
            .arg(format!("--machine={name}"))
            .arg("--directory")
            .arg(&root.dir)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .context("starting systemd-nspawn")?;
        let mut m = Machine {
            root,
            leader: 0,
            nspawn,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while m.leader == 0 {
            if let Some(st) = m.nspawn.try_wait()? {
                bail!(
                    "systemd-nspawn exited ({st}) before booting: {}",
                    m.log_tail()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "the container did not start: {}",
                m.log_tail()
            );
            // nspawn's first child is an intermediate; the container's PID 1 is systemd.
            m.leader = child_of(m.nspawn.id())
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "systemd")
                })
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(100));
        }
        // `is-system-running --wait` needs the manager up; retry until it answers.
        loop {
            let out = m.sh("systemctl is-system-running --wait 2>&1")?;
            let state = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            if state == "running" || state == "degraded" {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "systemd in the container did not finish booting ({state}): {}",
                m.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(m)
    }

    /// Runs `script` with `sh -c` inside the container (as root, with a clean environment).
    pub fn sh(&self, script: &str) -> anyhow::Result<Output> {
        Command::new("nsenter")
            .arg(format!("--target={}", self.leader))
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
            ])
            .args([
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ])
            .args([
                "HOME=/root",
                "LANG=C.UTF-8",
                "DEBIAN_FRONTEND=noninteractive",
            ])
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .context("nsenter into the container")
    }

    /// Runs `script` inside; its stdout, or an error with both outputs when it fails.
    pub fn ok(&self, script: &str) -> anyhow::Result<String> {
        let out = self.sh(script)?;
        ensure!(
            out.status.success(),
            "in the container, `{script}` failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Polls `script` until it succeeds, returning its stdout; fails with `what` after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.sh(script)?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not within {timeout:?} (`{script}`: {} {})",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of the boot log, for failures.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A file in the container's root, as this host sees it.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.dir.join(inside.trim_start_matches('/'))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SIGTERM asks nspawn to shut the container down (systemd powers off); then SIGKILL to
        // the container's PID 1 takes every process of its namespace with it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.leader != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.leader.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The first child process of `pid` (systemd-nspawn's child is the container's PID 1).
fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}
