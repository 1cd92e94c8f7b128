//! Launch latency and footprint of the native containerizer, side by side in one run with
//! `runc run` and bare `unshare --pid --fork --mount --uts --ipc` (run as root):
//! `cargo bench -p gantry-agentd --bench containerizer` (GANTRY_BENCH_N launches each, default 1000).
//!
//! The task is `/bin/date +%s%N`: the time it prints is an upper bound of the moment it was
//! exec'd, so "launch → exec" is measured the same way for all three. "→ TASK_RUNNING" is the
//! time until the agent's task table emitted TASK_RUNNING (checkpointed) on its outbox. Per phase:
//! the native containerizer's own timings of each launch ([`LaunchPhases`]), and the task table's
//! share (checkpoints, hand-offs) as TASK_RUNNING minus the containerizer's launch.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

use anyhow::{bail, Context, Result};
use gantry_agentd::containerizer::native::cgroup::CgroupLayout;
use gantry_agentd::containerizer::native::users::UserPolicy;
use gantry_agentd::containerizer::native::{LaunchPhases, NativeConfig, NativeContainerizer};
use gantry_agentd::recovery::WorkDir;
use gantry_agentd::tasks::TaskTable;
use gantry_proto::{StatusUpdate, TaskInfo, TaskState};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedReceiver;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn line(name: &str, v: &mut [f64]) {
    println!(
        "{name:<44} p50 {:>7.2} ms   p99 {:>7.2} ms   (n={})",
        pct(v, 0.5),
        pct(v, 0.99),
        v.len()
    );
}

fn printed_ns(out: &[u8]) -> Result<u128> {
    String::from_utf8_lossy(out)
        .trim()
        .parse()
        .context("date +%s%N output")
}

/// Runs `cmd` (which ends by running `date +%s%N`); (launch → exec, launch → exit) in ms.
fn external(cmd: &mut Command) -> Result<(f64, f64)> {
    let t0 = now_ns();
    let i0 = Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let total = i0.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    Ok(((printed_ns(&out.stdout)? - t0) as f64 / 1e6, total))
}

/// A minimal OCI bundle: a rootfs with /bin/date, /bin/true and their libraries copied from the host.
fn runc_bundle(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    for bin in ["/bin/date", "/bin/true"] {
        let ldd = Command::new("ldd").arg(bin).output()?;
        let mut files = vec![bin.to_string()];
        for l in String::from_utf8_lossy(&ldd.stdout).lines() {
            if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
                files.push(p.to_string());
            }
        }
        for f in files {
            let dst = rootfs.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().context("parent")?)?;
            std::fs::copy(&f, &dst).with_context(|| format!("copy {f}"))?;
        }
    }
    let st = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir)
        .status()
        .context("runc (apt-get install runc)")?;
    if !st.success() {
        bail!("runc spec failed");
    }
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path)?)?;
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["/bin/date", "+%s%N"]);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg)?)?;
    Ok(dir.to_owned())
}

async fn next_state(
    rx: &mut UnboundedReceiver<StatusUpdate>,
    id: &str,
    terminal: bool,
) -> Result<StatusUpdate> {
    loop {
        let u = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .context("outbox closed")?;
        if u.status.task_id.as_str() != id {
            continue;
        }
        if u.status.state.is_terminal() == terminal {
            return Ok(u);
        }
        if u.status.state.is_terminal() {
            bail!("task {id} ended before it ran: {:?}", u.status);
        }
    }
}

fn task(id: &str, argv: &[&str]) -> TaskInfo {
    let mut t = TaskInfo::default();
    t.task_id = id.into();
    t.command.arguments = argv.iter().map(|s| s.to_string()).collect();
    t.command.value = argv.first().map(|s| s.to_string());
    t.command
        .environment
        .insert("PATH".into(), "/usr/bin:/bin".into());
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    t
}

