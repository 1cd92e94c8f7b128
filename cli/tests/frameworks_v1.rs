//! External frameworks through the Mesos v1 scheduler API (`/api/v1/scheduler`, JSON) on a real
//! cluster (issue 11), over raw HTTP: SUBSCRIBE's RecordIO framing, DECLINE, KILL, ACKNOWLEDGE,
//! RECONCILE, offers that hold their resources, GPU offers and tasks, roles and run_as, failover
//! timeouts, re-subscription after a master restart, and Mesos's answers to bad calls. The
//! unmodified pymesos framework is in `frameworks_pymesos.rs`.

mod support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use support::{eventually, Cluster, CREDENTIALS};

/// A SUBSCRIBE stream, read record by record.
struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Events {
    /// The next complete record, if the buffer holds one.
    fn take(&mut self) -> Option<Value> {
        let nl = self.buf.iter().position(|b| *b == b'\n')?;
        let len: usize = std::str::from_utf8(&self.buf[..nl])
            .expect("a RecordIO length is ASCII")
            .parse()
            .expect("a RecordIO length is decimal");
        assert!(len > 0, "a RecordIO record is never empty");
        if self.buf.len() < nl + 1 + len {
            return None;
        }
        let rec: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
        Some(serde_json::from_slice(&rec).expect("each record is one JSON event"))
    }

    /// The next event (HEARTBEATs included).
    async fn next(&mut self) -> Value {
        loop {
            if let Some(v) = self.take() {
                return v;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("an event within 30 s")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next event of type `ty`, skipping others.
    async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["type"] == ty {
                return e;
            }
        }
    }

    /// The next UPDATE of task `task` (skipping others).
    async fn update_of(&mut self, task: &str) -> Value {
        loop {
            let e = self.next_of("UPDATE").await;
            if e["update"]["status"]["task_id"]["value"] == task {
                return e["update"]["status"].clone();
            }
        }
    }
}

/// A framework subscribed over raw HTTP.
struct Framework {
    id: String,
    stream_id: String,
    events: Events,
    /// HTTP Basic credentials of its calls.
    auth: (String, String),
}

fn test_credentials() -> (String, String) {
    let (u, p) = CREDENTIALS.split_once(':').expect("credentials");
    (u.to_owned(), p.to_owned())
}

/// SUBSCRIBE with the test's admin credentials.
async fn subscribe(c: &Cluster, info: Value) -> Framework {
    subscribe_as(c, info, test_credentials()).await
}

/// Sends a SUBSCRIBE as `auth`; returns the open answer.
async fn subscribe_raw(c: &Cluster, info: &Value, auth: &(String, String)) -> reqwest::Response {
    let mut call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
    if let Some(id) = info.get("id") {
        call["framework_id"] = id.clone();
    }
    reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", c.url()))
        .basic_auth(&auth.0, Some(&auth.1))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(call.to_string())
        .send()
        .await
        .expect("SUBSCRIBE reaches the master")
}

/// SUBSCRIBE as `auth`, checked up to its SUBSCRIBED event.
async fn subscribe_as(c: &Cluster, info: Value, auth: (String, String)) -> Framework {
    let resp = subscribe_raw(c, &info, &auth).await;
    assert_eq!(resp.status(), 200, "SUBSCRIBE answers 200");
    assert_eq!(
        resp.headers()
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("chunked"),
        "the stream is chunked"
    );
    assert!(resp.headers().get("content-length").is_none());
    let stream_id = resp
        .headers()
        .get("mesos-stream-id")
        .and_then(|v| v.to_str().ok())
        .expect("a Mesos-Stream-Id header")
        .to_owned();
    assert!(!stream_id.is_empty() && stream_id.len() <= 128);
    let mut events = Events {
        resp,
        buf: Vec::new(),
    };
    let first = events.next().await;
    assert_eq!(first["type"], "SUBSCRIBED", "the first event: {first}");
    assert_eq!(first["subscribed"]["heartbeat_interval_seconds"], 15.0);
    assert_eq!(first["subscribed"]["master_info"]["version"], "1.11.0");
    let id = first["subscribed"]["framework_id"]["value"]
        .as_str()
        .expect("a framework id")
        .to_owned();
    Framework {
        id,
        stream_id,
        events,
        auth,
    }
}

/// POSTs a call with a stream id; returns the status and body.
async fn call(c: &Cluster, stream_id: &str, body: Value) -> (u16, String) {
    call_as(c, &test_credentials(), stream_id, body).await
}

/// POSTs a call as `auth`.
async fn call_as(
    c: &Cluster,
    auth: &(String, String),
    stream_id: &str,
    body: Value,
) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", c.url()))
        .basic_auth(&auth.0, Some(&auth.1))
        .header("content-type", "application/json")
        .header("Mesos-Stream-Id", stream_id)
        .body(body.to_string())
        .send()
        .await
        .expect("a call reaches the master");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

impl Framework {
    async fn call(&self, c: &Cluster, kind: &str, payload: Option<(&str, Value)>) -> u16 {
        let mut body = json!({"framework_id": {"value": self.id}, "type": kind});
        if let Some((k, v)) = payload {
            body[k] = v;
        }
        let (status, text) = call_as(c, &self.auth, &self.stream_id, body).await;
        assert_eq!(status, 202, "{kind} answers 202: {text}");
        status
    }

    /// Acknowledges an update that has a uuid.
    async fn ack(&self, c: &Cluster, status: &Value) {
        if let Some(uuid) = status.get("uuid") {
            let ack =
                json!({"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": uuid});
            self.call(c, "ACKNOWLEDGE", Some(("acknowledge", ack)))
                .await;
        }
    }

    /// Waits for task `task` to reach `state`, acknowledging the updates before it (the next
    /// update of a task comes only after the one before it is acknowledged); the one in `state`
    /// is returned unacknowledged.
    async fn until_state(&mut self, c: &Cluster, task: &str, state: &str) -> Value {
        loop {
            let s = self.events.update_of(task).await;
            if s["state"] == state {
                return s;
            }
            assert!(
                !s["state"].as_str().is_some_and(|st| [
                    "TASK_FINISHED",
                    "TASK_FAILED",
                    "TASK_KILLED",
                    "TASK_ERROR",
                    "TASK_LOST"
                ]
                .contains(&st)),
                "{task} ended before {state}: {s}\n{}",
                c.log_tails(30)
            );
            self.ack(c, &s).await;
        }
    }

    /// The next offer (one agent's).
    async fn offer(&mut self) -> Value {
        let e = self.events.next_of("OFFERS").await;
        e["offers"]["offers"][0].clone()
    }
}

fn scalar(offer: &Value, name: &str) -> Option<f64> {
    offer["resources"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["scalar"]["value"].as_f64())
}

fn task(c: &Cluster, id: &str, agent: &Value, cmd: &str, cpus: f64) -> Value {
    json!({
        "name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": cmd, "environment": {"variables": [
            {"name": "GANTRY_TEST_MARKER", "value": c.marker}]}},
    })
}

