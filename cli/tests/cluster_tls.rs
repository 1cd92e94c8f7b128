//! TLS on the master's port, with real gantry-masterd, gantry-agentd and gantry processes on
//! loopback and a PKI made by rcgen in each test: an agent that trusts the master's CA registers and
//! runs a task over WSS; agents with the wrong CA (or only the public roots) refuse to connect and
//! say why; with `--tls-client-ca-file` only an agent with a client certificate from that CA joins;
//! the CLI works against the HTTPS master with `--ca-file`; bad TLS files stop the daemons with the
//! file named; a renewed certificate is served without a restart.

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::certs::TestCa;
use support::Cluster;

const AGENT: &str = "cpus:1;mem:512;disk:1000;ports:[31000-31099]";

/// A cluster whose master serves HTTPS with a certificate from `ca` (and `extra` flags); the
/// cluster's own client trusts `ca`. Returns it with the CA's PEM file.
fn tls_cluster(ca: &TestCa, extra: &[&Path]) -> (Cluster, PathBuf) {
    let mut c = Cluster::unstarted();
    let (cert, key) = ca.server_cert(c.dir.path(), "master");
    let ca_file = ca.write(c.dir.path(), "master-ca");
    c.add_master_flags(&[
        Path::new("--tls-cert-file"),
        &cert,
        Path::new("--tls-key-file"),
        &key,
    ]);
    c.add_master_flags(extra);
    c.use_https(&ca.pem());
    c.start_master();
    (c, ca_file)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

/// Runs a daemon that should refuse to start; returns its output once it has exited.
fn exits_with(mut cmd: Command) -> String {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(!status.success(), "it should have refused to start");
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            return text;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon kept running with bad TLS files");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_trusting_the_masters_ca_registers_and_runs_a_task_over_tls() {
    let ca = TestCa::new("Gantry test CA");
    let (mut c, ca_file) = tls_cluster(&ca, &[]);
    let token = c.token.clone();
    c.start_agent_with(0, AGENT, &token, &["--master-ca-file", path(&ca_file)], &[]);
    c.wait_agents(1).await;
    let app = json!({"id": "/secure", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 1, "cpus": 0.1, "mem": 32});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    c.wait_running("secure", 1).await;

    assert!(c.read_log("master.log").contains("tls=true"));
    assert!(c
        .read_log("agent0.log")
        .contains("registered with the master"));
    // Nothing is served in plain text on the TLS port.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/ping", c.port)).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

/// `GET /ping` on a new connection from a client that trusts only `ca_pem`: its status, or `None`
/// when the handshake (or anything else) fails.
async fn ping_trusting(c: &Cluster, ca_pem: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).ok()?)
        .build()
        .ok()?;
    let r = client.get(format!("{}/ping", c.url())).send().await.ok()?;
    Some(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let old_ca = TestCa::new("Gantry old CA");
    let (c, _) = tls_cluster(&old_ca, &[]);
    support::eventually(Duration::from_secs(20), "the master answers", || async {
        (ping_trusting(&c, &old_ca.pem()).await == Some(200)).then_some(())
    })
    .await;
    let pid = c.master_pid();
    // The operator renews: a certificate from another CA, written over the same files (the
    // certificate first, then the key, so the master may see half a renewal for a moment).
    let new_ca = TestCa::new("Gantry new CA");
    new_ca.server_cert(c.dir.path(), "master");
    support::eventually(
        Duration::from_secs(30),
        "new connections get the renewed certificate",
        || async { (ping_trusting(&c, &new_ca.pem()).await == Some(200)).then_some(()) },
    )
    .await;
    assert_eq!(
        ping_trusting(&c, &old_ca.pem()).await,
        None,
        "the old certificate is no longer served"
    );
    assert_eq!(c.master_pid(), pid);
    c.wait_log("master.log", "TLS certificate reloaded", 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_the_wrong_ca_does_not_connect_and_says_why() {
    let ca = TestCa::new("Gantry test CA");
    let other = TestCa::new("Some other CA");
    let (mut c, _ca_file) = tls_cluster(&ca, &[]);
    let other_file = other.write(c.dir.path(), "other-ca");
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--master-ca-file", path(&other_file)],
        &[],
    );
    // No --master-ca-file: the public roots, which do not hold the test CA either.
    c.start_agent_with(1, AGENT, &token, &[], &[]);
    let why = "the master's certificate is not signed by a CA this agent trusts";
    // Two attempts each: it keeps retrying, and keeps refusing.
    c.wait_log("agent0.log", why, 2).await;
    c.wait_log("agent1.log", why, 2).await;
    let log0 = c.read_log("agent0.log");
    assert!(
        log0.contains(path(&other_file)) && log0.contains("UnknownIssuer"),
        "{log0}"
    );
    assert!(c.read_log("agent1.log").contains("webpki roots"));
    let s = c.get("/master/slaves").await;
    assert_eq!(s["slaves"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(!log0.contains("registered with the master"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_agents_with_a_certificate_from_it_join() {
    let ca = TestCa::new("Gantry test CA");
    let agents_ca = TestCa::new("Gantry agents CA");
    let rogue_ca = TestCa::new("Rogue CA");
    let dir = tempfile::tempdir().expect("temp dir");
    let agents_ca_file = agents_ca.write(dir.path(), "agents-ca");
    let (mut c, ca_file) = tls_cluster(&ca, &[Path::new("--tls-client-ca-file"), &agents_ca_file]);
    let token = c.token.clone();
    let trust = ["--master-ca-file", path(&ca_file)];
    // No client certificate.
    c.start_agent_with(0, AGENT, &token, &trust, &[]);
    // A client certificate from another CA.
    let (rogue_cert, rogue_key) = rogue_ca.client_cert(c.dir.path(), "rogue-agent");
    let rogue = [
        trust[0],
        trust[1],
        "--tls-cert-file",
        path(&rogue_cert),
        "--tls-key-file",
        path(&rogue_key),
    ];
    c.start_agent_with(1, AGENT, &token, &rogue, &[]);
    c.wait_log("agent0.log", "requires a client certificate", 2)
        .await;
    c.wait_log("agent1.log", "refused this agent's client certificate", 2)
        .await;
    let master_log = c.read_log("master.log");
    assert!(master_log.contains("no client certificate"), "{master_log}");
    assert!(master_log.contains("refused a TLS client"), "{master_log}");

    let (cert, key) = agents_ca.client_cert(c.dir.path(), "agent2");
    let good = [
        trust[0],
        trust[1],
        "--tls-cert-file",
        path(&cert),
        "--tls-key-file",
        path(&key),
    ];
    c.start_agent_with(2, AGENT, &token, &good, &[]);
    c.wait_agents(1).await;
    let app = json!({"id": "/mtls", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 1, "cpus": 0.1, "mem": 32});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    c.wait_running("mtls", 1).await;
    // The joined agent is agent 2: the others never registered.
    assert!(c
        .read_log("agent2.log")
        .contains("registered with the master"));
    for log in ["agent0.log", "agent1.log"] {
        assert!(
            !c.read_log(log).contains("registered with the master"),
            "{log}"
        );
    }
    let s = c.get("/master/slaves").await;
    assert_eq!(s["slaves"].as_array().map(Vec::len), Some(1), "{s}");
    // API clients need no certificate: this cluster's client has none.
    let ping = c.get("/v2/apps").await;
    assert!(ping["apps"].is_array(), "{ping}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_an_https_master_with_its_ca_file() {
    let ca = TestCa::new("Gantry test CA");
    let (c, ca_file) = tls_cluster(&ca, &[]);
    c.wait_agents(0).await;
    let gantry = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--master")
            .arg(c.url())
            .args(["--credentials", support::CREDENTIALS])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run gantry");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, out) = gantry(
        &[
            "--ca-file",
            path(&ca_file),
            "apps",
            "run",
            "/viacli",
            "--cmd",
            "sleep 3600",
        ],
        &[],
    );
    assert!(ok, "{out}");
    assert!(out.contains("created /viacli"), "{out}");
    let ca_env = [("GANTRY_CA_FILE", path(&ca_file))];
    let (ok, out) = gantry(&["apps", "list"], &ca_env);
    assert!(ok && out.contains("/viacli"), "{out}");

    let (ok, out) = gantry(&["apps", "list"], &[]);
    assert!(!ok, "the public roots do not hold the test CA: {out}");
    assert!(out.contains("certificate"), "{out}");
    let other = TestCa::new("Some other CA").write(c.dir.path(), "other-ca");
    let (ok, out) = gantry(&["--ca-file", path(&other), "agents", "list"], &[]);
    assert!(!ok && out.contains("UnknownIssuer"), "{out}");
    let missing = c.dir.path().join("missing-ca.pem");
    let (ok, out) = gantry(&["--ca-file", path(&missing), "agents", "list"], &[]);
    assert!(!ok && out.contains("missing-ca.pem"), "{out}");
}

#[test]
fn bad_tls_files_stop_the_daemons_with_the_file_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("Gantry test CA");
    let (cert, _key) = ca.server_cert(dir.path(), "master");
    let (_, other_key) = ca.server_cert(dir.path(), "another");
    let master = |cert: &Path, key: &Path| {
        let mut cmd = Command::new(support::bin("gantry-masterd"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--token")
            .arg("t")
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key);
        cmd
    };
    let out = exits_with(master(&cert, &other_key));
    assert!(
        out.contains("does not belong") && out.contains(path(&other_key)),
        "{out}"
    );
    let missing = dir.path().join("nope.pem");
    let out = exits_with(master(&missing, &other_key));
    assert!(
        out.contains("--tls-cert-file") && out.contains(path(&missing)),
        "{out}"
    );

    let mut agent = Command::new(support::bin("gantry-agentd"));
    agent
        .args(["--master", "https://127.0.0.1:1", "--token", "t"])
        .arg("--work-dir")
        .arg(dir.path().join("agent"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(["--containerizer", "process"])
        .arg("--master-ca-file")
        .arg(cert.with_extension("missing"));
    let out = exits_with(agent);
    assert!(
        out.contains("--master-ca-file") && out.contains("missing"),
        "{out}"
    );
}