/// (RSS, PSS, private) in KiB from /proc/<pid>/smaps_rollup.
fn mem_of(pid: i32) -> (u64, u64, u64) {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let get = |k: &str| {
        t.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0u64)
    };
    (
        get("Rss:"),
        get("Pss:"),
        get("Private_Clean:") + get("Private_Dirty:"),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root (cgroups, namespaces, runc)");
    }
    let n: usize = std::env::var("GANTRY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::Builder::new()
        .prefix("gantry-bench")
        .tempdir_in("/var/tmp")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let wd = WorkDir::open(&dir.path().join("work"))?;
    let parent = format!("gantry-bench-{}", std::process::id());
    let cz = Arc::new(NativeContainerizer::new(NativeConfig {
        shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
        layout: CgroupLayout::detect().map_err(anyhow::Error::msg)?,
        cgroup_parent: parent.clone(),
        users: UserPolicy::default(),
        pids_max: Some(64),
        images: None,
    }));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let table = TaskTable::new(wd, cz.clone(), "127.0.0.1".into(), tx);
    let mut phases: Vec<LaunchPhases> = Vec::with_capacity(n);

    println!("containerizer benchmark: {n} launches each of `date +%s%N`");
    let (mut g_exec, mut g_running, mut g_exit) = (vec![], vec![], vec![]);
    for i in 0..n {
        let id = format!("b{i}");
        let t0 = now_ns();
        let i0 = Instant::now();
        table.launch(task(&id, &["/bin/date", "+%s%N"]));
        let u = next_state(&mut rx, &id, false).await?;
        if u.status.state != TaskState::TaskRunning {
            bail!("expected TASK_RUNNING, got {:?}", u.status);
        }
        g_running.push(i0.elapsed().as_secs_f64() * 1e3);
        phases.push(cz.last_launch_phases());
        table.acknowledge(&u.status.task_id, u.seq);
        let end = next_state(&mut rx, &id, true).await?;
        g_exit.push(i0.elapsed().as_secs_f64() * 1e3);
        table.acknowledge(&end.status.task_id, end.seq);
        let out = std::fs::read(table.work_dir().sandbox(&id.as_str().into()).join("stdout"))?;
        g_exec.push((printed_ns(&out)? - t0) as f64 / 1e6);
        if end.status.state != TaskState::TaskFinished {
            bail!("task {id} ended {:?}", end.status);
        }
        let _ = std::fs::remove_dir_all(table.work_dir().sandbox(&id.as_str().into()));
    }

    let bundle = runc_bundle(&dir.path().join("bundle"))?;
    let (mut r_exec, mut r_exit) = (vec![], vec![]);
    for i in 0..n {
        let (e, x) = external(
            Command::new("runc")
                .arg("run")
                .arg("--bundle")
                .arg(&bundle)
                .arg(format!("gb-{}-{i}", std::process::id())),
        )?;
        r_exec.push(e);
        r_exit.push(x);
    }
    let (mut u_exec, mut u_exit) = (vec![], vec![]);
    for _ in 0..n {
        let (e, x) = external(Command::new("unshare").args([
            "--pid",
            "--fork",
            "--mount",
            "--uts",
            "--ipc",
            "/bin/date",
            "+%s%N",
        ]))?;
        u_exec.push(e);
        u_exit.push(x);
    }
    let g_running_unsorted = g_running.clone();
    println!("\nlaunch latency");
    line("gantry native: launch -> task exec", &mut g_exec);
    line("gantry native: launch -> TASK_RUNNING", &mut g_running);
    line("gantry native: launch -> TASK_FINISHED", &mut g_exit);
    line("runc run: command -> task exec", &mut r_exec);
    line("runc run: command -> exit", &mut r_exit);
    line("unshare -p -f -m -u -i: command -> task exec", &mut u_exec);
    line("unshare -p -f -m -u -i: command -> exit", &mut u_exit);

    println!("\ngantry native launch, per phase");
    let ms = |f: fn(&LaunchPhases) -> u64| -> Vec<f64> {
        phases.iter().map(|p| f(p) as f64 / 1e3).collect()
    };
    line("plan (user, limits, /proc/devices)", &mut ms(|p| p.plan_us));
    line(
        "cgroup mkdir + limits (7 v1 hierarchies)",
        &mut ms(|p| p.cgroup_us),
    );
    line(
        "sandbox (logs, chown, container.json)",
        &mut ms(|p| p.sandbox_us),
    );
    line(
        "launcher (exec, join, unshare, fork, pid)",
        &mut ms(|p| p.launcher_us),
    );
    line("adopt (pid file, /proc stat)", &mut ms(|p| p.adopt_us));
    let mut table_share: Vec<f64> = phases
        .iter()
        .zip(&g_running_unsorted)
        .map(|(p, r)| {
            let cz = p.plan_us + p.cgroup_us + p.sandbox_us + p.launcher_us + p.adopt_us;
            r - cz as f64 / 1e3
        })
        .collect();
    line("task table (checkpoints, hand-offs)", &mut table_share);

    // Footprint: 100 running containers.
    let me = std::process::id() as i32;
    let before = mem_of(me);
    let mut inits = Vec::new();
    for i in 0..100 {
        let id = format!("s{i}");
        table.launch(task(&id, &["/bin/sleep", "1000"]));
        let u = next_state(&mut rx, &id, false).await?;
        table.acknowledge(&u.status.task_id, u.seq);
        let pid: i32 = std::fs::read_to_string(
            table
                .work_dir()
                .task_meta_dir(&id.as_str().into())
                .join("init.pid"),
        )?
        .trim()
        .parse()?;
        inits.push(pid);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = mem_of(me);
    let per: Vec<(u64, u64, u64)> = inits.iter().map(|p| mem_of(*p)).collect();
    let avg =
        |f: fn(&(u64, u64, u64)) -> u64| per.iter().map(f).sum::<u64>() as f64 / per.len() as f64;
    println!("\nfootprint with 100 running containers (sleep 1000)");
    println!(
        "per container, its init (the only helper process): RSS {:.0} KiB, PSS {:.0} KiB, private {:.0} KiB",
        avg(|m| m.0),
        avg(|m| m.1),
        avg(|m| m.2)
    );
    println!(
        "agent core in this process (task table + native containerizer, tokio current-thread): RSS {} KiB before, {} KiB with 100 tasks",
        before.0, after.0
    );
    for i in 0..100 {
        table.kill(&format!("s{i}").as_str().into(), Some(0.0));
    }
    // Their terminal updates come in any order.
    let mut left: std::collections::HashSet<String> = (0..100).map(|i| format!("s{i}")).collect();
    while !left.is_empty() {
        let u = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .with_context(|| format!("{} killed tasks never ended", left.len()))?
            .context("outbox closed")?;
        if u.status.state.is_terminal() && left.remove(u.status.task_id.as_str()) {
            table.acknowledge(&u.status.task_id, u.seq);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for root in CgroupLayout::detect()
        .map_err(anyhow::Error::msg)?
        .v1
        .values()
    {
        let _ = std::fs::remove_dir(root.join(&parent));
    }
    Ok(())
}
