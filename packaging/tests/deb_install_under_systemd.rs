//! The .deb packages installed with `apt-get install ./x.deb` into a fresh Debian bookworm root
//! booted with `systemd-nspawn --boot` (systemd as its PID 1, no network but loopback): both
//! units come up under systemd (`Type=notify`), the agent joins, a command app from the seed runs,
//! `gantry doctor` is green (its verdicts true), `systemctl restart gantry-agentd` keeps the task,
//! an upgrade to a newer package keeps the state, the token, a changed conffile and the task while
//! both daemons restart, and purge removes what it should, keeping the master's state when asked
//! (`GANTRY_KEEP_STATE=1`). Prints the figures BENCHMARKS.md quotes (install to registered, idle
//! RSS under systemd).
//!
//! The container sees the host's cgroup v1 hierarchies read-only, as systemd-nspawn mounts them;
//! they are remounted read-write inside before the install, as on a real host, so the agent's
//! native containerizer runs the task in its own cgroups.

mod support;

use anyhow::{ensure, Context};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{build_packages, package, Machine};

/// The seed's command app (mesos-basic-concepts: `"command": "sleep 60"`, run long enough here),
/// named after this process so that its cgroups on the (shared) host are this run's.
fn app() -> String {
    format!("/pkgtest{}/sleep", std::process::id())
}

/// How the app's tasks, and so their cgroups, are named.
fn task_prefix() -> String {
    format!("pkgtest{}_sleep", std::process::id())
}

const TASK_CMD: &str = "sleep 3600";

/// The CLI inside, with the master's generated admin token.
fn gantry(m: &Machine, args: &str) -> anyhow::Result<String> {
    m.ok(&format!(
        "GANTRY_API_TOKEN=$(cat /var/lib/gantry/master/admin-token) gantry {args}"
    ))
}

fn json(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))
}

/// The running task of the app: (task id, state).
fn task(m: &Machine) -> anyhow::Result<Option<(String, String)>> {
    let tasks = json(&gantry(m, "--json tasks list")?)?;
    Ok(tasks["tasks"].as_array().and_then(|all| {
        all.iter().find_map(|t| {
            let id = t["id"].as_str()?;
            id.starts_with(&task_prefix())
                .then(|| (id.to_owned(), t["state"].as_str().unwrap_or("").to_owned()))
        })
    }))
}

fn main_pid(m: &Machine, unit: &str) -> anyhow::Result<u32> {
    let pid = m.ok(&format!("systemctl show -p MainPID --value {unit}"))?;
    pid.parse()
        .with_context(|| format!("MainPID of {unit}: {pid}"))
}

fn rss_kib(m: &Machine, unit: &str) -> anyhow::Result<u64> {
    let pid = main_pid(m, unit)?;
    let kib = m.ok(&format!("awk '/^VmRSS/ {{print $2}}' /proc/{pid}/status"))?;
    kib.parse()
        .with_context(|| format!("VmRSS of {unit}: {kib}"))
}

/// Waits until the agent is registered and connected, then until the task runs again.
fn wait_registered(m: &Machine, what: &str) -> anyhow::Result<()> {
    m.wait_for(
        what,
        Duration::from_secs(60),
        "GANTRY_API_TOKEN=$(cat /var/lib/gantry/master/admin-token) gantry --json agents list \
         | grep -q '\"connected\": true'",
    )
    .map(drop)
}

