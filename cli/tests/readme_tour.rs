//! The README's tour as a newcomer runs it: `readme_tour.sh` (beside this file) starts `gantry dev`
//! as root with its default state dir and a `0700` home, creates apps with curl and the CLI, kills
//! a task and the whole cluster, asks for too much, and cleans up, checking what the README says
//! at each step. It needs port 5050 (the README's), root, curl and python3.

mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::bin;

const DEFAULT_STATE_DIR: &str = "/var/lib/gantry/dev";

/// Removes the dev cluster's state (when the test made it) and ends any task it left running.
struct Cleanup {
    made_state_dir: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let marker = format!("MESOS_SANDBOX={DEFAULT_STATE_DIR}/");
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if String::from_utf8_lossy(&env).contains(&marker) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if self.made_state_dir {
            let _ = std::fs::remove_dir_all(DEFAULT_STATE_DIR);
            let _ = std::fs::remove_dir("/var/lib/gantry");
            // The dev agent's cgroup parent in each hierarchy, once its containers are gone
            // (rmdir refuses a cgroup that still has children).
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(h.path().join("gantry"));
            }
            let _ = std::fs::remove_dir("/sys/fs/cgroup/gantry");
        }
    }
}

#[test]
fn the_readme_tour_works_as_written() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the tour test runs `gantry dev` as root, as the README's newcomer does"
    );
    for tool in ["curl", "python3", "pgrep"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "the tour needs {tool} (scripts/deps installs it)"
        );
    }
    assert!(
        std::net::TcpListener::bind("127.0.0.1:5050").is_ok(),
        "port 5050 is in use (a dev cluster running?): the tour runs the README as written, on 5050"
    );
    let _cleanup = Cleanup {
        made_state_dir: !Path::new(DEFAULT_STATE_DIR).exists(),
    };
    // A home only its owner may enter, as /root is.
    let home = tempfile::tempdir().expect("temp home");
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");

    let bin_dir: PathBuf = bin("gantry").parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readme_tour.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("HOME", home.path())
        .env("PATH", path)
        .env("RUST_LOG", "info")
        .env_remove("GANTRY_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run readme_tour.sh");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let readers = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the tour") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = readers.join().unwrap_or_default();
    println!("{stdout}");
    let status = status.unwrap_or_else(|| panic!("the tour took over 300 s\n{stdout}\n{stderr}"));
    assert!(
        status.success() && stdout.trim_end().ends_with("tour: ok"),
        "the README's tour failed ({status}):\n{stdout}\n{stderr}"
    );
}
