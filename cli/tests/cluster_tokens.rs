//! Join token rotation through token files, with real gantry-masterd and gantry-agentd processes on
//! loopback: the master accepts every token in its `--token-file` and re-reads it while running;
//! agents read theirs at every connection. A connected agent is not disturbed by the rotation, a
//! new agent joins with the new token, the old token is refused once removed, and no token ever
//! shows in a log or an API answer.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use support::Cluster;

const AGENT: &str = "cpus:1;mem:512;disk:1000;ports:[31000-31099]";
const REGISTERED: &str = "registered with the master";
const RELOADED: &str = "join tokens reloaded";

fn write(path: &Path, text: &str) {
    // Write then rename, as an operator's tooling (or a config manager) would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write a token file");
    std::fs::rename(&tmp, path).expect("replace the token file");
}

fn start_agent(c: &mut Cluster, i: usize, token_file: &Path) {
    c.start_agent_flags(i, AGENT, &[Path::new("--token-file"), token_file], &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_rotate_through_token_files_while_agents_stay_connected() {
    let old = format!("old-{}", uuid::Uuid::new_v4().simple());
    let new = format!("new-{}", uuid::Uuid::new_v4().simple());
    let mut c = Cluster::unstarted();
    let dir = c.dir.path().to_owned();
    let master_tokens = dir.join("master-tokens");
    write(&master_tokens, &format!("# cluster join tokens\n{old}\n"));
    c.use_token_file(&master_tokens);
    c.start_master();

    let agent0_token = dir.join("agent0-token");
    write(&agent0_token, &format!("{old}\n"));
    start_agent(&mut c, 0, &agent0_token);
    c.wait_agents(1).await;
    let app = json!({"id": "/steady", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 1, "cpus": 0.1, "mem": 32});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let task = c.wait_running("steady", 1).await[0]["id"].clone();

    // 1. The operator adds the new token; a new agent joins with it.
    write(&master_tokens, &format!("{old}\n{new}\n"));
    c.wait_log("master.log", RELOADED, 1).await;
    assert!(c.read_log("master.log").contains("tokens=2"));
    let agent1_token = dir.join("agent1-token");
    write(&agent1_token, &new);
    start_agent(&mut c, 1, &agent1_token);
    c.wait_agents(2).await;

    // 2. Agent 0's file gets the new token; 3. the old token is removed.
    write(&agent0_token, &format!("{new}\n"));
    write(&master_tokens, &format!("{new}\n"));
    c.wait_log("master.log", RELOADED, 2).await;

    // An agent still holding the old token is refused...
    let agent2_token = dir.join("agent2-token");
    write(&agent2_token, &old);
    start_agent(&mut c, 2, &agent2_token);
    c.wait_log("agent2.log", "refused this agent's join token", 2)
        .await;
    c.wait_log("master.log", "refused an agent connection", 2)
        .await;
    // ...while agent 0, connected with the old token all along, was never disturbed.
    let slaves = c.get("/master/slaves").await;
    let connected = slaves["slaves"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["connected"] == true).count());
    assert_eq!(connected, Some(2), "{slaves}");
    assert_eq!(c.read_log("agent0.log").matches(REGISTERED).count(), 1);
    let now = c.wait_running("steady", 1).await;
    assert_eq!(now[0]["id"], task, "the task kept running");

    // On its next connection agent 0 reads its file again: restart the master to make it
    // reconnect, with the new token only.
    c.kill_master();
    c.start_master();
    c.wait_log("agent0.log", REGISTERED, 2).await;
    c.wait_agents(2).await;
    assert_eq!(c.wait_running("steady", 1).await[0]["id"], task);
    let slaves = c.get("/master/slaves").await;
    assert_eq!(
        slaves["slaves"].as_array().map(Vec::len),
        Some(2),
        "{slaves}"
    );

    // No token in any log or API answer.
    let mut seen = Vec::new();
    for path in [
        "/master/state",
        "/master/slaves",
        "/v2/apps",
        "/v2/tasks",
        "/v2/queue",
        "/metrics/snapshot",
        "/version",
    ] {
        seen.push((path.to_string(), c.get(path).await.to_string()));
    }
    for agent in slaves["slaves"].as_array().into_iter().flatten() {
        let port = u16::try_from(agent["port"].as_u64().unwrap_or(0)).expect("a port");
        // Both agents hold the new token in their files now.
        let state: Value = c
            .agent_get_with(port, "/state", &new)
            .send()
            .await
            .expect("the agent's /state answers")
            .json()
            .await
            .expect("JSON");
        assert!(state["id"].is_string(), "{state}");
        seen.push((format!("agent :{port}/state"), state.to_string()));
    }
    for log in ["master.log", "agent0.log", "agent1.log", "agent2.log"] {
        let text = c.read_log(log);
        assert!(!text.is_empty(), "{log} is empty");
        seen.push((log.to_string(), text));
    }
    for (what, text) in seen {
        assert!(
            !text.contains(&old) && !text.contains(&new),
            "a join token shows in {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_keeps_its_tokens_when_the_token_file_goes_bad() {
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let mut c = Cluster::unstarted();
    let master_tokens = c.dir.path().join("master-tokens");
    write(&master_tokens, &token);
    c.use_token_file(&master_tokens);
    c.start_master();
    c.wait_agents(0).await;
    write(&master_tokens, "# emptied by mistake\n");
    c.wait_log("master.log", "keeping the ones read before", 1)
        .await;
    let agent_token = c.dir.path().join("agent-token");
    write(&agent_token, &token);
    start_agent(&mut c, 0, &agent_token);
    c.wait_agents(1).await;
    assert!(!c.read_log("master.log").contains(&token));
}
