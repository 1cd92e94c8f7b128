//! `gantry doctor agent` on this machine, against a real gantry-masterd started by the harness
//! with a real join token: every verdict is checked against what the machine itself says
//! (/proc/mounts, /proc/filesystems, /dev, PATH), the run exits 0 with at most warnings, a wrong
//! token fails with exit status 1, and the doctor's token check registers no agent.

mod support;

use serde_json::Value;
use std::path::Path;
use support::Cluster;

/// Runs the doctor; returns (exit code, checks by name).
fn doctor(c: &Cluster, extra: &[&str]) -> (i32, Vec<Value>) {
    let out = c
        .cli()
        .args(["--json", "doctor", "agent"])
        .args(extra)
        .output()
        .expect("gantry doctor runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json prints JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checks = v["checks"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), checks)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_agent_on_this_machine_tells_the_truth() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test checks the verdicts of a root agent host: run it as root"
    );
    let c = Cluster::new();
    c.wait_agents(0).await;
    let work = tempfile::tempdir().expect("work dir");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let work_dir = work.path().display().to_string();
    let args = [
        "--token",
        &c.token,
        "--work-dir",
        &work_dir,
        "--listen",
        &listen,
    ];
    let (code, checks) = doctor(&c, &args);
    let failed: Vec<_> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert!(failed.is_empty(), "failures on this machine: {failed:?}");
    assert_eq!(code, 0, "{checks:?}");
    for c in &checks {
        let fix = c["fix"].as_str();
        match c["status"].as_str() {
            Some("ok") => assert!(fix.is_none(), "{c}"),
            Some("warn") => assert!(
                fix.is_some_and(|f| !f.is_empty()),
                "a warning gives its fix: {c}"
            ),
            other => panic!("status {other:?} in {c}"),
        }
    }

    // cgroups: the layout /proc/mounts shows.
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let fstypes: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let v1 = fstypes.contains(&"cgroup");
    let v2 = fstypes.contains(&"cgroup2");
    let expected = match (v1, v2) {
        (true, true) => "cgroup hybrid",
        (true, false) => "cgroup v1",
        (false, true) => "cgroup v2",
        (false, false) => panic!("this machine mounts no cgroups: the agent cannot isolate tasks"),
    };
    let cg = check(&checks, "cgroups");
    assert_eq!(cg["status"], "ok", "{cg}");
    let detail = cg["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with(expected),
        "/proc/mounts says {expected}: {cg}"
    );

    let systemd = Path::new("/run/systemd/system").is_dir();
    let d = check(&checks, "delegation")["detail"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(d.starts_with("not a systemd host"), !systemd, "{d}");

    // Root creates namespaces here (the native containerizer's own tests do).
    assert_eq!(check(&checks, "namespaces")["status"], "ok");

    let fs = std::fs::read_to_string("/proc/filesystems").expect("/proc/filesystems");
    let overlay = fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"));
    assert_eq!(
        check(&checks, "overlayfs")["status"],
        if overlay { "ok" } else { "warn" }
    );

    let gpus = check(&checks, "gpus");
    if Path::new("/dev/nvidiactl").exists() {
        assert_ne!(gpus["status"], "fail", "{gpus}");
    } else {
        assert_eq!(gpus["status"], "warn", "{gpus}");
        let g = gpus["detail"].as_str().unwrap_or("");
        assert!(
            g.starts_with("no NVIDIA driver: GPUs will not be offered")
                || g.starts_with("NVML is loaded but"),
            "{gpus}"
        );
    }

    let docker = check(&checks, "docker");
    if !Path::new("/var/run/docker.sock").exists() {
        assert_eq!(docker["status"], "warn");
        assert!(docker["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("no Docker daemon"));
    }

    let clock = check(&checks, "clock");
    if !on_path("timedatectl")
        && !on_path("chronyc")
        && !Path::new("/run/systemd/timesync/synchronized").exists()
    {
        assert_eq!(clock["status"], "warn", "{clock}");
    } else {
        assert_ne!(clock["detail"], Value::Null);
    }

    let port = check(&checks, "port");
    assert_eq!(port["status"], "ok");
    assert!(port["detail"].as_str().unwrap_or("").starts_with(&listen));
    assert_eq!(check(&checks, "work dir")["status"], "ok");
    assert_eq!(check(&checks, "sandboxes")["status"], "ok");
    assert_eq!(
        check(&checks, "hwloc")["status"],
        "ok",
        "libhwloc is installed to build Gantry"
    );

    let master = check(&checks, "master");
    assert_eq!(master["status"], "ok");
    let want = format!(
        "gantry-masterd {} answers at {}",
        env!("CARGO_PKG_VERSION"),
        c.url()
    );
    assert_eq!(master["detail"], want.as_str());
    let token = check(&checks, "join token");
    assert_eq!(token["status"], "ok", "{token}");

    // A port in use is found, with the command that shows who holds it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("addr").to_string();
    let args = [
        "--token",
        &c.token,
        "--work-dir",
        &work_dir,
        "--listen",
        &taken,
    ];
    let (code, checks) = doctor(&c, &args);
    assert_eq!(code, 1);
    let port = check(&checks, "port");
    assert_eq!(port["status"], "fail");
    assert!(port["fix"].as_str().unwrap_or("").contains("ss -ltnp"));
    drop(held);

    // A wrong token fails the run; the doctor's checks registered no agent.
    let args = [
        "--token",
        "not-the-token",
        "--work-dir",
        &work_dir,
        "--listen",
        &listen,
    ];
    let (code, checks) = doctor(&c, &args);
    assert_eq!(code, 1);
    let token = check(&checks, "join token");
    assert_eq!(token["status"], "fail");
    assert_eq!(token["detail"], "the master refuses it (401)");
    let slaves = c.get("/master/slaves").await;
    assert_eq!(
        slaves["slaves"].as_array().map(Vec::len),
        Some(0),
        "{slaves}"
    );

    // The text form: one mark per check, the fix under each one that is not ok, a summary.
    let out = c
        .cli()
        .args([
            "doctor",
            "agent",
            "--token",
            &c.token,
            "--work-dir",
            &work_dir,
            "--listen",
            &listen,
        ])
        .output()
        .expect("doctor runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let marks = text
        .lines()
        .filter(|l| l.starts_with('✓') || l.starts_with('!') || l.starts_with('✗'))
        .count();
    let warns = text.lines().filter(|l| l.starts_with('!')).count();
    let fixes = text.lines().filter(|l| l.starts_with("  fix: ")).count();
    assert_eq!(marks, 13, "{text}");
    assert_eq!(warns, fixes, "{text}");
    assert!(
        text.contains(&format!(
            "13 checks: {} ok, {warns} warnings, 0 failed",
            13 - warns
        )),
        "{text}"
    );
}

#[test]
fn doctor_master_checks_its_state_dir_and_port() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("master");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let out = std::process::Command::new(support::bin("gantry"))
        .args(["--json", "doctor", "master", "--state-dir"])
        .arg(&state)
        .args(["--listen", &listen])
        .output()
        .expect("doctor runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["clock", "port", "state dir"]);
    assert_eq!(v["checks"][2]["status"], "ok", "{v}");
    assert_eq!(v["checks"][1]["status"], "ok", "{v}");
    let failed = v["checks"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["status"] == "fail"));
    assert_eq!(out.status.code(), Some(i32::from(failed)), "{v}");

    std::fs::write(&state, "not a dir").expect("write");
    let out = std::process::Command::new(support::bin("gantry"))
        .args(["--json", "doctor", "master", "--state-dir"])
        .arg(&state)
        .args(["--listen", &listen])
        .output()
        .expect("doctor runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["checks"][2]["status"], "fail");
}
