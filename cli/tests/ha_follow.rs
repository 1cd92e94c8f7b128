//! Agents, the CLI and pymesos find the leading master and follow it: a real ZooKeeper ensemble,
//! two ordinary masters A and B (each on its own SQLite), and the test itself writing the
//! masters' `json.info_` znodes (Mesos's layout) with A's and B's `MasterInfo`; and masters
//! given as a list, with a dead one and a standby's redirect.

mod support;

use gantry_daemon::masters::MasterInfo;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::zookeeper::Ensemble;
use support::{eventually, Cluster, CREDENTIALS};
use zookeeper_client as zk;

const PATH: &str = "/gantry";

/// A master's `MasterInfo` as the HA master writes it.
fn info_of(id: &str, c: &Cluster) -> Vec<u8> {
    let m = MasterInfo::new(
        id,
        "127.0.0.1",
        Ipv4Addr::LOCALHOST,
        c.port,
        "1.11.0",
        false,
    );
    serde_json::to_vec(&m).expect("MasterInfo is JSON")
}

/// A session with the ensemble, and the masters' path created.
async fn zk_client(ensemble: &Ensemble) -> zk::Client {
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(&ensemble.connect_string())
        .await
        .expect("the test reaches ZooKeeper");
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match client.create(PATH, b"", &opts).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => panic!("creating {PATH}: {e}"),
    }
    client
}

/// Writes a master's znode (persistent sequential, so that it outlives this test's session);
/// returns its path.
async fn announce(client: &zk::Client, data: &[u8]) -> String {
    let opts = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, seq) = client
        .create(&format!("{PATH}/json.info_"), data, &opts)
        .await
        .expect("create the master's znode");
    format!("{PATH}/json.info_{:010}", seq.into_i64())
}

/// How many agents `c`'s master lists as connected.
async fn connected(c: &Cluster) -> Option<usize> {
    let s = c.try_get("/master/slaves").await?;
    Some(
        s["slaves"]
            .as_array()?
            .iter()
            .filter(|a| a["connected"] == true)
            .count(),
    )
}

