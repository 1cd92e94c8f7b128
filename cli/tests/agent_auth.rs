//! Authentication on the agent's own HTTP endpoint, with real gantry-masterd and gantry-agentd
//! processes on loopback (docs/security.md, "The agent's own endpoint"): `/state` and its aliases,
//! `/monitor/statistics` and `/files/*` answer 401 (plain text, `WWW-Authenticate`) without a
//! credential or with a wrong one, and 200 with the agent's join token as a bearer token or with
//! its `--http-credentials`; `/health` stays open; the master's file proxy keeps working through a
//! rotation of the agent's token file and a reconnection; no credential shows in any log.

mod support;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::{eventually, Cluster, CREDENTIALS};

const AGENT: &str = "cpus:2;mem:512;disk:100;ports:[31000-31010]";
const AGENT_CREDENTIALS: &str = "ops:agent-pw-7f3e9a";

/// Replaces a token file at once (write, then rename), as docs/tls.md says to.
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write a token file");
    std::fs::rename(&tmp, path).expect("replace the token file");
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// GET `path` on the agent with `authorization` (none when `None`): status and body text.
async fn agent(
    port: u16,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let r = req.send().await.expect("the agent answers");
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

/// The task's stdout through the master's file proxy, if it answers 200.
async fn stdout_through_master(c: &Cluster, task: &str) -> Option<String> {
    let r = c
        .request(
            reqwest::Method::GET,
            &format!("/gantry/v1/tasks/{task}/files/read?path=stdout&offset=0"),
        )
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::OK {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    v["data"].as_str().map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_endpoint_needs_its_join_token_or_its_credentials() {
    let old = format!("old-{}", uuid::Uuid::new_v4().simple());
    let new = format!("new-{}", uuid::Uuid::new_v4().simple());
    let mut c = Cluster::unstarted();
    let dir = c.dir.path().to_path_buf();
    let master_tokens = dir.join("master-tokens");
    write(&master_tokens, &format!("{old}\n{new}\n"));
    c.use_token_file(&master_tokens);
    c.start_master();
    let agent_tokens = dir.join("agent-token");
    write(&agent_tokens, &format!("{old}\n"));
    c.start_agent_flags(
        0,
        AGENT,
        &[
            "--token-file",
            agent_tokens.to_str().expect("utf-8"),
            "--http-credentials",
            AGENT_CREDENTIALS,
        ],
        &[],
    );
    c.wait_agents(1).await;
    let app = json!({"id": "/talker", "cmd": "echo hello-out; exec sleep 3600",
                     "cpus": 0.1, "mem": 16, "env": c.marker_env()});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = c.wait_running("talker", 1).await.remove(0);
    let id = task["id"].as_str().expect("task id").to_string();
    let stdout = c.sandbox(0, &id).join("stdout");
    eventually(Duration::from_secs(10), "the task's stdout", || async {
        std::fs::read_to_string(&stdout)
            .ok()
            .filter(|s| s.contains("hello-out"))
    })
    .await;
    let port = u16::try_from(
        c.get("/master/slaves").await["slaves"][0]["port"]
            .as_u64()
            .expect("the agent's port"),
    )
    .expect("a port");

    let file = stdout.display().to_string();
    let guarded = [
        "/state".to_string(),
        "/state.json".to_string(),
        "/slave(1)/state".to_string(),
        "/monitor/statistics".to_string(),
        "/monitor/statistics.json".to_string(),
        format!("/files/read?path={file}&offset=0"),
        format!("/files/browse?path={}", c.sandbox(0, &id).display()),
        format!("/files/download?path={file}"),
    ];
    let wrong = [
        None,
        Some(format!("Bearer {old}x")),
        Some("Bearer ".to_string()),
        Some(format!("token={old}")),
        Some(basic("ops:wrong")),
        Some(basic(CREDENTIALS)), // the master's credentials are not the agent's
    ];
    for path in &guarded {
        for auth in &wrong {
            let (status, headers, body) = agent(port, path, auth.as_deref()).await;
            assert_eq!(status, 401, "{path} with {auth:?}: {body}");
            let challenges: Vec<&str> = headers
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            assert!(
                challenges.iter().any(|c| c.starts_with("Basic realm="))
                    && challenges.iter().any(|c| c.starts_with("Bearer realm=")),
                "{path}: {challenges:?}"
            );
            assert!(
                headers["content-type"]
                    .to_str()
                    .is_ok_and(|t| t.starts_with("text/plain")),
                "{path}: {headers:?}"
            );
            assert!(
                !body.contains("hello-out") && !body.contains("\"id\""),
                "{body}"
            );
        }
        for auth in [format!("Bearer {old}"), basic(AGENT_CREDENTIALS)] {
            let (status, _, body) = agent(port, path, Some(&auth)).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    let (_, _, body) = agent(port, &guarded[0], Some(&format!("Bearer {old}"))).await;
    let state: Value = serde_json::from_str(&body).expect("the agent's state is JSON");
    assert!(state["id"].is_string(), "{state}");
    let (_, _, body) = agent(port, &guarded[5], Some(&basic(AGENT_CREDENTIALS))).await;
    assert!(body.contains("hello-out"), "{body}");
    let (status, _, body) = agent(port, "/health", None).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "OK"));

    // The master's proxy authenticates with the token the agent connected with.
    let through = eventually(Duration::from_secs(10), "stdout through the master", || {
        stdout_through_master(&c, &id)
    })
    .await;
    assert_eq!(through, "hello-out\n");
    let (ok, out, err) = {
        let o = c
            .cli()
            .args(["task", "log", &id])
            .output()
            .expect("run gantry");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(ok, "{err}");
    assert_eq!(out, "hello-out\n");

    // The agent's token file is rotated: the new token is accepted at once, and the old one
    // (which the agent is still connected with, and the master presents) too.
    write(&agent_tokens, &format!("{new}\n"));
    for auth in [format!("Bearer {new}"), format!("Bearer {old}")] {
        let (status, _, body) = agent(port, "/state", Some(&auth)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        stdout_through_master(&c, &id).await.as_deref(),
        Some("hello-out\n")
    );

    // The agent connects again (the master restarted) with the new token: the old one is no
    // longer accepted, and the restarted master presents the new one.
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    eventually(
        Duration::from_secs(30),
        "the old token refused once the agent reconnected",
        || async {
            let (status, _, _) = agent(port, "/state", Some(&format!("Bearer {old}"))).await;
            (status == 401).then_some(())
        },
    )
    .await;
    let (status, _, body) = agent(port, "/state", Some(&format!("Bearer {new}"))).await;
    assert_eq!(status, 200, "{body}");
    let through = eventually(
        Duration::from_secs(30),
        "stdout through the restarted master",
        || stdout_through_master(&c, &id),
    )
    .await;
    assert_eq!(through, "hello-out\n");

    // No credential in any log.
    let (_, agent_pw) = AGENT_CREDENTIALS.split_once(':').expect("user:password");
    for log in ["master.log", "agent0.log"] {
        let text = c.read_log(log);
        assert!(!text.is_empty(), "{log} is empty");
        for secret in [
            old.as_str(),
            new.as_str(),
            agent_pw,
            &basic(AGENT_CREDENTIALS)[6..],
        ] {
            assert!(!text.contains(secret), "a credential shows in {log}");
        }
    }
}
