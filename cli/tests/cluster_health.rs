//! Whole-cluster tests of health checks run by the agent next to the task: an HTTP check on a
//! python http.server turns healthy and shows `healthCheckResults`; results survive a master
//! `kill -9` and an agent restart (whose checks resume); TCP and COMMAND checks (a COMMAND check
//! enters a native container's namespaces as its user); a task whose
//! server stops answering is replaced (the replacement first) and the kill is its app's
//! `lastTaskFailure`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

/// An agent offering CPUs, memory and 20 host ports from a free spot of loopback (the fixed
/// 31000 range may be held by other tests' servers on this host).
fn agent() -> String {
    let base = support::free_port().min(65_000);
    format!("cpus:2;mem:1024;disk:100;ports:[{base}-{}]", base + 20)
}

/// The task of `app` whose health result `check` says `alive == want`, once one does; on a
/// timeout, fails with the tasks and the daemons' logs.
async fn wait_alive(c: &Cluster, app: &str, check: usize, want: bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let tasks = c.tasks(app).await;
        if let Some(t) = tasks
            .iter()
            .find(|t| t["healthCheckResults"][check]["alive"] == want)
        {
            return t.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{app}'s check {check} never said alive={want}: {tasks:?}\n{}",
            c.log_tails(30) + &debug_sandboxes(c)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stderr of every sandbox on agent 0, for a failure message (why a task exited).
fn debug_sandboxes(c: &Cluster) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(c.agent_dir(0).join("sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
    {
        out += &std::fs::read_to_string(e.path().join("stderr")).unwrap_or_default();
    }
    out
}

fn http_app(c: &Cluster, id: &str, cmd: &str, path: &str) -> Value {
    json!({"id": id, "cmd": cmd, "cpus": 0.1, "mem": 32, "env": c.marker_env(),
           "healthChecks": [{"protocol": "HTTP", "path": path, "portIndex": 0,
                             "gracePeriodSeconds": 30, "intervalSeconds": 1,
                             "timeoutSeconds": 1, "maxConsecutiveFailures": 2}]})
}

/// Serves `$MESOS_SANDBOX/www` (with an `ok` file) on PORT0: removing `www/ok` makes a check of
/// `/ok` fail with 404 while the server still answers.
const SERVE_OK: &str =
    "mkdir -p www && echo ok > www/ok && cd www && exec python3 -m http.server $PORT0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_turns_healthy_and_survives_master_and_agent_restarts() {
    let mut c = Cluster::new();
    let res = agent();
    c.start_agent(0, &res);
    c.wait_agents(1).await;
    let mut app = http_app(&c, "/web", SERVE_OK, "/ok");
    // 0: a Marathon-level check never kills, so the unhealthy task stays for the last part.
    app["healthChecks"][0]["maxConsecutiveFailures"] = json!(0);
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = wait_alive(&c, "web", 0, true).await;
    let id = task["id"].as_str().expect("id").to_string();
    let h = &task["healthCheckResults"][0];
    assert_eq!(h["consecutiveFailures"], 0);
    assert_eq!(h["taskId"], id.as_str());
    let instance = h["instanceId"].as_str().expect("instanceId");
    assert!(
        id.starts_with(instance) && instance.contains(".instance-"),
        "{instance} is the instance of {id}"
    );
    let first = h["firstSuccess"]
        .as_str()
        .expect("firstSuccess")
        .to_string();
    assert!(first.ends_with('Z') && first.len() == 24, "{first}");
    assert_eq!(h["lastSuccess"], first.as_str());
    assert!(h["lastFailure"].is_null() && h["lastFailureCause"].is_null());
    let info = c.get("/v2/apps/web").await;
    assert_eq!(info["app"]["tasksHealthy"], 1);
    assert_eq!(info["app"]["tasksUnhealthy"], 0);

    // kill -9 of the master: the result comes back from the store as it was.
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    let tasks = c.tasks("web").await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        tasks[0]["id"],
        id.as_str(),
        "the same task, not a replacement"
    );
    assert_eq!(tasks[0]["healthCheckResults"][0]["alive"], true);
    assert_eq!(
        tasks[0]["healthCheckResults"][0]["firstSuccess"],
        first.as_str()
    );
    assert_eq!(c.get("/v2/apps/web").await["app"]["tasksHealthy"], 1);

    // kill -9 of the agent: the task is re-adopted and its checks resume from the results they
    // had (firstSuccess is kept) and notice the page going away.
    c.kill_agent(0);
    c.start_agent(0, &res);
    c.wait_log("agent0.log", "re-adopted a running task", 1)
        .await;
    std::fs::remove_file(c.sandbox(0, &id).join("www/ok")).expect("remove the page");
    let failing = wait_alive(&c, "web", 0, false).await;
    assert_eq!(failing["id"], id.as_str());
    let h = &failing["healthCheckResults"][0];
    assert_eq!(
        h["firstSuccess"],
        first.as_str(),
        "resumed from the old result"
    );
    assert_eq!(h["lastFailureCause"], "HTTP status 404", "{h}");
    assert!(h["lastFailure"].as_str().is_some_and(|t| t.ends_with('Z')));
    let info = eventually(Duration::from_secs(20), "3 failures in a row", || async {
        let info = c.get("/v2/apps/web").await;
        (info["app"]["tasks"][0]["healthCheckResults"][0]["consecutiveFailures"]
            .as_u64()
            .unwrap_or(0)
            >= 3)
            .then_some(info)
    })
    .await;
    assert_eq!(info["app"]["tasksHealthy"], 0);
    assert_eq!(info["app"]["tasksUnhealthy"], 1);
    assert_eq!(
        info["app"]["tasks"][0]["id"],
        id.as_str(),
        "maxConsecutiveFailures 0: never killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_task_is_replaced_first_then_killed_and_recorded() {
    let mut c = Cluster::new();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    let app = http_app(&c, "/flaky", SERVE_OK, "/ok");
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let old = wait_alive(&c, "flaky", 0, true).await;
    let old_id = old["id"].as_str().expect("id").to_string();
    std::fs::remove_file(c.sandbox(0, &old_id).join("www/ok")).expect("remove the page");

    // maximumOverCapacity 1 (the default) leaves room: the replacement starts next to the old one.
    let both = eventually(
        Duration::from_secs(30),
        "a replacement next to the old task",
        || async {
            let t = c.tasks("flaky").await;
            (t.len() == 2).then_some(t)
        },
    )
    .await;
    assert!(
        both.iter().any(|t| t["id"] == old_id.as_str()),
        "the old task still runs while its replacement starts: {both:?}"
    );
    let new = eventually(
        Duration::from_secs(40),
        "only the replacement, healthy",
        || async {
            let t = c.tasks("flaky").await;
            (t.len() == 1
                && t[0]["id"] != old_id.as_str()
                && t[0]["healthCheckResults"][0]["alive"] == true)
                .then_some(t)
        },
    )
    .await;
    assert_eq!(new[0]["state"], "TASK_RUNNING");
    let info = c.get("/v2/apps/flaky").await;
    let f = &info["app"]["lastTaskFailure"];
    assert_eq!(f["taskId"], old_id.as_str(), "{f}");
    assert_eq!(f["state"], "TASK_KILLED");
    assert_eq!(
        f["message"],
        "Task was killed since health check failed. Reason: HTTP status 404"
    );
    assert!(f["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    // The failure is durable: a restarted master still shows it.
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    let info = c.get("/v2/apps/flaky").await;
    assert_eq!(info["app"]["lastTaskFailure"]["taskId"], old_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_command_checks() {
    let mut c = Cluster::new();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    let app = json!({"id": "/both", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "cmd": "touch healthy; exec python3 -m http.server $PORT0",
        "healthChecks": [
            {"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 30, "intervalSeconds": 1,
             "timeoutSeconds": 1, "maxConsecutiveFailures": 10},
            {"protocol": "COMMAND", "command": {"value": "test -f healthy && test -n \"$MARATHON_APP_ID\""},
             "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2,
             "maxConsecutiveFailures": 100}]});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = eventually(Duration::from_secs(40), "both checks alive", || async {
        c.tasks("both").await.into_iter().find(|t| {
            t["healthCheckResults"][0]["alive"] == true
                && t["healthCheckResults"][1]["alive"] == true
        })
    })
    .await;
    let id = task["id"].as_str().expect("id").to_string();
    assert_eq!(c.get("/v2/apps/both").await["app"]["tasksHealthy"], 1);
    std::fs::remove_file(c.sandbox(0, &id).join("healthy")).expect("remove the file");
    let failing = wait_alive(&c, "both", 1, false).await;
    let h = &failing["healthCheckResults"];
    assert_eq!(h[0]["alive"], true, "the TCP check still passes: {h}");
    assert_eq!(h[1]["lastFailureCause"], "command exited with code 1");
    assert_eq!(c.get("/v2/apps/both").await["app"]["tasksUnhealthy"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_check_runs_inside_a_native_container() {
    let mut c = Cluster::new();
    let token = c.token.clone();
    c.start_agent_with(0, &agent(), &token, &["--containerizer", "native"], &[]);
    c.wait_agents(1).await;
    assert!(
        c.read_log("agent0.log").contains("containerizer: native"),
        "this test needs the native containerizer (root and cgroups): {}",
        c.log_tails(10)
    );
    // The task writes down its mount and PID namespaces and user; the check passes only where
    // it sees the same ones.
    let app = json!({"id": "/inside", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "cmd": "readlink /proc/self/ns/mnt > $MESOS_SANDBOX/mnt; readlink /proc/self/ns/pid > $MESOS_SANDBOX/pid; id -u > $MESOS_SANDBOX/uid; exec sleep 3600",
        "healthChecks": [{"protocol": "COMMAND", "gracePeriodSeconds": 30, "intervalSeconds": 1,
            "timeoutSeconds": 5, "maxConsecutiveFailures": 100,
            "command": {"value": "for n in mnt pid; do test \"$(readlink /proc/self/ns/$n)\" = \"$(cat $MESOS_SANDBOX/$n)\" || exit 1; done; test \"$(id -u)\" = \"$(cat $MESOS_SANDBOX/uid)\""}}]});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = wait_alive(&c, "inside", 0, true).await;
    assert_eq!(task["healthCheckResults"][0]["consecutiveFailures"], 0);
    let id = task["id"].as_str().expect("id");
    let task_mnt = std::fs::read_to_string(c.sandbox(0, id).join("mnt")).expect("mnt");
    let own_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("own mnt ns");
    assert_ne!(
        task_mnt.trim(),
        own_mnt.display().to_string(),
        "the task has a mount namespace of its own, so the check really entered it"
    );
}
