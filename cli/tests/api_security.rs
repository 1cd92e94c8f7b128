//! The master's API as an attacker and as its operators meet it (issue 15), against a real
//! gantry-masterd: credentials and permissions on every mutating endpoint, run-as users, the audit
//! log, rate limits, secrets kept out of the logs, and each defect the security probe found (huge
//! instance counts, ids that shadow sub-resources, bodies over the limit, error bodies that were
//! empty or plain text, any Content-Type taken as JSON, unbounded amounts, NUL bytes, exhausted
//! service ports) answered in Marathon's shape with nothing stored.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use support::{eventually, Cluster};

const PRINCIPALS: &str = r#"
[[principal]]
name = "reader"
tokens = ["reader-token-0001"]
permissions = ["read"]

[[principal]]
name = "deployer"
password = "deploy-pw-0001"
permissions = ["read", "write_apps"]
run_as = ["nobody"]

[[principal]]
name = "slow"
tokens = ["slow-token-00001"]
permissions = ["read"]
rate_limit = 1.0
"#;

/// A cluster whose master knows the principals above (and the harness's admin).
fn cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    std::fs::write(&file, PRINCIPALS).expect("principals file");
    let c = Cluster::with_master_flags(&["--principals-file", file.to_str().expect("utf-8")]);
    (c, dir)
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = rb.send().await.expect("the master answers");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

async fn wait_up(c: &Cluster) {
    eventually(Duration::from_secs(20), "the master to answer", || async {
        c.try_get("/version").await.map(|_| ())
    })
    .await;
}

fn raw(c: &Cluster, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().request(method, format!("{}{path}", c.url()))
}

