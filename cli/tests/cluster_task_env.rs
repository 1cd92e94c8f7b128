//! Whole-cluster test of the environment Marathon gives an app's task (spec §2.5): the PORT
//! variables by index, name and service port, HOST, MESOS_TASK_ID, MARATHON_APP_* and labels.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{eventually, Cluster};

/// An agent offering CPUs, memory and 20 host ports from a free spot of loopback (the fixed
/// 31000 range may be held by other tests' servers on this host).
fn agent() -> String {
    let base = support::free_port().min(65_000);
    format!("cpus:2;mem:512;disk:100;ports:[{base}-{}]", base + 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_gets_every_marathon_variable() {
    let mut c = Cluster::new();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    let app = json!({"id": "/shop/env", "cmd": "env > $MESOS_SANDBOX/env; exec sleep 3600",
        "cpus": 0.1, "mem": 16, "disk": 0, "env": c.marker_env(),
        "labels": {"team": "hpc", "com.example/tier": "gold"},
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}]});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let task = c.wait_running("shop/env", 1).await.remove(0);
    let id = task["id"].as_str().expect("id").to_string();
    let info = c.get("/v2/apps/shop/env").await;
    let version = info["app"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    let service: Vec<u64> = info["app"]["portDefinitions"]
        .as_array()
        .expect("portDefinitions")
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert_eq!(service.len(), 2);
    let env_file = c.sandbox(0, &id).join("env");
    let env = eventually(Duration::from_secs(10), "the task's env file", || async {
        std::fs::read_to_string(&env_file)
            .ok()
            .filter(|e| e.contains("PORTS="))
    })
    .await;
    let var = |k: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} is set: {env}"))
            .to_string()
    };
    let ports: Vec<u64> = task["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(var("PORT0"), ports[0].to_string());
    assert_eq!(var("PORT1"), ports[1].to_string());
    assert_eq!(var("PORT"), ports[0].to_string());
    assert_eq!(var("PORTS"), format!("{},{}", ports[0], ports[1]));
    assert_eq!(var("PORT_HTTP"), ports[0].to_string(), "named port");
    assert_eq!(var(&format!("PORT_{}", service[0])), ports[0].to_string());
    assert_eq!(var(&format!("PORT_{}", service[1])), ports[1].to_string());
    assert_eq!(var("HOST"), "127.0.0.1");
    assert_eq!(var("MESOS_TASK_ID"), id);
    assert_eq!(var("MARATHON_APP_ID"), "/shop/env");
    assert_eq!(var("MARATHON_APP_VERSION"), version);
    assert_eq!(var("MARATHON_APP_RESOURCE_CPUS"), "0.1");
    assert_eq!(var("MARATHON_APP_RESOURCE_MEM"), "16.0");
    assert_eq!(var("MARATHON_APP_RESOURCE_DISK"), "0.0");
    assert_eq!(var("MARATHON_APP_RESOURCE_GPUS"), "0");
    assert_eq!(var("MARATHON_APP_LABELS"), "COM_EXAMPLE_TIER TEAM");
    assert_eq!(var("MARATHON_APP_LABEL_TEAM"), "hpc");
    assert_eq!(var("MARATHON_APP_LABEL_COM_EXAMPLE_TIER"), "gold");
    assert!(
        !env.contains("MARATHON_APP_DOCKER_IMAGE="),
        "no image, no variable"
    );
}
