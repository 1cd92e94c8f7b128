//! `gantry jobs` against a real cluster: submit from a file and from flags (scheduled and
//! dependent), list with the schedule, next run and last outcome, show, run with arguments,
//! history with exit codes, the log of a run (also followed before the run starts), a bad job
//! refused with the server's 400 message naming the field, kill and delete.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:1024;disk:2000;ports:[31000-31099]";

/// Runs `gantry` with `args` against the cluster: (success, stdout, stderr).
fn gantry(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = c.cli().args(args).output().expect("run gantry");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `gantry` and insists that it succeeds; its stdout.
fn ok(c: &Cluster, args: &[&str]) -> String {
    let (success, out, err) = gantry(c, args);
    assert!(success, "gantry {args:?} failed:\n{out}\n{err}");
    out
}

/// Waits until `name` has `n` successes.
async fn successes(c: &Cluster, name: &str, n: u64) {
    eventually(
        Duration::from_secs(30),
        &format!("{n} successes of {name}"),
        || async {
            let j = c.get(&format!("/v1/scheduler/job/{name}")).await;
            (j["successCount"].as_u64() >= Some(n)).then_some(())
        },
    )
    .await
}

/// The table row whose first column is `name`, split on whitespace.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_from_the_cli() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let marker = format!("GANTRY_TEST_MARKER={}", c.marker);

    // From a file: a job with no schedule runs once, now.
    let file = c.dir.path().join("hello.json");
    let hello = serde_json::json!({"name": "hello", "command": "echo hello-from-$CHRONOS_JOB_NAME",
        "cpus": 0.1, "mem": 32, "environmentVariables": [{"name": "GANTRY_TEST_MARKER",
        "value": c.marker}]});
    std::fs::write(&file, hello.to_string()).expect("write the job file");
    let out = ok(&c, &["jobs", "submit", file.to_str().expect("utf-8 path")]);
    assert!(out.starts_with("stored hello:"), "{out}");
    assert!(
        out.contains("\"command\": \"echo hello-from-$CHRONOS_JOB_NAME\""),
        "{out}"
    );

    // From flags: a far-away daily schedule, and a dependent job.
    let out = ok(
        &c,
        &[
            "jobs",
            "submit",
            "--name",
            "nightly",
            "--command",
            "echo nightly",
            "--schedule",
            "R/2099-01-01T00:00:00Z/P1D",
            "--cpus",
            "0.1",
            "--mem",
            "32",
            "--retries",
            "0",
            "--env",
            &marker,
            "--env",
            "FOO=bar=baz",
        ],
    );
    let stored: Value = serde_json::from_str(
        out.strip_prefix("stored nightly:\n")
            .unwrap_or_else(|| panic!("{out}")),
    )
    .expect("the stored job as JSON");
    assert_eq!(stored["schedule"], "R/2099-01-01T00:00:00Z/P1D");
    assert_eq!(stored["retries"], 0);
    assert_eq!(stored["mem"], 32.0);
    assert!(
        stored["environmentVariables"].as_array().is_some_and(|e| e
            .iter()
            .any(|v| v["name"] == "FOO" && v["value"] == "bar=baz")),
        "{stored}"
    );
    let out = ok(
        &c,
        &[
            "--json",
            "jobs",
            "submit",
            "--name",
            "child",
            "--command",
            "true",
            "--parent",
            "hello",
            "--mem",
            "32",
            "--env",
            &marker,
        ],
    );
    let child: Value = serde_json::from_str(&out).expect("--json prints the stored job");
    assert_eq!(child["parents"], serde_json::json!(["hello"]));

    // The list, once hello ran.
    successes(&c, "hello", 1).await;
    let table = ok(&c, &["jobs", "list"]);
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "SCHEDULE", "NEXT RUN", "LAST", "STATE"] {
        assert!(header.contains(col), "{table}");
    }
    let r = row(&table, "hello");
    assert!(r[1].starts_with("R0/"), "a one-shot job that ran: {table}");
    assert_eq!(&r[2..], ["-", "success", "idle"], "{table}");
    let r = row(&table, "nightly");
    assert_eq!(r[1], "R/2099-01-01T00:00:00Z/P1D");
    assert_eq!(r[2..5], ["on", "2099-01-01", "00:00"], "{table}");
    assert_eq!(&r[r.len() - 2..], ["fresh", "idle"], "{table}");
    let r = row(&table, "child");
    assert_eq!(r[1..4], ["after", "hello", "-"], "{table}");
    let listed: Value =
        serde_json::from_str(&ok(&c, &["jobs", "ls", "--json"])).expect("--json prints JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // Show, run with arguments, history, log.
    let shown: Value =
        serde_json::from_str(&ok(&c, &["jobs", "show", "nightly"])).expect("show prints JSON");
    assert_eq!(shown["name"], "nightly");
    let out = ok(&c, &["jobs", "run", "nightly", "--arguments", "xyz"]);
    assert!(out.contains("started a run of nightly"), "{out}");
    successes(&c, "nightly", 1).await;
    let table = ok(&c, &["jobs", "history", "nightly"]);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == [
                    "RUN",
                    "ATTEMPT",
                    "TRIGGER",
                    "SCHEDULED",
                    "STARTED",
                    "DURATION",
                    "STATE",
                    "EXIT",
                    "TASK"
                ]),
        "{table}"
    );
    // RUN ATTEMPT TRIGGER date time date time DURATION STATE EXIT TASK
    let cells: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(cells.len(), 11, "{table}");
    assert_eq!((cells[1], cells[2]), ("0", "manual"), "{table}");
    assert_eq!((cells[8], cells[9]), ("succeeded", "0"), "{table}");
    assert!(
        cells[10].starts_with("ct:") && cells[10].ends_with(":nightly:xyz"),
        "{table}"
    );
    assert_eq!(ok(&c, &["jobs", "log", "nightly"]), "nightly xyz\n");
    let run = cells[0].to_string();
    assert_eq!(
        ok(&c, &["jobs", "log", "nightly", "--run", &run]),
        "nightly xyz\n"
    );
    assert_eq!(ok(&c, &["jobs", "log", "hello"]), "hello-from-hello\n");
    assert_eq!(ok(&c, &["jobs", "log", "hello", "--stderr"]), "");
    let (success, _, err) = gantry(&c, &["jobs", "log", "nightly", "--run", "999999"]);
    assert!(!success && err.contains("has no run 999999"), "{err}");
    let table = ok(&c, &["jobs", "list"]);
    let r = row(&table, "nightly");
    assert_eq!(r[r.len() - 2], "success", "{table}");

    // --follow on a job that never ran: waits for a run, prints its output, ends with the task.
    ok(
        &c,
        &[
            "jobs",
            "submit",
            "--name",
            "later",
            "--command",
            "sleep 1; echo followed",
            "--schedule",
            "R/2099-01-01T00:00:00Z/P1D",
            "--mem",
            "32",
            "--env",
            &marker,
        ],
    );
    let (success, _, err) = gantry(&c, &["jobs", "log", "later"]);
    assert!(
        !success && err.contains("has no run with a task yet"),
        "{err}"
    );
    let follow = c
        .cli()
        .args(["jobs", "log", "later", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gantry jobs log --follow");
    tokio::time::sleep(Duration::from_millis(700)).await;
    ok(&c, &["jobs", "run", "later"]);
    let pid = follow.id();
    let waiter = tokio::task::spawn_blocking(move || follow.wait_with_output());
    let out = match tokio::time::timeout(Duration::from_secs(30), waiter).await {
        Ok(Ok(out)) => out.expect("the follower's output"),
        _ => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("gantry jobs log --follow did not end with the run");
        }
    };
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "followed\n", "{stderr}");
    assert!(stderr.contains("waiting for a run of later"), "{stderr}");

    // A bad job: the server's 400 message naming the field, a non-zero exit, nothing stored.
    let bad = c.dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"name": "bad", "command": "x", "schedule": "FOO"}]"#,
    )
    .expect("write the bad job");
    let (success, _, err) = gantry(&c, &["jobs", "submit", bad.to_str().expect("utf-8")]);
    assert!(!success, "{err}");
    assert!(
        err.contains("400 Bad Request: schedule: Cannot parse schedule 'FOO'"),
        "{err}"
    );
    let (success, _, err) = gantry(
        &c,
        &[
            "jobs",
            "submit",
            "--name",
            "bad",
            "--command",
            "x",
            "--tz",
            "PST",
            "--schedule",
            "R/2099-01-01T00:00:00Z/P1D",
        ],
    );
    assert!(!success && err.contains("scheduleTimeZone"), "{err}");
    let (success, _, err) = gantry(&c, &["jobs", "show", "bad"]);
    assert!(
        !success && err.contains("Job 'bad' does not exist"),
        "{err}"
    );

    // Kill (nothing runs), delete.
    assert!(ok(&c, &["jobs", "kill", "nightly"]).contains("killed the tasks of nightly"));
    for name in ["child", "hello", "nightly", "later"] {
        assert!(ok(&c, &["jobs", "delete", name]).contains(&format!("deleted {name}")));
    }
    assert_eq!(ok(&c, &["jobs", "list", "--json"]).trim(), "[]");
    let (success, _, err) = gantry(&c, &["jobs", "delete", "hello"]);
    assert!(!success && err.contains("does not exist"), "{err}");
}
