//! Whole-cluster tests of readiness checks run by the master during deployments: a deployment
//! stays listed, with `readinessCheckResults` ready=false (and the preserved last response) in
//! `/v2/deployments` and on the app with `embed=app.readiness`, until its task's server answers
//! 200, over HTTP (also across a master `kill -9`, after which it probes again) and over HTTPS
//! with a self-signed certificate; a rolling restart of 3 instances never kills an old task before
//! a replacement is ready.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{eventually, Cluster};

/// A server answering every GET with 503 "not yet" until `$MESOS_SANDBOX/ready` exists, then 200
/// "ready"; with a certificate and key as arguments 2 and 3, over HTTPS.
const SERVER: &str = r#"
import http.server, os, ssl, sys
READY = os.path.join(os.environ.get("MESOS_SANDBOX", "."), "ready")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.path.exists(READY)
        body = b"ready" if ok else b"not yet"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

/// An agent offering CPUs, memory and 20 host ports from a free spot of loopback.
fn agent() -> String {
    let base = support::free_port().min(65_000);
    format!("cpus:2;mem:1024;disk:100;ports:[{base}-{}]", base + 20)
}

/// Writes the server script (and, for HTTPS, a self-signed certificate) into the test's
/// directory; returns the command that runs it on `$PORT0`.
fn server_cmd(dir: &Path, https: bool) -> String {
    let script = dir.join("ready_server.py");
    std::fs::write(&script, SERVER).expect("write the server script");
    let mut cmd = format!("exec python3 {} $PORT0", script.display());
    if https {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
            .expect("a self-signed certificate");
        let (crt, key): (PathBuf, PathBuf) = (dir.join("srv.crt"), dir.join("srv.key"));
        std::fs::write(&crt, cert.cert.pem()).expect("write the certificate");
        std::fs::write(&key, cert.key_pair.serialize_pem()).expect("write the key");
        cmd += &format!(" {} {}", crt.display(), key.display());
    }
    cmd
}

fn app(c: &Cluster, id: &str, cmd: &str, instances: u32, protocol: &str) -> Value {
    json!({"id": id, "cmd": cmd, "cpus": 0.1, "mem": 32, "instances": instances,
        "env": c.marker_env(),
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "readinessChecks": [{"name": "ready", "protocol": protocol, "path": "/ready",
            "portName": "http-api", "intervalSeconds": 2, "timeoutSeconds": 1,
            "httpStatusCodesForReady": [200], "preserveLastResponse": true}]})
}

