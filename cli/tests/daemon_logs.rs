//! The daemons' logs as an operator's file receives them: plain text without colour codes when
//! stderr is not a terminal, and one JSON object per line with `--log-format json`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{bin, free_port};

/// Runs gantry-masterd with `extra` flags until it logs that it listens; returns its stderr.
fn master_log(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("master.log");
    let mut child = Command::new(bin("gantry-masterd"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--token", "t"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start gantry-masterd");
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("master listening") || start.elapsed() > Duration::from_secs(20) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("master listening"),
        "the master started: {text}"
    );
    text
}

#[test]
fn logs_to_a_file_are_plain_text() {
    let text = master_log(&[]);
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes: {text:?}");
    assert!(
        text.lines()
            .any(|l| l.contains("INFO") && l.contains("master listening")),
        "{text}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let text = master_log(&["--log-format", "json"]);
    let mut listening = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        listening |= v["fields"]["message"] == "master listening";
    }
    assert!(listening, "the listening line is there: {text}");
}