const APP: &str = r#"{"id": "/sec", "cmd": "sleep 1", "cpus": 0.1, "mem": 16}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_needs_credentials_and_the_permission() {
    let (c, _dir) = cluster();
    wait_up(&c).await;

    // Open: liveness and version, without credentials.
    for path in ["/ping", "/health", "/version"] {
        let (s, _, _) = send(raw(&c, Method::GET, path)).await;
        assert_eq!(s, 200, "{path} is open");
    }
    // Reads need credentials: 401 in each API's shape, with a Basic challenge.
    let (s, b, h) = send(raw(&c, Method::GET, "/v2/apps")).await;
    assert_eq!(s, 401);
    assert_eq!(b, json!({"message": "Invalid username or password."}));
    assert!(h.get("www-authenticate").is_some());
    let (s, b, _) = send(raw(&c, Method::GET, "/master/state")).await;
    assert_eq!((s, b), (401, Value::String("Unauthorized".into())));
    let (s, b, _) = send(raw(&c, Method::GET, "/v2/apps").basic_auth("deployer", Some("x"))).await;
    assert_eq!(
        (s, b["message"].clone()),
        (401, json!("Invalid username or password."))
    );
    let (s, _, _) = send(raw(&c, Method::GET, "/v2/apps").bearer_auth("not-a-token")).await;
    assert_eq!(s, 401);
    let (s, _, _) = send(raw(&c, Method::GET, "/v2/apps").bearer_auth("reader-token-0001")).await;
    assert_eq!(s, 200, "a reader reads");
    let (s, _, _) =
        send(raw(&c, Method::GET, "/v2/apps").header("authorization", "token=reader-token-0001"))
            .await;
    assert_eq!(
        s, 200,
        "Marathon's token= form (marathon-python's auth_token)"
    );

    // Every mutating endpoint: 401 without credentials, 403 for a reader; nothing changes.
    let json_body = |rb: reqwest::RequestBuilder| {
        rb.header("content-type", "application/json")
            .body(APP.to_string())
    };
    let mutations: Vec<(Method, &str)> = vec![
        (Method::POST, "/v2/apps"),
        (Method::DELETE, "/v2/apps/sec"),
        (Method::DELETE, "/v2/apps/sec/tasks"),
        (Method::DELETE, "/v2/apps/sec/tasks/sec.instance-1"),
        (Method::PUT, "/v2/apps/sec"),
        (Method::POST, "/scheduler/iso8601"),
        (Method::DELETE, "/v1/scheduler/job/x"),
        (Method::POST, "/api/v1/scheduler"),
    ];
    for (m, path) in &mutations {
        let (s, b, _) = send(json_body(raw(&c, m.clone(), path))).await;
        assert_eq!(s, 401, "{m} {path} without credentials: {b}");
        let rb = raw(&c, m.clone(), path).bearer_auth("reader-token-0001");
        let (s, b, _) = send(json_body(rb)).await;
        assert_eq!(s, 403, "{m} {path} as a reader: {b}");
        if path.starts_with("/v2/") {
            assert_eq!(b["message"], "Not Authorized to perform this action!");
        } else if path.contains("scheduler") && !path.starts_with("/api/") {
            assert_eq!(b["status"], "Forbidden", "Chronos's shape: {b}");
        }
    }
    assert_eq!(
        c.get("/v2/apps").await["apps"],
        json!([]),
        "nothing was stored"
    );

    // A deployer writes apps, but runs them only as its users.
    let deployer =
        |m: Method, path: &str| raw(&c, m, path).basic_auth("deployer", Some("deploy-pw-0001"));
    let as_root = r#"{"id": "/root-app", "cmd": "id", "user": "root", "cpus": 0.1, "mem": 16}"#;
    let (s, b, _) = send(
        deployer(Method::POST, "/v2/apps")
            .header("content-type", "application/json")
            .body(as_root),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["details"].as_str().is_some_and(|d| d.contains("root")),
        "{b}"
    );
    let (s, b, _) = send(json_body(deployer(Method::POST, "/v2/apps"))).await;
    assert_eq!(s, 201, "{b}");
    let (s, _, _) = send(deployer(Method::GET, "/gantry/v1/audit")).await;
    assert_eq!(s, 403, "the audit log is for admins");

    // The audit log: who, what, when, from where, and the answer, refusals included.
    let audit = c.get("/gantry/v1/audit?limit=1000").await["entries"].clone();
    let entries = audit.as_array().expect("entries");
    let find = |who: &str, status: u64| {
        entries
            .iter()
            .any(|e| e["principal"] == who && e["status"] == status && e["method"] == "POST")
    };
    assert!(find("-", 401), "anonymous refusals are audited: {audit}");
    assert!(find("reader", 403), "{audit}");
    assert!(find("deployer", 201), "{audit}");
    assert!(entries.iter().all(|e| e["remote"]
        .as_str()
        .is_some_and(|r| r.starts_with("127.0.0.1:"))));
    assert!(entries
        .iter()
        .all(|e| e["at"].as_f64().is_some_and(|t| t > 1.7e9)));
    assert!(
        !entries.iter().any(|e| e["method"] == "GET"),
        "reads are not audited"
    );

    // A principal over its rate gets 429 with Retry-After, in Marathon's shape.
    let mut limited = None;
    for _ in 0..10 {
        let (s, b, h) =
            send(raw(&c, Method::GET, "/v2/apps").bearer_auth("slow-token-00001")).await;
        if s == 429 {
            limited = Some((b, h));
            break;
        }
    }
    let (b, h) = limited.expect("rate limit 1/s with a burst of 2 refuses within 10 requests");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too many requests")),
        "{b}"
    );
    assert!(h.get("retry-after").is_some());

    // No secret reaches the log.
    let log = c.read_log("master.log");
    for secret in [
        "deploy-pw-0001",
        "reader-token-0001",
        "test-secret",
        &c.token,
    ] {
        assert!(!log.contains(secret), "the master's log holds a secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_defect_of_the_probe_is_refused_in_marathons_shape_and_stores_nothing() {
    let c = Cluster::new();
    wait_up(&c).await;
    let post = |body: String| async {
        let r = c
            .request(Method::POST, "/v2/apps")
            .header("content-type", "application/json")
            .body(body);
        send(r).await
    };
    let detail_paths = |b: &Value| -> Vec<String> {
        b["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["path"].as_str().map(String::from))
            .collect()
    };
    for (body, field) in [
        (
            r#"{"id":"/big","cmd":"sleep 1","instances":99999999}"#,
            "/instances",
        ),
        (r#"{"id":"/a/tasks/x","cmd":"sleep 1"}"#, "/id"),
        (r#"{"id":"/v","cmd":"sleep 1","cpus":1e308}"#, "/cpus"),
        (r#"{"id":"/m","cmd":"sleep 1","mem":1e300}"#, "/mem"),
        (r#"{"id":"/e","cmd":"sleep 1","env":{"":"x"}}"#, "/env"),
        (
            r#"{"id":"/e","cmd":"sleep 1","env":{"A=B":"y"}}"#,
            "/env/A=B",
        ),
        (r#"{"id":"/n","cmd":"sleep\u0000 1"}"#, "/cmd"),
        (r#"{"id":"/n","cmd":"x","env":{"K":"v\u0000"}}"#, "/env/K"),
    ] {
        let (s, b, _) = post(body.to_string()).await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["message"], "Object is not valid", "{b}");
        assert!(
            detail_paths(&b).contains(&field.to_string()),
            "{body} names {field}: {b}"
        );
    }
    assert_eq!(
        c.get("/v2/apps").await["apps"],
        json!([]),
        "nothing was stored"
    );
    let (s, _, _) = send(c.request(Method::GET, "/v2/apps/a/tasks/x")).await;
    assert_eq!(s, 404);

    // Content-Type is enforced as Jersey does: 415, nothing stored.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut rb = c.request(Method::POST, "/v2/apps").body(APP);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        let (s, b, _) = send(rb).await;
        assert_eq!(s, 415, "{ct:?}: {b}");
        assert!(
            b["message"].as_str().is_some_and(|m| m.contains("415")),
            "{b}"
        );
    }
    let rb = c
        .request(Method::POST, "/v2/apps")
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"id":"/ok","cmd":"sleep 1"}"#);
    assert_eq!(send(rb).await.0, 201, "JSON with a charset is JSON");

    // Errors below the handlers have Marathon's body too.
    let (s, b, h) = send(c.request(Method::PUT, "/ping")).await;
    assert_eq!(
        (s, b),
        (405, json!({"message": "HTTP 405 Method Not Allowed"}))
    );
    assert!(h.get("allow").is_some());
    let long = format!("/v2/apps?id={}", "a".repeat(20_000));
    let (s, b, _) = send(c.request(Method::GET, &long)).await;
    assert_eq!(s, 414, "{b}");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too Long")),
        "{b}"
    );
    let (s, b, _) = post("{".into()).await;
    assert_eq!((s, b["message"].clone()), (400, json!("Invalid JSON")));
    // A chunked body over the limit: 413 in Marathon's shape, and the connection closed.
    let answer = raw_post(&c, "Transfer-Encoding: chunked", &{
        let chunk = format!("{:x}\r\n{}\r\n", 65536, " ".repeat(65536));
        chunk.repeat(48)
    });
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"message\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // A declared body over the limit: 413 at once, then the connection is closed, so the next
    // request can never be read as the rest of this one.
    let answer = raw_post(&c, "Content-Length: 3000000", "{\"id\":");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"message\""), "{answer}");
    assert!(
        c.try_get("/version").await.is_some(),
        "the master still answers"
    );

    // Service ports: when 10000-20000 run out, a 422 says so instead of a silent port 0.
    // /ok above holds 10000 (the default port definition); this takes the other 10,000.
    let ports: Vec<Value> = (0..10_000).map(|_| json!({"port": 0})).collect();
    let hog = json!({"id": "/hog", "cmd": "sleep 1", "portDefinitions": ports});
    let (s, b, _) = post(hog.to_string()).await;
    assert_eq!(
        s,
        201,
        "{}",
        b.to_string().chars().take(300).collect::<String>()
    );
    let (s, b, _) =
        post(r#"{"id":"/late","cmd":"sleep 1","portDefinitions":[{"port":0}]}"#.into()).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("no free service ports")),
        "{b}"
    );
    let (s, _, _) = send(c.request(Method::GET, "/v2/apps/late")).await;
    assert_eq!(s, 404, "nothing stored");
}

/// POSTs to /v2/apps over a raw socket with `framing` (a length or chunked header) and `body`,
/// then reads until the master closes the connection; returns everything it sent back.
fn raw_post(c: &Cluster, framing: &str, body: &str) -> String {
    use base64::Engine;
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", c.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = base64::engine::general_purpose::STANDARD.encode(support::CREDENTIALS);
    let head = format!(
        "POST /v2/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).expect("write");
    let _ = sock.write_all(body.as_bytes()); // the master may close before it all arrives
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_app_with_millions_of_instances_does_not_wedge_the_master() {
    use gantry_masterd::services::app_definition::AppDefinition;
    use gantry_masterd::store::{SqliteStore, Store, Write};
    let mut c = Cluster::new();
    wait_up(&c).await;
    c.kill_master();
    // Stored before the bound existed (or by a bug): ten million instances.
    let app = json!({"id": "/huge", "cmd": "sleep 3600", "instances": 10_000_000, "cpus": 0.01,
                     "mem": 1, "env": c.marker_env()});
    let mut small = app.clone();
    small["instances"] = json!(1);
    let mut def = AppDefinition::parse(small.to_string().as_bytes()).expect("a valid app");
    def.instances = 10_000_000;
    let store = SqliteStore::open(&c.dir.path().join("master")).expect("store");
    store
        .apply(&[Write::PutApp {
            id: "/huge".into(),
            app: serde_json::to_value(&def).expect("json"),
        }])
        .expect("write");
    drop(store);
    c.start_master();
    c.start_agent(0, "cpus:1;mem:256;disk:100;ports:[31000-31010]");
    wait_up(&c).await;
    c.wait_agents(1).await;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        assert!(c.try_get("/version").await.is_some(), "the master answers");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "promptly: {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", c.master_pid())).expect("status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    assert!(
        rss_kib < 200 * 1024,
        "the master stays small: {rss_kib} KiB"
    );
    let q = c.get("/v2/queue").await;
    let item = q["queue"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["app"]["id"] == "/huge").cloned())
        .expect("/huge waits in the queue");
    assert!(
        item["count"].as_u64().is_some_and(|n| n > 9_000_000),
        "{item}"
    );
    let (s, _, _) = send(c.request(Method::DELETE, "/v2/apps/huge")).await;
    assert_eq!(s, 200, "and it can be deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_a_503_and_slots_come_back() {
    let c = Cluster::with_master_flags(&["--max-connections", "2"]);
    wait_up(&c).await;
    // Let the harness's pooled connection go, so the two slots are the test's.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", c.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };
    let ping = |mut s: std::net::TcpStream| {
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    // The harness client may still hold one: fill whatever is left, then one more is refused.
    let mut held = Vec::new();
    let refused = loop {
        let s = connect();
        let probe = s.try_clone().expect("clone");
        probe
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        match (&probe).read(&mut buf) {
            Ok(n) if n > 0 => break String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => held.push(s),
        }
        assert!(held.len() <= 2, "more than 2 connections were taken");
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("Too many connections"), "{refused}");
    drop(held);
    let answer = eventually(Duration::from_secs(10), "a free slot again", || async {
        let a = ping(connect());
        a.starts_with("HTTP/1.1 200").then_some(a)
    })
    .await;
    assert!(answer.ends_with("pong"), "{answer}");
}
