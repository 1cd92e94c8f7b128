//! Whole-cluster tests of the core loop with real gantry-masterd and gantry-agentd processes on
//! loopback: placement over two agents, replacement of a dead task, kill -9 of the master and of an
//! agent, an agent stopped past its heartbeats, and a wrong join token.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:1;mem:512;disk:1000;ports:[31000-31099]";

fn by_agent(tasks: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in tasks {
        *m.entry(t["slaveId"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

fn ids(tasks: &[Value]) -> BTreeSet<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn two_agents_with_app(instances: u32) -> (Cluster, Vec<Value>) {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.start_agent(1, AGENT);
    c.wait_agents(2).await;
    let app = json!({"id": "/sleepy", "cmd": c.sleeper_cmd(), "env": c.marker_env(), "instances": instances,
                     "cpus": 0.25, "mem": 64, "portDefinitions": [{"port": 0}]});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let tasks = c.wait_running("sleepy", instances as usize).await;
    (c, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_spread_over_two_agents_and_a_dead_task_is_replaced() {
    let (c, tasks) = two_agents_with_app(4).await;
    let spread = by_agent(&tasks);
    assert_eq!(spread.len(), 2, "both agents run tasks: {spread:?}");
    assert!(spread.values().all(|n| *n == 2), "2 + 2: {spread:?}");
    for t in &tasks {
        let port = t["ports"][0].as_u64().expect("a host port");
        assert!(
            (31000..=31099).contains(&port),
            "port from the agent's range: {port}"
        );
    }
    assert_eq!(c.task_processes().len(), 4);

    // Kill one task's process: it fails, and a replacement with a new id starts.
    let victim = tasks[0]["id"].as_str().expect("id").to_string();
    let agent = if c.sandbox(0, &victim).exists() { 0 } else { 1 };
    let pid: i32 = std::fs::read_to_string(c.sandbox(agent, &victim).join("pid"))
        .expect("the task wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the task");
    let after = eventually(Duration::from_secs(30), "a replacement task", || async {
        let t = c.tasks("sleepy").await;
        let running = t.iter().filter(|t| t["state"] == "TASK_RUNNING").count();
        (running == 4 && !ids(&t).contains(&victim)).then_some(t)
    })
    .await;
    assert_eq!(ids(&after).intersection(&ids(&tasks)).count(), 3);
    let app = c.get("/v2/apps/sleepy").await;
    assert_eq!(app["app"]["lastTaskFailure"]["taskId"], victim.as_str());
    assert_eq!(app["app"]["lastTaskFailure"]["state"], "TASK_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_kill_9_loses_nothing_and_doubles_nothing() {
    let (mut c, tasks) = two_agents_with_app(4).await;
    let before = ids(&tasks);
    let pids_before: BTreeSet<i32> = c.task_processes().into_iter().collect();
    c.kill_master();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.start_master();
    c.wait_agents(2).await;
    let after = c.wait_running("sleepy", 4).await;
    assert_eq!(ids(&after), before, "the same task ids, still running");
    // Give the controller time to (wrongly) launch extras, then check nothing was doubled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ids(&c.tasks("sleepy").await), before);
    let pids_after: BTreeSet<i32> = c.task_processes().into_iter().collect();
    assert_eq!(
        pids_after, pids_before,
        "the same processes, none started twice"
    );
    let state = c.get("/master/state").await;
    assert_eq!(
        state["frameworks"][0]["tasks"].as_array().map(Vec::len),
        Some(4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_kill_9_readopts_tasks_and_reports_one_that_exited_meanwhile() {
    let (mut c, tasks) = two_agents_with_app(4).await;
    let on_agent0: Vec<String> = tasks
        .iter()
        .filter_map(|t| t["id"].as_str())
        .filter(|id| c.sandbox(0, id).exists())
        .map(str::to_string)
        .collect();
    assert_eq!(on_agent0.len(), 2);
    let pids_before: BTreeSet<i32> = c.task_processes().into_iter().collect();

    c.kill_agent(0);
    // While the agent is down, one of its tasks exits with code 7.
    let exiting = &on_agent0[0];
    std::fs::write(c.sandbox(0, exiting).join("exit"), "7").expect("trigger the exit");
    eventually(Duration::from_secs(10), "the task to exit", || async {
        (c.task_processes().len() == 3).then_some(())
    })
    .await;
    c.start_agent(0, AGENT);

    // The survivor is re-adopted (same id, same process); the exited one is reported with its code.
    let msg = c.wait_failure_of("sleepy", exiting).await;
    assert!(
        msg.contains("status 7"),
        "the real exit code is reported: {msg}"
    );
    let now = c.wait_running("sleepy", 4).await;
    assert!(
        ids(&now).contains(&on_agent0[1]),
        "the survivor keeps its id"
    );
    let pids_now: BTreeSet<i32> = c.task_processes().into_iter().collect();
    assert_eq!(
        pids_now.intersection(&pids_before).count(),
        3,
        "3 originals still run"
    );
    assert!(c
        .read_log("agent0.log")
        .contains("re-adopted a running task"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_goes_unreachable_is_replaced_and_surplus_is_killed_on_return() {
    let mut c = Cluster::new();
    // Each agent can hold all 4 instances, so the 2 on a lost agent can move.
    c.start_agent(0, AGENT);
    c.start_agent(1, AGENT);
    c.wait_agents(2).await;
    let app = json!({"id": "/sleepy", "cmd": c.sleeper_cmd(), "env": c.marker_env(), "instances": 4,
                     "cpus": 0.2, "mem": 32});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let tasks = c.wait_running("sleepy", 4).await;
    let agent0_id = tasks
        .iter()
        .find(|t| c.sandbox(0, t["id"].as_str().unwrap_or("")).exists())
        .and_then(|t| t["slaveId"].as_str())
        .expect("a task on agent 0")
        .to_string();

    c.signal_agent(0, nix::sys::signal::Signal::SIGSTOP);
    let unreachable = eventually(Duration::from_secs(20), "TASK_UNREACHABLE", || async {
        let t = c.tasks("sleepy").await;
        let u: Vec<Value> = t
            .iter()
            .filter(|t| t["state"] == "TASK_UNREACHABLE")
            .cloned()
            .collect();
        (u.len() == 2).then_some(u)
    })
    .await;
    assert!(unreachable
        .iter()
        .all(|t| t["slaveId"] == agent0_id.as_str()));
    // Replaced on the other agent.
    eventually(
        Duration::from_secs(20),
        "replacements on agent 1",
        || async {
            let t = c.tasks("sleepy").await;
            let running: Vec<&Value> = t.iter().filter(|t| t["state"] == "TASK_RUNNING").collect();
            (running.len() == 4 && running.iter().all(|t| t["slaveId"] != agent0_id.as_str()))
                .then_some(())
        },
    )
    .await;
    // The stopped agent's 2 tasks still exist beside the 4 running ones (a loaded machine may
    // still be starting or reaping a process when the API already says so: wait for it).
    eventually(
        Duration::from_secs(20),
        "6 task processes: the stopped agent's tasks still exist",
        || async { (c.task_processes().len() == 6).then_some(()) },
    )
    .await;

    c.signal_agent(0, nix::sys::signal::Signal::SIGCONT);
    // The agent re-registers; its replaced tasks are killed; never more than 4 running.
    let settled = eventually(Duration::from_secs(30), "surplus killed", || async {
        let t = c.tasks("sleepy").await;
        let running = t.iter().filter(|t| t["state"] == "TASK_RUNNING").count();
        assert!(
            running <= 4,
            "the app never runs more than asked: {running}"
        );
        (t.len() == 4 && running == 4 && c.task_processes().len() == 4).then_some(t)
    })
    .await;
    assert!(settled.iter().all(|t| t["slaveId"] != agent0_id.as_str()));
    let agents = c.get("/master/slaves").await;
    let a0 = agents["slaves"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == agent0_id.as_str()).cloned())
        .expect("agent 0 is listed");
    assert_eq!(a0["active"], true, "agent 0 is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_join_token_is_refused_and_logged() {
    let mut c = Cluster::new();
    c.start_agent_with_token(0, AGENT, "not-the-token");
    eventually(
        Duration::from_secs(10),
        "the refusal in the master's log",
        || async {
            c.read_log("master.log")
                .contains("refused an agent connection")
                .then_some(())
        },
    )
    .await;
    assert!(c
        .read_log("agent0.log")
        .contains("refused this agent's join token"));
    let s = c.get("/master/slaves").await;
    assert_eq!(s["slaves"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_notices_a_frozen_master_and_re_registers_when_it_thaws() {
    let (c, tasks) = two_agents_with_app(2).await;
    c.signal_master(nix::sys::signal::Signal::SIGSTOP);
    eventually(
        Duration::from_secs(15),
        "the agents to notice the silence",
        || async {
            (c.read_log("agent0.log")
                .contains("nothing heard from the master")
                && c.read_log("agent1.log")
                    .contains("nothing heard from the master"))
            .then_some(())
        },
    )
    .await;
    c.signal_master(nix::sys::signal::Signal::SIGCONT);
    // Right after the thaw the master still shows the connections from before the freeze: wait for
    // the re-registrations themselves, not just for two connected agents.
    eventually(
        Duration::from_secs(20),
        "both agents to re-register",
        || async {
            let registered = |log: &str| {
                c.read_log(log)
                    .matches("registered with the master")
                    .count()
            };
            (registered("agent0.log") >= 2 && registered("agent1.log") >= 2).then_some(())
        },
    )
    .await;
    c.wait_agents(2).await;
    let after = c.wait_running("sleepy", 2).await;
    assert_eq!(ids(&after), ids(&tasks), "the same tasks, still running");
    eventually(
        Duration::from_secs(10),
        "the master to note its own stall",
        || async {
            c.read_log("master.log")
                .contains("the master stalled")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_task_failure_survives_a_master_restart() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let app =
        json!({"id": "/flaky", "cmd": "exit 9", "cpus": 0.1, "mem": 16, "backoffSeconds": 3600});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let failure = eventually(Duration::from_secs(20), "the failure", || async {
        let f = c.get("/v2/apps/flaky").await["app"]["lastTaskFailure"].clone();
        (!f.is_null()).then_some(f)
    })
    .await;
    c.kill_master();
    c.start_master();
    c.wait_agents(1).await;
    let after = c.get("/v2/apps/flaky").await["app"]["lastTaskFailure"].clone();
    assert_eq!(after, failure);
    assert_eq!(after["message"], "Command exited with status 9");
}