fn launch(offer: &Value, tasks: Vec<Value>) -> (&'static str, Value) {
    (
        "accept",
        json!({"offer_ids": [offer["id"]],
               "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
               "filters": {"refuse_seconds": 1}}),
    )
}

fn info(name: &str) -> Value {
    json!({"user": "root", "name": name, "failover_timeout": 300})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_subscribe_offers_decline_launch_acknowledge_kill_and_reconcile() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let mut fw = subscribe(&c, info("raw")).await;
    let offer = fw.offer().await;
    assert_eq!(offer["framework_id"]["value"], fw.id);
    assert_eq!(scalar(&offer, "cpus"), Some(2.0));
    assert_eq!(scalar(&offer, "mem"), Some(1024.0));
    assert!(scalar(&offer, "gpus").is_none(), "no GPUs on this agent");
    let ports = offer["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "ports"))
        .expect("ports offered");
    assert_eq!(ports["ranges"]["range"][0]["begin"], 31000);

    // DECLINE with a short filter: the agent comes back in a later offer.
    fw.call(
        &c,
        "DECLINE",
        Some((
            "decline",
            json!({"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 1}}),
        )),
    )
    .await;
    let offer = fw.offer().await;
    assert_ne!(offer["id"], Value::Null);

    // LAUNCH a long task: UPDATE TASK_RUNNING with a uuid, acknowledged.
    let agent = offer["agent_id"].clone();
    let sleeper = c.sleeper_cmd();
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(
            &offer,
            vec![task(&c, "raw-1", &agent, &sleeper, 0.5)],
        )),
    )
    .await;
    let running = fw.until_state(&c, "raw-1", "TASK_RUNNING").await;
    assert_eq!(running["agent_id"], agent);
    let uuid = running["uuid"]
        .as_str()
        .expect("an agent's update has a uuid");
    fw.call(
        &c,
        "ACKNOWLEDGE",
        Some((
            "acknowledge",
            json!({"agent_id": agent, "task_id": {"value": "raw-1"}, "uuid": uuid}),
        )),
    )
    .await;
    let (s, body) = call(
        &c,
        &fw.stream_id,
        json!({"framework_id": {"value": fw.id}, "type": "ACKNOWLEDGE",
               "acknowledge": {"agent_id": agent, "task_id": {"value": "raw-1"}, "uuid": "%%%"}}),
    )
    .await;
    assert_eq!(s, 400, "a uuid that is not base64: {body}");

    // RECONCILE: explicit (a known and an unknown task), then implicit.
    fw.call(
        &c,
        "RECONCILE",
        Some((
            "reconcile",
            json!({"tasks": [{"task_id": {"value": "raw-1"}}, {"task_id": {"value": "nope"}}]}),
        )),
    )
    .await;
    let known = fw.events.update_of("raw-1").await;
    assert_eq!(known["state"], "TASK_RUNNING");
    assert_eq!(known["reason"], "REASON_RECONCILIATION");
    assert!(
        known.get("uuid").is_none(),
        "reconciliation answers carry no uuid"
    );
    let unknown = fw.events.update_of("nope").await;
    assert_eq!(unknown["state"], "TASK_LOST", "not partition-aware: LOST");
    assert_eq!(unknown["source"], "SOURCE_MASTER");
    fw.call(&c, "RECONCILE", Some(("reconcile", json!({"tasks": []}))))
        .await;
    assert_eq!(fw.events.update_of("raw-1").await["state"], "TASK_RUNNING");

    // The task holds its resources: the next offer of the agent is what is left.
    fw.call(&c, "REVIVE", None).await;
    let rest = fw.offer().await;
    assert_eq!(scalar(&rest, "cpus"), Some(1.5), "{rest}");

    // KILL: TASK_KILLED; an unknown task: TASK_LOST from the master.
    fw.call(
        &c,
        "KILL",
        Some(("kill", json!({"task_id": {"value": "raw-1"}}))),
    )
    .await;
    let killed = fw.until_state(&c, "raw-1", "TASK_KILLED").await;
    fw.call(
        &c,
        "KILL",
        Some(("kill", json!({"task_id": {"value": "ghost"}}))),
    )
    .await;
    assert_eq!(fw.events.update_of("ghost").await["state"], "TASK_LOST");

    // An unacknowledged update is sent again (every 10 s) until acknowledged.
    let again = fw.events.update_of("raw-1").await;
    assert_eq!(again["uuid"], killed["uuid"], "the same update, resent");

    // TEARDOWN ends the stream and the framework.
    fw.call(&c, "TEARDOWN", None).await;
    eventually(Duration::from_secs(10), "the framework gone", || async {
        let st = c.get("/master/state").await;
        let listed = st["frameworks"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["id"] == fw.id));
        (!listed).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_mesos_answers_and_launch_nothing() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:1;mem:512;disk:1000;ports:[31000-31009]");
    c.wait_agents(1).await;
    let post = |ct: Option<&'static str>, body: String| {
        let mut r = c
            .request(reqwest::Method::POST, "/api/v1/scheduler")
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move {
            let r = r.send().await.expect("reaches the master");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let sub = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info("x")}}).to_string();
    assert_eq!(post(None, sub.clone()).await.0, 415, "no Content-Type");
    assert_eq!(
        post(Some("application/x-protobuf"), sub.clone()).await.0,
        415
    );
    let (s, body) = post(Some("application/json"), "{not json".into()).await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = post(Some("application/json"), r#"{"type":"DECLINE"}"#.into()).await;
    assert_eq!(s, 400, "no framework_id: {body}");
    assert!(body.contains("framework_id"), "{body}");
    let (s, _) = post(
        Some("application/json"),
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "no user"}}})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400, "framework_info.user is required");
    let (s, body) = call(
        &c,
        "whatever",
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info("x")}}),
    )
    .await;
    assert_eq!(s, 400, "SUBSCRIBE with a stream id: {body}");
    let (s, body) = call(
        &c,
        "whatever",
        json!({"type": "REVIVE", "framework_id": {"value": "unknown"}}),
    )
    .await;
    assert_eq!(s, 400, "an unknown framework: {body}");
    // Without credentials: 401 as the Mesos operator API answers.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", c.url()))
        .header("content-type", "application/json")
        .body(sub.clone())
        .send()
        .await
        .expect("reaches");
    assert_eq!(r.status(), 401);

    let mut fw = subscribe(&c, info("bad")).await;
    let (s, body) = call(
        &c,
        "not-the-stream",
        json!({"type": "REVIVE", "framework_id": {"value": fw.id}}),
    )
    .await;
    assert_eq!(s, 403, "a stream id that is not the framework's: {body}");
    let (s, body) = call(
        &c,
        &fw.stream_id,
        json!({"type": "FROBNICATE", "framework_id": {"value": fw.id}}),
    )
    .await;
    assert_eq!(s, 400, "an unknown call: {body}");

    // LAUNCH more than the offer holds: TASK_ERROR, nothing launched.
    let offer = fw.offer().await;
    let agent = offer["agent_id"].clone();
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(
            &offer,
            vec![task(&c, "too-big", &agent, "true", 4.0)],
        )),
    )
    .await;
    let s = fw.events.update_of("too-big").await;
    assert_eq!(s["state"], "TASK_ERROR", "{s}");
    assert_eq!(s["reason"], "REASON_TASK_INVALID");
    assert!(s.get("uuid").is_none());
    // ACCEPT of an offer already used: TASK_LOST with REASON_INVALID_OFFERS.
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(&offer, vec![task(&c, "late", &agent, "true", 0.1)])),
    )
    .await;
    let s = fw.events.update_of("late").await;
    assert_eq!(s["state"], "TASK_LOST", "{s}");
    assert_eq!(s["reason"], "REASON_INVALID_OFFERS");
    // Another framework's id with this stream: 403.
    let other = subscribe(&c, info("other")).await;
    let (s, _) = call(
        &c,
        &fw.stream_id,
        json!({"type": "REVIVE", "framework_id": {"value": other.id}}),
    )
    .await;
    assert_eq!(s, 403);
    let tasks = c.get("/master/state").await;
    let launched: Vec<&Value> = tasks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .collect();
    assert!(launched.is_empty(), "nothing launched: {launched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_resources_are_not_placed_by_the_services_controller() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:1;mem:512;disk:1000;ports:[31000-31009]");
    c.wait_agents(1).await;
    let mut fw = subscribe(&c, info("holder")).await;
    let offer = fw.offer().await;
    assert_eq!(scalar(&offer, "cpus"), Some(1.0));
    let m = c.get("/metrics/snapshot").await;
    assert_eq!(m["master/outstanding_offers"], 1.0, "{m}");
    assert_eq!(
        m["master/frameworks_connected"], 2.0,
        "the built-ins and this one: {m}"
    );
    let app = json!({"id": "/held", "cmd": c.sleeper_cmd(), "cpus": 0.5, "mem": 32,
                     "instances": 1, "env": c.marker_env()});
    let (s, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        c.tasks("/held").await.is_empty(),
        "the app waits while the whole agent is offered"
    );
    fw.call(
        &c,
        "DECLINE",
        Some((
            "decline",
            json!({"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 60}}),
        )),
    )
    .await;
    c.wait_running("/held", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_resubscribes_after_a_master_kill_and_keeps_its_task() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000;ports:[31000-31099]");
    c.wait_agents(1).await;
    let mut fw = subscribe(&c, info("survivor")).await;
    let offer = fw.offer().await;
    let agent = offer["agent_id"].clone();
    let sleeper = c.sleeper_cmd();
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(
            &offer,
            vec![task(&c, "keep-1", &agent, &sleeper, 0.5)],
        )),
    )
    .await;
    let running = fw.until_state(&c, "keep-1", "TASK_RUNNING").await;
    fw.ack(&c, &running).await;
    let id = fw.id.clone();
    drop(fw);
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    let mut info = info("survivor");
    info["id"] = json!({ "value": id });
    let mut fw = subscribe(&c, info).await;
    assert_eq!(fw.id, id, "the same framework");
    fw.call(&c, "RECONCILE", Some(("reconcile", json!({"tasks": []}))))
        .await;
    let s = fw.events.update_of("keep-1").await;
    assert_eq!(s["state"], "TASK_RUNNING", "{s}");
    let state = c.get("/master/state").await;
    let listed = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(listed["name"], "survivor", "{state}");
    assert_eq!(listed["tasks"][0]["id"], "keep-1");
    // The web UI's frameworks page lists it, subscribed, with its task.
    let page = c
        .request(reqwest::Method::GET, "/ui/frameworks")
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .unwrap_or_default();
    let row = page
        .split("<tr ")
        .find(|r| r.contains(&format!(r#"data-framework="{id}""#)))
        .unwrap_or_else(|| panic!("no row of {id} in {page}"));
    assert!(
        row.contains("survivor") && row.contains("subscribed"),
        "{row}"
    );
    assert!(row.contains("<td>1</td>"), "one task: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_roles_and_run_as_users_bound_its_frameworks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    std::fs::write(
        &file,
        "[[principal]]\nname = \"spark\"\npassword = \"spark-pw-0001\"\n\
         permissions = [\"write_frameworks\"]\nroles = [\"analytics\"]\n",
    )
    .expect("principals");
    let mut c = Cluster::with_master_flags(&["--principals-file", file.to_str().expect("utf-8")]);
    c.start_agent(0, "cpus:1;mem:512;disk:1000");
    c.wait_agents(1).await;
    let spark = ("spark".to_owned(), "spark-pw-0001".to_owned());
    // A role it may not use: an ERROR event instead of SUBSCRIBED, then the stream ends.
    let mut wrong = info("w");
    wrong["role"] = json!("prod");
    let resp = subscribe_raw(&c, &wrong, &spark).await;
    assert_eq!(resp.status(), 200);
    let mut events = Events {
        resp,
        buf: Vec::new(),
    };
    let e = events.next().await;
    assert_eq!(e["type"], "ERROR", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("prod")),
        "{e}"
    );
    // Its own role: subscribed; a task as a user it may not run as gets TASK_ERROR.
    let mut ok = info("ok");
    ok["role"] = json!("analytics");
    let mut fw = subscribe_as(&c, ok, spark).await;
    let offer = fw.offer().await;
    let mut t = task(&c, "as-root", &offer["agent_id"], "true", 0.1);
    t["command"]["user"] = json!("root");
    fw.call(&c, "ACCEPT", Some(launch(&offer, vec![t]))).await;
    let s = fw.events.update_of("as-root").await;
    assert_eq!(s["state"], "TASK_ERROR", "{s}");
    assert!(
        s["message"].as_str().is_some_and(|m| m.contains("root")),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_gone_longer_than_its_failover_timeout_is_removed_with_its_tasks() {
    let mut c = Cluster::new();
    c.start_agent(0, "cpus:2;mem:1024;disk:2000");
    c.wait_agents(1).await;
    let mut short = info("brief");
    short["failover_timeout"] = json!(2.0);
    let mut fw = subscribe(&c, short).await;
    let offer = fw.offer().await;
    let sleeper = c.sleeper_cmd();
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(
            &offer,
            vec![task(&c, "brief-1", &offer["agent_id"], &sleeper, 0.5)],
        )),
    )
    .await;
    fw.until_state(&c, "brief-1", "TASK_RUNNING").await;
    eventually(Duration::from_secs(10), "its task's process", || async {
        (!c.task_processes().is_empty()).then_some(())
    })
    .await;
    let id = fw.id.clone();
    drop(fw);
    eventually(Duration::from_secs(20), "the framework removed", || async {
        let st = c.get("/master/state").await;
        let listed = st["frameworks"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["id"] == id.as_str()));
        (!listed).then_some(())
    })
    .await;
    eventually(Duration::from_secs(20), "its task killed", || async {
        c.task_processes().is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_agents_are_offered_to_gpu_frameworks_only_and_their_tasks_get_gpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("../gpu/fixtures/dgx2-16gpu.json");
    let xml = root.join("../../shared/fixtures/hwloc/nvidia-dgx2-16gpu.xml");
    assert!(
        xml.exists(),
        "{} is missing: this test needs ../shared/fixtures/hwloc beside the checkout",
        xml.display()
    );
    let mut c = Cluster::new();
    let token = c.token.clone();
    c.start_agent_with(
        0,
        "cpus:4;mem:8192;disk:1000;ports:[31000-31099]",
        &token,
        &["--gpu-fixture", fixture.to_str().expect("utf-8 path")],
        &[("HWLOC_XMLFILE", xml.to_str().expect("utf-8 path"))],
    );
    c.wait_agents(1).await;
    // Without GPU_RESOURCES: no offers of the GPU agent.
    let mut plain = subscribe(&c, info("cpu-only")).await;
    let offered =
        tokio::time::timeout(Duration::from_secs(3), plain.events.next_of("OFFERS")).await;
    assert!(
        offered.is_err(),
        "a GPU agent offered to a framework without GPU_RESOURCES"
    );
    // With it: the GPUs are offered, and a task asking for two gets two.
    let mut gpu_info = info("gpu");
    gpu_info["capabilities"] = json!([{"type": "GPU_RESOURCES"}]);
    let mut fw = subscribe(&c, gpu_info).await;
    let offer = fw.offer().await;
    assert_eq!(scalar(&offer, "gpus"), Some(16.0), "{offer}");
    let cmd = format!("env > $MESOS_SANDBOX/env; {}", c.sleeper_cmd());
    let mut t = task(&c, "gpu-1", &offer["agent_id"], &cmd, 1.0);
    t["resources"]
        .as_array_mut()
        .expect("resources")
        .push(json!({"name": "gpus", "type": "SCALAR", "scalar": {"value": 2}}));
    fw.call(&c, "ACCEPT", Some(launch(&offer, vec![t]))).await;
    let running = fw.until_state(&c, "gpu-1", "TASK_RUNNING").await;
    fw.ack(&c, &running).await;
    let env_file = c.sandbox(0, "gpu-1").join("env");
    let env = eventually(Duration::from_secs(20), "the task's env file", || async {
        let text = std::fs::read_to_string(&env_file).ok()?;
        text.contains("NVIDIA_VISIBLE_DEVICES=").then_some(text)
    })
    .await;
    let visible = env
        .lines()
        .find_map(|l| l.strip_prefix("NVIDIA_VISIBLE_DEVICES="))
        .unwrap_or_default();
    assert_eq!(visible.split(',').count(), 2, "{visible}");
    // The rest of the agent: 14 GPUs.
    fw.call(&c, "REVIVE", None).await;
    let rest = fw.offer().await;
    assert_eq!(scalar(&rest, "gpus"), Some(14.0), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_held_past_the_offer_timeout_is_rescinded_and_cannot_be_accepted() {
    let mut c = Cluster::with_master_flags(&["--offer-timeout-secs", "2"]);
    c.start_agent(0, "cpus:1;mem:512;disk:1000");
    c.wait_agents(1).await;
    let mut fw = subscribe(&c, info("slow")).await;
    let offer = fw.offer().await;
    let rescind = fw.events.next_of("RESCIND").await;
    assert_eq!(rescind["rescind"]["offer_id"], offer["id"], "{rescind}");
    fw.call(
        &c,
        "ACCEPT",
        Some(launch(
            &offer,
            vec![task(&c, "too-late", &offer["agent_id"], "true", 0.1)],
        )),
    )
    .await;
    let s = fw.events.update_of("too-late").await;
    assert_eq!(s["state"], "TASK_LOST", "{s}");
    assert_eq!(s["reason"], "REASON_INVALID_OFFERS");
    // The agent is offered again.
    let again = fw.offer().await;
    assert_ne!(again["id"], offer["id"]);
}