async fn put(c: &Cluster, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .request(Method::PUT, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("PUT reaches the master");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The readiness results of the first current action of the only deployment, once there are `n`.
async fn deployment_results(c: &Cluster, n: usize) -> Vec<Value> {
    eventually(
        Duration::from_secs(60),
        &format!("{n} readiness results in /v2/deployments"),
        || async {
            let d = c.get("/v2/deployments").await;
            let r = d[0]["currentActions"][0]["readinessCheckResults"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (r.len() == n).then_some(r)
        },
    )
    .await
}

/// With `restart`, the master is killed (-9) and started again while the task is not ready: the
/// results were in memory only, so the new master probes again and the deployment still waits.
async fn a_deployment_waits_until_its_task_is_ready(https: bool, restart: bool) {
    let mut c = Cluster::unstarted();
    c.tolerate_missed_heartbeats(40);
    c.start_master();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    let cmd = server_cmd(c.dir.path(), https);
    let protocol = if https { "HTTPS" } else { "HTTP" };
    let (s, b) = c
        .post(
            "/v2/apps",
            &app(&c, "/gated", &cmd, 1, protocol).to_string(),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let dep = b["deployments"][0]["id"].clone();

    let results = deployment_results(&c, 1).await;
    let r = &results[0];
    assert_eq!(r["name"], "ready");
    assert_eq!(r["ready"], false, "{r}");
    let task_id = r["taskId"].as_str().expect("a task id").to_string();
    // The first probes may find the server not listening yet; once it answers, 503 is kept.
    let r = eventually(Duration::from_secs(60), "a preserved 503", || async {
        let r = deployment_results(&c, 1).await.remove(0);
        (r["lastResponse"]["status"] == 503).then_some(r)
    })
    .await;
    assert_eq!(r["ready"], false, "{r}");
    assert_eq!(
        r["lastResponse"],
        json!({"status": 503, "contentType": "text/plain", "body": "not yet"})
    );
    let shown = c.get("/v2/apps/gated?embed=app.readiness").await["app"].clone();
    assert_eq!(
        shown["readinessCheckResults"][0]["taskId"],
        task_id.as_str()
    );
    assert_eq!(shown["readinessCheckResults"][0]["ready"], false);
    assert_eq!(shown["deployments"], json!([{ "id": dep }]), "{shown}");
    assert_eq!(shown["tasksRunning"], 1);
    let listed = c.get("/v2/apps?embed=apps.readiness").await;
    assert_eq!(
        listed["apps"][0]["readinessCheckResults"][0]["taskId"],
        task_id.as_str()
    );
    let plain = c.get("/v2/apps/gated").await["app"].clone();
    assert!(
        plain.get("readinessCheckResults").is_none(),
        "only with the embed: {plain}"
    );
    // Several intervals on, still not ready and still deploying.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(c.get("/v2/deployments").await[0]["id"], dep);
    if restart {
        c.kill_master();
        c.start_master();
        c.wait_agents(1).await;
        let r = deployment_results(&c, 1).await.remove(0);
        assert_eq!(r["taskId"], task_id.as_str(), "probed again: {r}");
        assert_eq!(r["ready"], false, "{r}");
        assert_eq!(c.get("/v2/deployments").await[0]["id"], dep);
    }

    std::fs::write(c.sandbox(0, &task_id).join("ready"), "").expect("mark the task ready");
    eventually(Duration::from_secs(60), "the deployment to end", || async {
        (c.get("/v2/deployments").await == json!([])).then_some(())
    })
    .await;
    let done = c.get("/v2/apps/gated?embed=app.readiness").await["app"].clone();
    assert_eq!(done["deployments"], json!([]));
    assert_eq!(
        done["readinessCheckResults"],
        json!([]),
        "none once no deployment changes the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_waits_for_an_http_readiness_check_across_a_master_kill_9() {
    a_deployment_waits_until_its_task_is_ready(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_waits_for_an_https_readiness_check_on_a_self_signed_server() {
    a_deployment_waits_until_its_task_is_ready(true, false).await;
}

/// `/roll`'s tasks that are not terminal, split by whether they run `version`.
async fn split(c: &Cluster, version: &str) -> (Vec<Value>, Vec<Value>) {
    c.tasks("roll")
        .await
        .into_iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .partition(|t| t["version"] != version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_kills_an_old_task_only_per_ready_replacement() {
    let mut c = Cluster::new();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    // The first version is ready at once; the second only once the test says so.
    let cmd = format!(
        "[ \"$VERSION\" = 2 ] || touch $MESOS_SANDBOX/ready; {}",
        server_cmd(c.dir.path(), false)
    );
    let (s, b) = c
        .post("/v2/apps", &app(&c, "/roll", &cmd, 3, "HTTP").to_string())
        .await;
    assert_eq!(s, 201, "{b}");
    eventually(
        Duration::from_secs(60),
        "the create deployment to end",
        || async { (c.get("/v2/deployments").await == json!([])).then_some(()) },
    )
    .await;
    c.wait_running("roll", 3).await;

    let mut env = c.marker_env();
    env["VERSION"] = json!("2");
    let (s, b) = put(&c, "/v2/apps/roll", json!({ "env": env })).await;
    assert_eq!(s, 200, "{b}");
    let version = b["version"].as_str().expect("a version").to_string();
    // Defaults (1, 1): three new tasks next to the three old, none ready, none old killed.
    let results = deployment_results(&c, 3).await;
    assert!(results.iter().all(|r| r["ready"] == false), "{results:?}");
    let mut ready: Vec<String> = Vec::new();
    for _ in 0..3 {
        let (old, new) = split(&c, &version).await;
        assert_eq!(
            old.len(),
            3 - ready.len(),
            "old tasks killed early: {old:?}"
        );
        let next = new
            .iter()
            .filter_map(|t| t["id"].as_str())
            .find(|id| !ready.iter().any(|r| r == id))
            .expect("a new task not ready yet")
            .to_string();
        std::fs::write(c.sandbox(0, &next).join("ready"), "").expect("mark a task ready");
        ready.push(next);
        // One old task goes per new one ready, never more.
        eventually(
            Duration::from_secs(60),
            "one more old task killed",
            || async {
                let (old, _) = split(&c, &version).await;
                assert!(old.len() >= 3 - ready.len(), "killed too early: {old:?}");
                (old.len() == 3 - ready.len()).then_some(())
            },
        )
        .await;
    }
    eventually(Duration::from_secs(60), "the restart to end", || async {
        (c.get("/v2/deployments").await == json!([])).then_some(())
    })
    .await;
    let tasks = c.wait_running("roll", 3).await;
    assert!(tasks.iter().all(|t| t["version"] == version.as_str()));
}