/// Waits until `c`'s master lists `n` connected agents; on a timeout, shows `logs`'s logs too
/// (the cluster that started the agent).
async fn wait_connected(c: &Cluster, n: usize, what: &str, logs: &Cluster) {
    let mut last = None;
    let start = std::time::Instant::now();
    loop {
        last = connected(c).await.or(last);
        if last == Some(n) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what} (connected now: {last:?})\n{}\n{}",
            c.log_tails(15),
            logs.log_tails(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_follows_the_zookeeper_leader_and_keeps_its_tasks_while_zookeeper_is_down() {
    let mut ensemble = Ensemble::start(3);
    let a = Cluster::new();
    let mut b = Cluster::unstarted();
    // The agent is away from B for a while during the ZooKeeper outage: B must not give it up.
    b.tolerate_missed_heartbeats(2000);
    // One cluster: both masters take the same join token.
    b.token = a.token.clone();
    b.start_master();
    let client = zk_client(&ensemble).await;
    let a_node = announce(&client, &info_of("a", &a)).await;
    announce(&client, &info_of("b", &b)).await;

    b.set_agent_master(&ensemble.url(PATH));
    b.start_agent(0, "cpus:2;mem:512;disk:512;ports:[31000-31010]");
    wait_connected(&a, 1, "the agent registered with A (lowest znode)", &b).await;
    assert_eq!(connected(&b).await, Some(0), "B is not the leader");

    // A's znode goes: B leads.
    let t = std::time::Instant::now();
    client
        .delete(&a_node, None)
        .await
        .expect("delete A's znode");
    wait_connected(
        &b,
        1,
        "the agent registered with B after A's znode went",
        &b,
    )
    .await;
    eprintln!(
        "measured: A's znode deleted -> agent registered with B in {:?}",
        t.elapsed()
    );
    wait_connected(&a, 0, "the agent left A", &b).await;

    // A task on B.
    let app = json!({"id": "/ha-sleeper", "cmd": b.sleeper_cmd(), "cpus": 0.1, "mem": 16,
                     "instances": 1, "env": b.marker_env()});
    let (status, body) = b.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let task = b.wait_running("/ha-sleeper", 1).await[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pid_file = b.sandbox(0, &task).join("pid");
    let pid: i32 = eventually(Duration::from_secs(30), "the task's pid file", || async {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;

    // ZooKeeper entirely down: once its session is gone the agent knows no leader and leaves B,
    // but its task runs on.
    drop(client);
    ensemble.kill_all();
    let t = std::time::Instant::now();
    wait_connected(&b, 0, "the agent to leave B once no leader is known", &b).await;
    eprintln!(
        "measured: ZooKeeper down -> agent left B in {:?}",
        t.elapsed()
    );
    assert!(
        alive(pid),
        "the task kept running while no leader was known"
    );
    b.wait_log("agent0.log", "no leading master known", 1).await;

    // ZooKeeper back: the agent reads B's znode again and re-registers, with its task.
    ensemble.restart_all();
    let t = std::time::Instant::now();
    wait_connected(
        &b,
        1,
        "the agent registered with B again after ZooKeeper came back",
        &b,
    )
    .await;
    eprintln!(
        "measured: ZooKeeper serving again -> agent registered with B in {:?}",
        t.elapsed()
    );
    assert!(alive(pid), "the task still runs");
    let tasks = b.wait_running("/ha-sleeper", 1).await;
    assert_eq!(
        tasks[0]["id"],
        task.as_str(),
        "the same task, not a replacement"
    );
}

/// One line a Python process prints, within `timeout`.
fn next_line(rx: &std::sync::mpsc::Receiver<String>, timeout: Duration, what: &str) -> String {
    rx.recv_timeout(timeout)
        .unwrap_or_else(|e| panic!("no line from pymesos's detector ({what}): {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_pymesos_read_the_leader_from_zookeeper() {
    let ensemble = Ensemble::start(1);
    let a = Cluster::new();
    let b = Cluster::new();
    a.wait_agents(0).await;
    b.wait_agents(0).await;
    // No instances: only the apps themselves (and their service ports, for `gantry lb`) matter.
    let (pa, pb) = (support::free_port(), support::free_port());
    let app = |id: &str, port: u16| {
        json!({"id": id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 0,
               "labels": {"HAPROXY_GROUP": "external"},
               "portDefinitions": [{"port": port, "protocol": "tcp", "name": "http"}]})
    };
    let (status, body) = a.post("/v2/apps", &app("/only-on-a", pa).to_string()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = b.post("/v2/apps", &app("/only-on-b", pb).to_string()).await;
    assert_eq!(status, 201, "{body}");
    let client = zk_client(&ensemble).await;
    // Another child of the path that the detectors must ignore (Mesos's replicated log has one).
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .create(&format!("{PATH}/log_replicas"), b"", &opts)
        .await
        .expect("log_replicas");
    let a_node = announce(&client, &info_of("a", &a)).await;
    announce(&client, &info_of("b", &b)).await;

    let apps = |master: String| {
        let out = std::process::Command::new(support::bin("gantry"))
            .args([
                "--master",
                &master,
                "--credentials",
                CREDENTIALS,
                "apps",
                "list",
            ])
            .output()
            .expect("run gantry");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "gantry apps list: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let listed = apps(ensemble.url(PATH));
    assert!(
        listed.contains("/only-on-a") && !listed.contains("/only-on-b"),
        "{listed}"
    );
    // `gantry lb` serves the leader's apps.
    let out = std::process::Command::new(support::bin("gantry"))
        .args([
            "--master",
            &ensemble.url(PATH),
            "--credentials",
            CREDENTIALS,
        ])
        .args(["lb", "--dry-run", "--bind-address", "127.0.0.1"])
        .output()
        .expect("gantry lb --dry-run");
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{config}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        config.contains(&format!("bind 127.0.0.1:{pa}")) && !config.contains(&format!(":{pb}")),
        "{config}"
    );
    // A list with a dead master first: the first that answers.
    let dead = support::free_port();
    let listed = apps(format!("http://127.0.0.1:{dead},{}", b.url()));
    assert!(listed.contains("/only-on-b"), "{listed}");

    // pymesos's own detector (what its scheduler driver runs for a zk:// master).
    let script = r#"
import json, sys, time
from pymesos.detector import MasterDetector

class Agent:
    def onNewMasterDetectedMessage(self, data):
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        a = json.loads(data)["address"]
        print("%s:%s" % (a["ip"], a["port"]), flush=True)
    def onNoMasterDetectedMessage(self):
        print("none", flush=True)

uri = sys.argv[1]
d = MasterDetector(uri[uri.index("://") + 3:], Agent())
d.start()
sys.stdin.read()
d.stop()
"#;
    let mut py = std::process::Command::new(support::python())
        .args(["-c", script, &ensemble.url(PATH)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = py.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = next_line(&rx, Duration::from_secs(60), "the first leader");
    assert_eq!(first, format!("127.0.0.1:{}", a.port));
    client
        .delete(&a_node, None)
        .await
        .expect("delete A's znode");
    let second = next_line(
        &rx,
        Duration::from_secs(60),
        "the leader after A's znode went",
    );
    assert_eq!(second, format!("127.0.0.1:{}", b.port));
    let listed = apps(ensemble.url(PATH));
    assert!(listed.contains("/only-on-b"), "{listed}");
    drop(py.stdin.take());
    let _ = py.kill();
    let mut err = String::new();
    if let Some(mut e) = py.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = py.wait();
    assert!(!err.contains("Traceback"), "{err}");
}

/// A stand-in for a standby master: answers `/agent/v1/connect` with 503 (no leader known yet)
/// `unavailable` times, then with `307 Location: <leader>/agent/v1/connect`; `/master/redirect`
/// with `307 Location: <leader>/master/redirect`. Counts requests.
fn standby(leader: String, unavailable: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = if got.starts_with(b"GET /master/redirect") {
                format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {leader}/master/redirect\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            } else if !got.starts_with(b"GET /agent/v1/connect") {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
            } else if n < unavailable {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 14\r\nconnection: close\r\n\r\nno leader yet\n".to_string()
            } else {
                format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {leader}/agent/v1/connect\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            };
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_given_a_list_skip_a_dead_master_and_follow_a_standbys_redirect() {
    let mut a = Cluster::new();
    let mut b = Cluster::new();
    let dead = support::free_port();
    b.set_agent_master(&format!("http://127.0.0.1:{dead},{}", b.url()));
    b.start_agent(0, "cpus:1;mem:256;disk:256");
    wait_connected(
        &b,
        1,
        "the agent registered with B past the dead master",
        &b,
    )
    .await;

    let (port, hits) = standby(a.url(), 2);
    a.set_agent_master(&format!("http://127.0.0.1:{port}"));
    a.start_agent(0, "cpus:1;mem:256;disk:256");
    wait_connected(
        &a,
        1,
        "the agent registered with A through the standby's redirect",
        &a,
    )
    .await;
    assert!(
        hits.load(Ordering::SeqCst) >= 3,
        "the agent asked the standby again after its 503s"
    );
    assert_eq!(connected(&b).await, Some(1), "B keeps its own agent");
    a.wait_log("agent0.log", "a standby named the leading master", 1)
        .await;

    // The CLI given the standby first in a list asks it where the leader is.
    let app =
        json!({"id": "/listed-on-a", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 0});
    let (status, body) = a.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let out = std::process::Command::new(support::bin("gantry"))
        .args(["--master", &format!("http://127.0.0.1:{port},{}", b.url())])
        .args(["--credentials", CREDENTIALS, "apps", "list"])
        .output()
        .expect("run gantry");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains("/listed-on-a"),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in leader that registers agents and records their status updates but acknowledges
/// none: `(port, [(task id, state)])`.
async fn forgetful_leader() -> (u16, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use futures_util::{SinkExt, StreamExt};
    use gantry_proto::{AgentMessage, MasterMessage};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    match AgentMessage::decode(&t) {
                        Ok(AgentMessage::Register { agent_id, .. }) => {
                            let reply = MasterMessage::Registered {
                                agent_id: agent_id.unwrap_or_else(|| {
                                    gantry_proto::AgentId("forgetful-S0".into())
                                }),
                                heartbeat_interval_ms: 250,
                            };
                            let _ = ws.send(Message::text(reply.encode())).await;
                        }
                        Ok(AgentMessage::StatusUpdate(up)) => {
                            record.lock().expect("lock").push((
                                up.status.task_id.0.clone(),
                                up.status.state.name().to_owned(),
                            ));
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_the_old_leader_never_acknowledged_reaches_the_new_one() {
    let ensemble = Ensemble::start(1);
    let mut b = Cluster::unstarted();
    b.tolerate_missed_heartbeats(2000);
    b.start_master();
    let client = zk_client(&ensemble).await;
    let b_node = announce(&client, &info_of("b", &b)).await;
    b.set_agent_master(&ensemble.url(PATH));
    b.start_agent(0, "cpus:1;mem:256;disk:256");
    wait_connected(&b, 1, "the agent registered with B", &b).await;
    let app = json!({"id": "/ha-finisher", "cmd": b.sleeper_cmd(), "cpus": 0.1, "mem": 16,
                     "instances": 1, "env": b.marker_env()});
    let (status, body) = b.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let task = b.wait_running("/ha-finisher", 1).await[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // A new leader F that forgets: the agent moves to it, the task finishes there.
    let (f_port, seen) = forgetful_leader().await;
    let f = MasterInfo::new(
        "f",
        "127.0.0.1",
        Ipv4Addr::LOCALHOST,
        f_port,
        "1.11.0",
        false,
    );
    let f_node = announce(&client, &serde_json::to_vec(&f).expect("json")).await;
    client
        .delete(&b_node, None)
        .await
        .expect("delete B's znode");
    wait_connected(&b, 0, "the agent left B for F", &b).await;
    std::fs::write(b.sandbox(0, &task).join("exit"), "0").expect("end the task");
    eventually(
        Duration::from_secs(60),
        "F to receive the task's TASK_FINISHED",
        || async {
            let seen = seen.lock().expect("lock").clone();
            seen.contains(&(task.clone(), "TASK_FINISHED".to_owned()))
                .then_some(())
        },
    )
    .await;

    // B leads again (its new znode is after F's, and F's goes): the unacknowledged update
    // reaches B.
    announce(&client, &info_of("b", &b)).await;
    client
        .delete(&f_node, None)
        .await
        .expect("delete F's znode");
    wait_connected(&b, 1, "the agent back on B", &b).await;
    eventually(
        Duration::from_secs(60),
        "B to know the task finished",
        || async {
            let st = b.get("/master/state").await;
            st["frameworks"]
                .as_array()?
                .iter()
                .flat_map(|f| f["completed_tasks"].as_array().cloned().unwrap_or_default())
                .any(|t| t["id"] == task.as_str() && t["state"] == "TASK_FINISHED")
                .then_some(())
        },
    )
    .await;
    b.wait_log("agent0.log", "the leading master changed", 2)
        .await;
}
