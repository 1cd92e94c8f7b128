//! Marathon's event stream (`GET /v2/events`) against a real cluster: frames as Jetty writes them
//! (CRLF, `event:` and `data:`) with an `id:` on each; `event_stream_attached` first; an app's
//! life as events (`api_post_event`, `deployment_info`, `status_update_event` for each task,
//! `deployment_step_success`, `deployment_success`, `app_terminated_event`); `event_type`
//! filters; 405 without `Accept: text/event-stream`; a reader that reconnects with
//! `Last-Event-ID` misses nothing, also across a master `kill -9`; a reader that falls behind is
//! told why and disconnected, and resumes from where it was with nothing lost. The legacy
//! `/v2/eventSubscriptions` callbacks: events POSTed to a subscribed URL, the subscription kept
//! across a master restart, nothing sent after unsubscribing.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One SSE frame.
#[derive(Debug, Clone)]
struct Frame {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// A `/v2/events` response, read frame by frame.
struct Stream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    ended: bool,
}

impl Stream {
    async fn open(c: &Cluster, query: &str, last_event_id: Option<u64>) -> Stream {
        let mut req = c
            .request(Method::GET, &format!("/v2/events{query}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.expect("the event stream answers");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap_or_default(),
            "text/event-stream"
        );
        Stream {
            resp,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// The next frame (keep-alive comments skipped), or `None` once the stream ended.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                let text = String::from_utf8(raw).expect("frames are UTF-8");
                let text = &text[..text.len() - 4];
                assert!(
                    !text.replace("\r\n", "").contains('\n'),
                    "every line ends in CRLF: {text:?}"
                );
                let mut frame = Frame {
                    id: None,
                    event: String::new(),
                    data: Value::Null,
                };
                let mut comment = true;
                for line in text.split("\r\n") {
                    if let Some(v) = line.strip_prefix("id: ") {
                        frame.id = Some(v.parse().expect("numeric ids"));
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        frame.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(v).expect("one line of JSON");
                    } else {
                        assert!(line.starts_with(':'), "an unknown line {line:?}");
                        continue;
                    }
                    comment = false;
                }
                if comment {
                    continue;
                }
                assert_eq!(frame.data["eventType"], frame.event.as_str(), "{frame:?}");
                assert!(frame.data["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.ends_with('Z')));
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(Duration::from_secs(60), self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
                Err(_) => panic!(
                    "no frame for 60 s; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Frames until one satisfies `stop` (included); panics if the stream ends first.
    async fn until(&mut self, what: &str, stop: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            let f = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before {what}; saw {out:#?}"));
            let done = stop(&f);
            out.push(f);
            if done {
                return out;
            }
        }
    }
}

/// Numbered frames' ids are consecutive (a reader without filters sees every event).
fn assert_consecutive(frames: &[Frame], after: u64) {
    let ids: Vec<u64> = frames.iter().filter_map(|f| f.id).collect();
    let want: Vec<u64> = (after + 1..after + 1 + ids.len() as u64).collect();
    assert_eq!(ids, want, "ids without a gap after {after}");
}

fn app(c: &Cluster, id: &str, instances: u32) -> Value {
    json!({"id": id, "cmd": c.sleeper_cmd(), "cpus": 0.1, "mem": 32,
           "instances": instances, "env": c.marker_env()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_life_is_in_the_stream_and_a_reconnect_misses_nothing() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:100;ports:[31000-31099]");
    c.wait_agents(1).await;

    let plain = c
        .request(Method::GET, "/v2/events")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        plain.status(),
        405,
        "Marathon answers 405 without the SSE Accept"
    );
    let body: Value = plain.json().await.expect("a JSON body");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("text/event-stream"));
    let bad = c
        .request(Method::GET, "/v2/events")
        .header("accept", "text/event-stream")
        .header("last-event-id", "yesterday")
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), 400);

    let mut all = Stream::open(&c, "", None).await;
    let first = all.next().await.expect("a first frame");
    assert_eq!(first.event, "event_stream_attached");
    assert_eq!(first.data["remoteAddress"], "127.0.0.1");
    let start = first.id.expect("numbered") - 1;
    let mut only = Stream::open(
        &c,
        "?event_type=status_update_event&event_type=deployment_success&plan-format=light",
        None,
    )
    .await;

    let (status, created) = c.post("/v2/apps", &app(&c, "/ev", 2).to_string()).await;
    assert_eq!(status, 201, "{created}");
    let deployment = created["deployments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let frames = all
        .until("the deployment's success", |f| {
            f.event == "deployment_success" && f.data["id"] == deployment.as_str()
        })
        .await;
    assert_consecutive(&frames, start + 1);
    let pos = |what: &str, f: &dyn Fn(&Frame) -> bool| {
        frames
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("no {what} in {frames:#?}"))
    };
    let post = &frames[pos("api_post_event", &|f| f.event == "api_post_event")];
    assert_eq!(post.data["appDefinition"]["id"], "/ev");
    assert_eq!(post.data["appDefinition"]["instances"], 2);
    assert_eq!(post.data["uri"], "/v2/apps");
    assert_eq!(post.data["clientIp"], "127.0.0.1");
    let info = pos("deployment_info", &|f| f.event == "deployment_info");
    let plan = &frames[info].data["plan"];
    assert_eq!(plan["id"], deployment.as_str());
    assert_eq!(
        plan["target"]["apps"][0]["id"], "/ev",
        "the heavy plan: {plan}"
    );
    assert!(plan["original"]["apps"]
        .as_array()
        .is_some_and(Vec::is_empty));
    let running: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.event == "status_update_event" && f.data["taskStatus"] == "TASK_RUNNING")
        .collect();
    assert_eq!(
        running.len(),
        2,
        "both tasks ran before the deployment ended: {frames:#?}"
    );
    for r in &running {
        assert_eq!(r.data["appId"], "/ev");
        assert_eq!(r.data["host"], "127.0.0.1");
        assert_eq!(r.data["ipAddresses"][0]["protocol"], "IPv4");
        assert_eq!(r.data["ports"].as_array().map(Vec::len), Some(1));
        assert!(r.data["slaveId"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(r.data["version"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert!(frames.iter().any(|f| f.event == "deployment_step_success"));

    // The filtered reader saw only what it asked for, with the light plan.
    let filtered = only
        .until("the filtered deployment success", |f| {
            f.event == "deployment_success"
        })
        .await;
    assert!(filtered
        .iter()
        .all(|f| f.event == "status_update_event" || f.event == "deployment_success"));
    assert!(filtered.windows(2).all(|w| w[0].id < w[1].id));
    let last = filtered.last().expect("a frame");
    assert!(
        last.data["plan"].get("original").is_none(),
        "plan-format=light"
    );
    drop(only);

    // Away: a scale happens, the master is killed and restarted, the app is deleted.
    let seen = frames.last().and_then(|f| f.id).expect("numbered");
    drop(all);
    let r = c
        .request(Method::PUT, "/v2/apps/ev")
        .json(&json!({"instances": 1}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200);
    support::eventually(Duration::from_secs(30), "one task of /ev", || async {
        (c.tasks("/ev").await.len() == 1).then_some(())
    })
    .await;
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    let r = c
        .request(Method::DELETE, "/v2/apps/ev")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);

    let mut again = Stream::open(&c, "", Some(seen)).await;
    let missed = again
        .until("the app's end", |f| f.event == "app_terminated_event")
        .await;
    assert_consecutive(&missed, seen);
    let has = |event: &str, f: &dyn Fn(&Value) -> bool| {
        missed.iter().any(|m| m.event == event && f(&m.data))
    };
    assert!(
        has("api_post_event", &|d| d["appDefinition"]["instances"] == 1),
        "{missed:#?}"
    );
    assert!(
        has("status_update_event", &|d| d["taskStatus"] == "TASK_KILLED"),
        "{missed:#?}"
    );
    assert!(has("event_stream_detached", &|d| d["remoteAddress"]
        == "127.0.0.1"));
    assert!(has("app_terminated_event", &|d| d["appId"] == "/ev"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_is_told_and_resumes_without_a_loss() {
    let c = Cluster::with_master_flags(&["--event-stream-max-outstanding", "32"]);
    c.wait_agents(0).await;
    let mut slow = Stream::open(&c, "", None).await;
    let first = slow.next().await.expect("the attached event");
    let start = first.id.expect("numbered");

    // ~15 MB of events while the reader reads nothing: far more than the sockets hold.
    let pad = "x".repeat(10_000);
    let rounds = 10;
    let per = 150;
    for r in 0..rounds {
        let apps: Vec<Value> = (0..per)
            .map(|i| {
                json!({"id": format!("/lag/r{r}-{i}"), "cmd": "sleep 1", "instances": 0,
                       "cpus": 0.01, "mem": 8, "portDefinitions": [], "labels": {"pad": pad}})
            })
            .collect();
        let resp = c
            .request(Method::PUT, "/v2/apps")
            .json(&apps)
            .send()
            .await
            .expect("PUT /v2/apps");
        assert_eq!(
            resp.status(),
            200,
            "{}",
            resp.text().await.unwrap_or_default()
        );
    }
    let newest = format!("/lag/r{}-{}", rounds - 1, per - 1);

    // Now it reads: what was sent, then a last frame saying why, then the end.
    let mut got = Vec::new();
    while let Some(f) = slow.next().await {
        got.push(f);
    }
    let last = got.last().expect("frames");
    assert_eq!(last.event, "event_stream_detached", "{last:?}");
    assert!(last.id.is_none(), "the notice does not move Last-Event-ID");
    let reason = last.data["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("more than 32 events behind"), "{reason}");
    let sent = &got[..got.len() - 1];
    assert_consecutive(sent, start);
    let resume = sent.last().and_then(|f| f.id).unwrap_or(start);
    assert!(
        !sent
            .iter()
            .any(|f| f.data["appDefinition"]["id"] == newest.as_str()),
        "the reader was cut off before the end of the burst"
    );

    // Resuming from the last id it got: every later event, in order, up to the newest app.
    let mut again = Stream::open(&c, "", Some(resume)).await;
    let rest = again
        .until("the newest app's api_post_event", |f| {
            f.event == "api_post_event" && f.data["appDefinition"]["id"] == newest.as_str()
        })
        .await;
    assert_consecutive(&rest, resume);
    let posts = sent
        .iter()
        .chain(&rest)
        .filter(|f| f.event == "api_post_event")
        .count();
    assert_eq!(posts, rounds * per, "every app's api_post_event, once");
}

/// A callback receiver: an HTTP/1.1 server on loopback keeping every JSON body POSTed to it.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/callback", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            keep.lock().expect("lock").push(v);
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if sock.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, got }
    }

    fn has(&self, f: impl Fn(&Value) -> bool) -> bool {
        self.got.lock().expect("lock").iter().any(f)
    }

    async fn wait(&self, what: &str, f: impl Fn(&Value) -> bool) {
        support::eventually(Duration::from_secs(30), what, || async {
            self.has(&f).then_some(())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_get_every_event_and_survive_a_restart() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:100;ports:[31100-31199]");
    c.wait_agents(1).await;
    let rx = Receiver::start().await;
    let path = format!("/v2/eventSubscriptions?callbackUrl={}", rx.url);

    let bad = c
        .request(
            Method::POST,
            "/v2/eventSubscriptions?callbackUrl=file:///etc/passwd",
        )
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), 400);
    let r = c
        .request(Method::POST, &path)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("JSON");
    assert_eq!(answer["eventType"], "subscribe_event");
    assert_eq!(answer["callbackUrl"], rx.url.as_str());
    assert_eq!(
        c.get("/v2/eventSubscriptions").await["callbackUrls"],
        json!([rx.url])
    );
    rx.wait("its own subscribe_event", |e| {
        e["eventType"] == "subscribe_event"
    })
    .await;

    let (status, _) = c.post("/v2/apps", &app(&c, "/cb", 1).to_string()).await;
    assert_eq!(status, 201);
    rx.wait("the app's api_post_event", |e| {
        e["eventType"] == "api_post_event" && e["appDefinition"]["id"] == "/cb"
    })
    .await;
    rx.wait("its task running", |e| {
        e["eventType"] == "status_update_event" && e["taskStatus"] == "TASK_RUNNING"
    })
    .await;

    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    assert_eq!(
        c.get("/v2/eventSubscriptions").await["callbackUrls"],
        json!([rx.url]),
        "the subscription is stored"
    );
    let r = c
        .request(Method::DELETE, "/v2/apps/cb")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    rx.wait("the app's end after the restart", |e| {
        e["eventType"] == "app_terminated_event" && e["appId"] == "/cb"
    })
    .await;

    let r = c
        .request(Method::DELETE, &path)
        .send()
        .await
        .expect("unsubscribe");
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get("/v2/eventSubscriptions").await["callbackUrls"],
        json!([])
    );
    let before = rx.got.lock().expect("lock").len();
    let (status, _) = c.post("/v2/apps", &app(&c, "/after", 0).to_string()).await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rx.got.lock().expect("lock").len(),
        before,
        "nothing sent after unsubscribing"
    );
}