fn wait_task_running(m: &Machine, what: &str) -> anyhow::Result<(String, u32)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((id, state)) = task(m)? {
            if state == "TASK_RUNNING" {
                let pid = m.ok(&format!("pgrep -x -f '{TASK_CMD}'"))?;
                let pid = pid.lines().next().unwrap_or("").parse()?;
                return Ok((id, pid));
            }
        }
        if Instant::now() > deadline {
            let apps = gantry(m, "apps list").unwrap_or_default();
            anyhow::bail!("{what}: the task is not TASK_RUNNING within 60 s; apps:\n{apps}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Removes the task cgroups the container made in the host's (shared) v1 hierarchies.
struct TaskCgroups;

impl Drop for TaskCgroups {
    fn drop(&mut self) {
        let find = format!(
            "find /sys/fs/cgroup -depth -type d -name '{}.*' -exec rmdir {{}} + 2>/dev/null",
            task_prefix()
        );
        let _ = std::process::Command::new("sh")
            .args(["-c", &find])
            .status();
    }
}

/// The host kernel's view of clock sync (adjtimex(2) with no changes: TIME_ERROR, 5, is
/// "unsynchronised"), which the container shares: what the doctor's `clock` verdict must match.
fn kernel_clock_synchronised() -> anyhow::Result<bool> {
    support::require("python3", "python3")?;
    let out = support::run(std::process::Command::new("python3").args([
        "-c",
        "import ctypes; t = ctypes.create_string_buffer(512); \
         print(ctypes.CDLL(None, use_errno=True).adjtimex(t))",
    ]))?;
    Ok(out.trim() != "5")
}

#[test]
fn debs_install_run_upgrade_and_purge_under_systemd() -> anyhow::Result<()> {
    let started = Instant::now();
    let v1 = build_packages(None, 1, "deb-v1")?;
    let v2 = build_packages(None, 2, "deb-v2")?;
    let m = Machine::boot("gantry-pkgtest")?;
    let _cleanup = TaskCgroups;
    eprintln!(
        "packages built and container booted in {:?}",
        started.elapsed()
    );

    for (dir, set) in [("v1", &v1), ("v2", &v2)] {
        let inside = m.path(&format!("/root/debs/{dir}"));
        std::fs::create_dir_all(&inside)?;
        for name in ["gantry-masterd", "gantry-agentd", "gantry"] {
            let p = package(set, name, ".deb")?;
            std::fs::copy(p, inside.join(format!("{name}.deb")))?;
        }
    }
    // As on a real host, cgroupfs is writable (nspawn mounts the v1 controllers read-only).
    m.ok(
        "for d in /sys/fs/cgroup/*/; do case \"$d\" in */unified/|*/systemd/) ;; \
          *) mount -o remount,rw,bind \"$d\" ;; esac; done",
    )?;

    // Install, and both daemons up under systemd.
    let t0 = Instant::now();
    m.ok(
        "cd /root/debs/v1 && apt-get install -y -q ./gantry-masterd.deb ./gantry-agentd.deb \
          ./gantry.deb",
    )
    .context("apt-get install of the three .debs")?;
    let install_secs = t0.elapsed().as_secs_f64();
    for unit in ["gantry-masterd", "gantry-agentd"] {
        let state = m.ok(&format!(
            "systemctl show -p ActiveState,SubState,Type,UnitFileState --value {unit}"
        ))?;
        let state: Vec<&str> = state.lines().collect();
        ensure!(
            state == ["notify", "active", "running", "enabled"],
            "{unit}: Type, ActiveState, SubState, UnitFileState are {state:?}"
        );
    }
    ensure!(
        m.ok("systemctl show -p User --value gantry-masterd")? == "gantry",
        "the master does not run as gantry"
    );
    let token = m.ok("stat -c '%a %U %G' /etc/gantry/join-token")?;
    ensure!(token == "600 gantry gantry", "join token is {token}");
    let state_dir = m.ok("stat -c '%U' /var/lib/gantry/master")?;
    ensure!(
        state_dir == "gantry",
        "/var/lib/gantry/master is owned by {state_dir}"
    );
    wait_registered(&m, "the agent registers")?;
    let registered_secs = t0.elapsed().as_secs_f64();

    // A seed app runs.
    gantry(
        &m,
        &format!("apps run {} --cmd '{TASK_CMD}' --instances 1", app()),
    )?;
    let (task_id, task_pid) = wait_task_running(&m, "the app's task")?;
    let env = m.ok(&format!("tr '\\0' '\\n' < /proc/{task_pid}/environ"))?;
    ensure!(
        env.contains("MESOS_TASK_ID=")
            && !env.contains("NOTIFY_SOCKET=")
            && !env.contains("INVOCATION_ID="),
        "the task's environment has the agent unit's systemd variables, or no Mesos ones: {env}"
    );

    // The doctor, on the host the packages made.
    let out = m.sh(
        "gantry doctor agent --config /etc/gantry/agent.toml --json; echo \"exit=$?\"; \
         gantry doctor master --config /etc/gantry/master.toml --json; echo \"exit=$?\"",
    )?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let synced = kernel_clock_synchronised()?;
    for part in text.split("exit=").filter(|p| p.contains("checks")) {
        let start = part.find('{').context("doctor JSON")?;
        let end = part.rfind('}').context("doctor JSON")? + 1;
        let report = json(&part[start..end])?;
        for c in report["checks"].as_array().context("checks")? {
            let (name, status) = (c["name"].as_str().unwrap_or(""), c["status"].as_str());
            if name == "clock" && !synced {
                // This kernel's clock is not NTP-synchronised, and the doctor must say so.
                ensure!(
                    status == Some("fail"),
                    "clock: the kernel is unsynchronised: {c}"
                );
                eprintln!("note: this host's kernel clock is not NTP-synchronised; doctor: {c}");
                continue;
            }
            ensure!(status != Some("fail"), "gantry doctor: {c}");
        }
    }

    // Idle figures under systemd.
    std::thread::sleep(Duration::from_secs(5));
    let master_rss = rss_kib(&m, "gantry-masterd")?;
    let agent_rss = rss_kib(&m, "gantry-agentd")?;

    // An agent restart keeps the task.
    let agent_pid = main_pid(&m, "gantry-agentd")?;
    m.ok("systemctl restart gantry-agentd")?;
    ensure!(
        main_pid(&m, "gantry-agentd")? != agent_pid,
        "the agent did not restart"
    );
    wait_registered(&m, "the agent re-registers after its restart")?;
    let (id, pid) = wait_task_running(&m, "after systemctl restart gantry-agentd")?;
    ensure!(
        (id.as_str(), pid) == (task_id.as_str(), task_pid),
        "after the agent's restart the task is {id} (pid {pid}), not {task_id} (pid {task_pid})"
    );

    // Upgrade over the running cluster: state, token, a changed conffile and the task stay.
    m.ok("echo '# changed by the admin' >> /etc/gantry/agent.toml")?;
    let token_before = m.ok("cat /etc/gantry/join-token")?;
    let master_pid = main_pid(&m, "gantry-masterd")?;
    let agent_pid = main_pid(&m, "gantry-agentd")?;
    m.ok(
        "cd /root/debs/v2 && apt-get install -y -q -o Dpkg::Options::=--force-confold \
          ./gantry-masterd.deb ./gantry-agentd.deb ./gantry.deb",
    )
    .context("apt-get install of the newer .debs")?;
    let versions = m.ok("dpkg-query -W -f '${Version} ' gantry-masterd gantry-agentd gantry")?;
    ensure!(
        versions == "0.1.0-2 0.1.0-2 0.1.0-2",
        "after the upgrade: {versions}"
    );
    ensure!(
        main_pid(&m, "gantry-masterd")? != master_pid,
        "the master did not restart"
    );
    ensure!(
        main_pid(&m, "gantry-agentd")? != agent_pid,
        "the agent did not restart"
    );
    ensure!(
        m.ok("cat /etc/gantry/join-token")? == token_before,
        "the join token changed"
    );
    ensure!(
        m.ok("tail -n 1 /etc/gantry/agent.toml")? == "# changed by the admin",
        "the upgrade overwrote the changed /etc/gantry/agent.toml"
    );
    wait_registered(&m, "the agent re-registers after the upgrade")?;
    let (id, pid) = wait_task_running(&m, "after the upgrade")?;
    ensure!(
        (id.as_str(), pid) == (task_id.as_str(), task_pid),
        "after the upgrade the task is {id} (pid {pid}), not {task_id} (pid {task_pid})"
    );
    ensure!(
        gantry(&m, "apps list")?.contains(&app()),
        "the app is gone from the master's store after the upgrade"
    );

    // Purge: the master's state kept when asked; the agent's work dir and its task go.
    m.ok("GANTRY_KEEP_STATE=1 apt-get purge -y -q gantry-masterd")?;
    m.ok("test -s /var/lib/gantry/master/gantry.db && test -f /etc/gantry/join-token")
        .context("GANTRY_KEEP_STATE=1 purge keeps the master's store and token")?;
    m.ok("! test -e /etc/gantry/master.toml && ! test -e /usr/lib/systemd/system/gantry-masterd.service \
          && ! systemctl is-active -q gantry-masterd")
        .context("purge removes the master's config, unit and process")?;
    m.ok("apt-get purge -y -q gantry-agentd gantry")?;
    m.ok(
        "! test -e /var/lib/gantry/agent && ! test -e /etc/gantry/agent.toml \
          && ! test -e /usr/bin/gantry && ! systemctl is-active -q gantry-agentd",
    )
    .context("purge removes the agent's work dir, config, unit and the CLI")?;
    m.ok(&format!("! pgrep -x -f '{TASK_CMD}'"))
        .context("removing the agent stops its tasks")?;
    let find = format!(
        "find /sys/fs/cgroup -type d -name '{}.*' 2>/dev/null",
        task_prefix()
    );
    let left = support::run(std::process::Command::new("sh").args(["-c", &find]))?;
    ensure!(
        left.trim().is_empty(),
        "task cgroups left after purge: {left}"
    );
    ensure!(
        m.ok("dpkg-query -W -f '${db:Status-Abbrev}\\n' 'gantry*' 2>/dev/null | grep -v '^un' || true")?
            .is_empty(),
        "packages left after purge"
    );

    eprintln!(
        "BENCHMARK deb install: apt-get install {install_secs:.1} s, install to agent registered \
         {registered_secs:.1} s; idle RSS under systemd ({} profile): master {} KiB, agent {} KiB; \
         whole test {:.0} s",
        support::profile(),
        master_rss,
        agent_rss,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
