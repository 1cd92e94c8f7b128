//! Whole-cluster tests of a task's sandbox through the master (`/gantry/v1/tasks/{id}/files/*`,
//! docs/files.md) and the agent (`/files/*`): browse, read with offsets and lengths, download;
//! 403 for `..`, absolute paths and links the task planted to /etc; 404 for unknown tasks and
//! files; the `read` permission is enough; and `gantry task log` (with --stderr, --tail,
//! --follow until the task ends).

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:2;mem:512;disk:100;ports:[31000-31010]";

const PRINCIPALS: &str = r#"
[[principal]]
name = "reader"
tokens = ["reader-token-0001"]
permissions = ["read"]
"#;

/// A task that writes to stdout and stderr, plants links out of its sandbox, and stays up.
const WRITER: &str = "echo out-line-1; echo out-line-2; echo err-line >&2; \
    ln -s /etc/shadow leak; ln -s /etc etcdir; ln -s stdout inside; \
    mkdir sub; printf nested > sub/f; touch ready; exec sleep 3600";

async fn send(rb: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = rb.send().await.expect("an answer");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, headers, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

/// `GET /gantry/v1/tasks/{task}/files/{op}?{query}` as the admin: (status, JSON or text).
async fn files(c: &Cluster, task: &str, op: &str, query: &str) -> (u16, Value) {
    let path = format!("/gantry/v1/tasks/{task}/files/{op}?{query}");
    let (status, _, body) = send(c.request(Method::GET, &path)).await;
    (status, json_of(&body))
}

/// A cluster (with a read-only principal) running the writer app; its task id once it is ready.
async fn writer_cluster() -> (Cluster, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    std::fs::write(&file, PRINCIPALS).expect("principals file");
    let mut c = Cluster::with_master_flags(&["--principals-file", file.to_str().expect("utf-8")]);
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let app = json!({"id": "/writer", "cmd": WRITER, "cpus": 0.1, "mem": 16,
                     "env": c.marker_env()});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = c.wait_running("writer", 1).await.remove(0);
    let id = task["id"].as_str().expect("id").to_string();
    let ready = c.sandbox(0, &id).join("ready");
    eventually(Duration::from_secs(10), "the task's files", || async {
        ready.exists().then_some(())
    })
    .await;
    (c, dir, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_read_and_download_through_the_master() {
    let (c, _dir, id) = writer_cluster().await;

    // Browse the sandbox: Mesos's entries, paths relative to the sandbox, links not followed.
    let (status, list) = files(&c, &id, "browse", "path=").await;
    assert_eq!(status, 200, "{list}");
    let entries = list.as_array().expect("a list");
    let entry = |p: &str| {
        entries
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("{p} in {list}"))
            .clone()
    };
    let stdout = entry("stdout");
    assert_eq!(stdout["size"], 22);
    assert_eq!(stdout["nlink"], 1);
    assert!(
        stdout["mode"]
            .as_str()
            .is_some_and(|m| m.starts_with("-rw")),
        "{stdout}"
    );
    assert!(stdout["mtime"].as_i64().is_some_and(|t| t > 0));
    assert!(stdout["uid"].is_string() && stdout["gid"].is_string());
    assert!(entry("leak")["mode"]
        .as_str()
        .is_some_and(|m| m.starts_with('l')));
    assert!(entry("sub")["mode"]
        .as_str()
        .is_some_and(|m| m.starts_with('d')));
    let (status, sub) = files(&c, &id, "browse.json", "path=sub").await;
    assert_eq!(status, 200);
    assert_eq!(sub[0]["path"], "sub/f");
    assert_eq!(sub[0]["size"], 6);

    // Read: whole, a window, the size (offset=-1), past the end, through an inside link.
    let (status, r) = files(&c, &id, "read", "path=stdout").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["data"], "out-line-1\nout-line-2\n");
    assert_eq!(r["offset"], 0);
    let (_, r) = files(&c, &id, "read.json", "path=stdout&offset=4&length=6").await;
    assert_eq!(
        (r["data"].as_str(), r["offset"].as_u64()),
        (Some("line-1"), Some(4))
    );
    let (_, r) = files(&c, &id, "read", "path=stdout&offset=-1").await;
    assert_eq!(
        (r["data"].as_str(), r["offset"].as_u64()),
        (Some(""), Some(22))
    );
    let (_, r) = files(&c, &id, "read", "path=stdout&offset=1000").await;
    assert_eq!(r["data"], "");
    let (_, r) = files(&c, &id, "read", "path=stderr").await;
    assert_eq!(r["data"], "err-line\n");
    let (_, r) = files(&c, &id, "read", "path=inside&length=3").await;
    assert_eq!(r["data"], "out");
    let (_, r) = files(&c, &id, "read", "path=./sub/f").await;
    assert_eq!(r["data"], "nested");

    // Download: the bytes, as an attachment.
    let path = format!("/gantry/v1/tasks/{id}/files/download?path=stdout");
    let (status, headers, body) = send(c.request(Method::GET, &path)).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"out-line-1\nout-line-2\n");
    let disposition = headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(disposition, "attachment; filename=\"stdout\"");
    assert_eq!(
        headers
            .get("x-gantry-task-state")
            .and_then(|v| v.to_str().ok()),
        Some("TASK_RUNNING")
    );
    assert_eq!(
        headers
            .get("x-gantry-task-terminal")
            .and_then(|v| v.to_str().ok()),
        Some("false")
    );

    // Bad parameters.
    for q in [
        "path=stdout&offset=abc",
        "path=stdout&offset=-2",
        "path=stdout&length=-1",
        "path=",
        "path=sub",
    ] {
        let (status, body) = files(&c, &id, "read", q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["message"].is_string(), "{q}: {body}");
    }
    let (status, _) = files(&c, &id, "delete", "path=stdout").await;
    assert_eq!(status, 404);

    // The read permission is enough.
    let reader = reqwest::Client::new()
        .get(format!(
            "{}/gantry/v1/tasks/{id}/files/read?path=stdout",
            c.url()
        ))
        .bearer_auth("reader-token-0001");
    let (status, _, body) = send(reader).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let anonymous = reqwest::Client::new().get(format!(
        "{}/gantry/v1/tasks/{id}/files/read?path=stdout",
        c.url()
    ));
    assert_eq!(send(anonymous).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_out_of_the_sandbox_are_refused() {
    let (c, _dir, id) = writer_cluster().await;
    for op in ["read", "download", "browse"] {
        for q in [
            "path=../",
            "path=..",
            "path=sub/../../x",
            "path=/etc/passwd",
            "path=leak",
            "path=etcdir",
            "path=etcdir/passwd",
        ] {
            let (status, body) = files(&c, &id, op, q).await;
            assert_eq!(status, 403, "{op} {q}: {body}");
            let text = body.to_string();
            assert!(!text.contains("root:"), "{op} {q} leaked: {text}");
        }
    }
    // Unknown task, unknown file.
    let (status, body) = files(&c, "no-such-task", "read", "path=stdout").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = files(&c, &id, "read", "path=missing").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = files(&c, &id, "browse", "path=missing/dir").await;
    assert_eq!(status, 404);

    // The agent itself: absolute paths inside its sandboxes directory are fine, others refused.
    let slaves = c.get("/master/slaves").await;
    let port = slaves["slaves"][0]["port"]
        .as_u64()
        .expect("the agent's port");
    let port = u16::try_from(port).expect("a port");
    let agent = |q: String| c.agent_get(port, &format!("/files/read?{q}"));
    let inside = c.sandbox(0, &id).join("stdout");
    let (status, _, body) = send(agent(format!("path={}", inside.display()))).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["data"], "out-line-1\nout-line-2\n");
    for q in [
        "path=/etc/passwd".to_string(),
        format!("path={}/../../master/x", c.sandbox(0, &id).display()),
        format!("path={}", c.sandbox(0, &id).join("leak").display()),
    ] {
        let (status, _, body) = send(agent(q.clone())).await;
        assert_eq!(status, 403, "{q}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _, _) = send(agent(String::new())).await;
    assert_eq!(status, 400);
}

fn gantry(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = c.cli().args(args).output().expect("run gantry");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_log_prints_and_tails_stdout_and_stderr() {
    let (c, _dir, id) = writer_cluster().await;
    let (ok, out, err) = gantry(&c, &["task", "log", &id]);
    assert!(ok, "{err}");
    assert_eq!(out, "out-line-1\nout-line-2\n");
    let (ok, out, err) = gantry(&c, &["tasks", "log", &id, "--stderr"]);
    assert!(ok, "{err}");
    assert_eq!(out, "err-line\n");
    let (ok, out, err) = gantry(&c, &["task", "log", &id, "--tail", "1"]);
    assert!(ok, "{err}");
    assert_eq!(out, "out-line-2\n");
    let (ok, out, _) = gantry(&c, &["task", "log", &id, "--tail", "0"]);
    assert!(ok);
    assert_eq!(out, "");
    let (ok, _, err) = gantry(&c, &["task", "log", "no-such-task"]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_log_follows_until_the_task_ends() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    // Writes a line every 0.3 s, waits for the test's go, then ends.
    let cmd = "for i in 1 2 3; do echo tick-$i; sleep 0.3; done; \
               while [ ! -f go ]; do sleep 0.1; done; echo done; exit 0";
    let app = json!({"id": "/ticker", "cmd": cmd, "cpus": 0.1, "mem": 16, "env": c.marker_env()});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let id = c.wait_running("ticker", 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let follower = c
        .cli()
        .args(["task", "log", &id, "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gantry task log --follow");
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::write(c.sandbox(0, &id).join("go"), "").expect("go");
    let out = tokio::task::spawn_blocking(move || follower.wait_with_output())
        .await
        .expect("join")
        .expect("the follower ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "tick-1\ntick-2\ntick-3\ndone\n");

    // The ended task's files stay readable through the master (completed tasks).
    let (status, r) = files(&c, &id, "read", "path=stdout&offset=-1").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["offset"], 26);
    let path = format!("/gantry/v1/tasks/{id}/files/read?path=stdout");
    let (_, headers, _) = send(c.request(Method::GET, &path)).await;
    assert_eq!(
        headers
            .get("x-gantry-task-terminal")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (ok, out, _) = gantry(&c, &["task", "log", &id, "--follow", "--tail", "1"]);
    assert!(ok);
    assert_eq!(out, "done\n");
}
