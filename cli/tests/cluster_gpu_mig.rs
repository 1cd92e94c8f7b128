//! Whole-cluster test of MIG placement with real processes: an agent started with the H100
//! mixed-MIG fixture offers its MIG devices and whole GPUs; a `gpus: 1, gpuProfile: 2g.20gb`
//! app's task gets the 2g.20gb MIG device's UUID in NVIDIA_VISIBLE_DEVICES and
//! CUDA_VISIBLE_DEVICES, and its placement carries that slice's caps minors.

mod support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:8192;disk:1000;ports:[31000-31099]";

fn gpu_fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gpu/fixtures/h100-mig-mixed.json"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_profile_task_gets_its_mig_device_and_caps_nodes() {
    let text = std::fs::read_to_string(gpu_fixture()).expect("MIG fixture");
    let fixture: Value = serde_json::from_str(&text).expect("fixture JSON");
    let slice = fixture["gpus"]
        .as_array()
        .expect("gpus")
        .iter()
        .find(|g| g["mig"]["profile"] == "2g.20gb")
        .cloned()
        .expect("a 2g.20gb slice in the fixture");
    let uuid = slice["uuid"].as_str().expect("uuid").to_string();

    let mut c = Cluster::new();
    let fixture_path = gpu_fixture();
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--gpu-fixture", fixture_path.to_str().expect("utf-8 path")],
        &[],
    );
    c.wait_agents(1).await;
    let state = c.get("/master/state").await;
    // 2 whole GPUs + 11 MIG devices; the two MIG-enabled GPUs are not offered themselves.
    assert_eq!(
        state["slaves"][0]["resources"]["gpus"], 13,
        "{}",
        state["slaves"][0]
    );

    let cmd = format!("env > $MESOS_SANDBOX/env; {}", c.sleeper_cmd());
    let app = json!({"id": "/infer", "cmd": cmd, "env": c.marker_env(), "instances": 1,
                     "cpus": 1, "mem": 64, "gpus": 1, "gpuProfile": "2g.20gb"});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["gpuProfile"], "2g.20gb");
    let tasks = c.wait_running("infer", 1).await;
    let task_id = tasks[0]["id"].as_str().expect("task id").to_string();
    let env_file = c.sandbox(0, &task_id).join("env");
    let env = eventually(Duration::from_secs(20), "the task's env file", || async {
        let text = std::fs::read_to_string(&env_file).ok()?;
        text.contains("NVIDIA_VISIBLE_DEVICES=").then_some(text)
    })
    .await;
    let var = |name: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in the task's environment:\n{env}"))
            .to_string()
    };
    assert_eq!(var("NVIDIA_VISIBLE_DEVICES"), uuid);
    assert_eq!(var("CUDA_VISIBLE_DEVICES"), uuid);

    let state = c.get("/master/state").await;
    let task = state["frameworks"][0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == task_id.as_str())
        .cloned()
        .expect("the task in /master/state");
    let given = &task["placement"]["gpus"][0];
    assert_eq!(given["uuid"], uuid.as_str(), "{task}");
    assert_eq!(
        given["minor"], slice["minor"],
        "the parent's /dev/nvidia<minor>"
    );
    assert_eq!(given["caps_minors"], slice["mig"]["caps_minors"], "{task}");
}
