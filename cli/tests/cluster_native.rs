//! Whole-cluster test with the native containerizer (as root): a real gantry-agentd running 5
//! containers is killed with `kill -9`; after its restart all 5 are re-adopted, and one that exited
//! meanwhile is reported with its exit code.

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:2048;disk:1000;ports:[31000-31099]";
const NATIVE: &[&str] = &["--containerizer", "native"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_kill_9_with_5_native_containers_readopts_them_all() {
    let mut c = Cluster::new();
    // Tasks run as `nobody`: the path to their sandboxes must be traversable.
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the test dir");
    let token = c.token.clone();
    c.start_agent_with(0, AGENT, &token, NATIVE, &[]);
    c.wait_agents(1).await;
    assert!(
        c.read_log("agent0.log").contains("containerizer: native"),
        "the agent runs the native containerizer"
    );
    let app = json!({"id": "/nat", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 5, "cpus": 0.1, "mem": 32});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let tasks = c.wait_running("nat", 5).await;
    let pids_before: BTreeSet<i32> =
        eventually(Duration::from_secs(10), "5 task processes", || async {
            let p: BTreeSet<i32> = c.task_processes().into_iter().collect();
            (p.len() == 5).then_some(p)
        })
        .await;

    c.kill_agent(0);
    let exiting = tasks[0]["id"].as_str().expect("id").to_string();
    std::fs::write(c.sandbox(0, &exiting).join("exit"), "7").expect("trigger the exit");
    eventually(
        Duration::from_secs(10),
        "the task to exit while the agent is down",
        || async { (c.task_processes().len() == 4).then_some(()) },
    )
    .await;
    c.start_agent_with(0, AGENT, &token, NATIVE, &[]);

    let msg = c.wait_failure_of("nat", &exiting).await;
    assert!(
        msg.contains("status 7"),
        "the real exit code is reported: {msg}"
    );
    c.wait_running("nat", 5).await;
    let pids_now: BTreeSet<i32> = c.task_processes().into_iter().collect();
    assert_eq!(
        pids_now.intersection(&pids_before).count(),
        4,
        "the 4 others still run"
    );
    assert_eq!(
        c.read_log("agent0.log")
            .matches("re-adopted a running task")
            .count(),
        4,
        "all 4 running containers re-adopted"
    );

    // Deleting the app ends every container, and the agent removes their cgroups.
    let mut ids: BTreeSet<String> = c
        .tasks("nat")
        .await
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    ids.insert(exiting);
    let r = c
        .request(reqwest::Method::DELETE, "/v2/apps/nat")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    eventually(
        Duration::from_secs(60),
        "the containers and their cgroups to be gone",
        || async {
            let procs = c.task_processes().len();
            let cgroups = ids
                .iter()
                .filter(|id| {
                    std::path::Path::new("/sys/fs/cgroup/memory/gantry")
                        .join(id)
                        .exists()
                })
                .count();
            eprintln!("waiting: {procs} task processes, {cgroups} cgroups of this test's tasks");
            (procs == 0 && cgroups == 0).then_some(())
        },
    )
    .await;
}
