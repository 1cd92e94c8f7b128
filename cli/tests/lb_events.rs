//! `gantry lb` following a master's `/v2/events` stream (the endpoint is being written on another
//! branch; this test stands in a small fake master speaking Marathon's SSE format): with polling
//! and resync both set to an hour, a relevant event alone makes it refetch the apps and serve
//! the new task, and it asks for marathon-lb's event types.

mod lb;
mod support;

use lb::{client, wait_answers, Lb};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually, free_port, Cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// What the fake master serves and saw.
struct Fake {
    apps: Mutex<Value>,
    events: broadcast::Sender<String>,
    /// Request lines of every `/v2/events` subscription.
    subscriptions: Mutex<Vec<String>>,
}

async fn handle(mut conn: TcpStream, fake: Arc<Fake>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_string();
    if line.starts_with("GET /v2/events") {
        if !head
            .to_ascii_lowercase()
            .contains("accept: text/event-stream")
        {
            return conn
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
        fake.subscriptions.lock().expect("lock").push(line);
        let mut rx = fake.events.subscribe();
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n")
            .await?;
        loop {
            let frame = match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                Ok(Ok(f)) => f,
                Ok(Err(_)) => return Ok(()),
                Err(_) => ":\r\n\r\n".to_string(),
            };
            conn.write_all(frame.as_bytes()).await?;
        }
    }
    let body = if line.starts_with("GET /v2/apps") {
        fake.apps.lock().expect("lock").to_string()
    } else {
        return conn
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
    };
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(answer.as_bytes()).await
}

/// A server of `www/id` = `id` on a free port: (its process, the port).
fn id_server(dir: &std::path::Path, id: &str) -> (std::process::Child, u16) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("id"), id).expect("id file");
    let port = free_port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&www)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    (child, port)
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_makes_the_lb_refetch_and_serve_the_new_task() {
    let c = Cluster::unstarted();
    let (tx, _) = broadcast::channel(16);
    let fake = Arc::new(Fake {
        apps: Mutex::new(json!({"apps": []})),
        events: tx,
        subscriptions: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = fake.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(conn, serving.clone()));
        }
    });
    let lb = Lb::start(
        &c,
        "ev",
        &[url],
        &["--poll-secs", "3600", "--resync-secs", "3600"],
    );
    eventually(
        Duration::from_secs(30),
        "the lb on the event stream",
        || async { (lb.status()["eventDriven"] == true).then_some(()) },
    )
    .await;
    let sub = fake.subscriptions.lock().expect("lock")[0].clone();
    for want in [
        "plan-format=light",
        "event_type=status_update_event",
        "event_type=api_post_event",
        "event_type=health_status_changed_event",
    ] {
        assert!(sub.contains(want), "{sub}");
    }

    // A task appears; only an event can tell the lb (polling and resync are an hour away).
    let (server, port) = id_server(c.dir.path(), "task-1");
    let _server = Killed(server);
    let service_port = free_port();
    *fake.apps.lock().expect("lock") = json!({"apps": [{
        "id": "/web", "labels": {"HAPROXY_GROUP": "external"}, "instances": 1,
        "portDefinitions": [{"port": service_port}], "healthChecks": [],
        "tasks": [{"id": "task-1", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [port]}]}]});
    let frame = "id: 7\r\nevent: status_update_event\r\ndata: {\"eventType\":\"status_update_event\",\"taskStatus\":\"TASK_RUNNING\"}\r\n\r\n";
    let _ = fake.events.send(frame.to_string());
    let http = client();
    wait_answers(&lb, &http, service_port, None, &["task-1".to_string()]).await;
    assert_eq!(lb.status()["eventDriven"], true, "{}", lb.debug());
}
