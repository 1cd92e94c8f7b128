//! Whole-cluster test of GPU/NUMA placement with real processes: an agent started with the DGX-2
//! GPU fixture and hwloc export reports 2 NUMA domains and 16 GPUs; a `gpus: 2, numaPolicy:
//! require` app's task sees two GPUs of one node in CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES,
//! and its placement holds cores of that node; a request no node can hold waits and says why.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:8192;disk:1000;ports:[31000-31099]";

fn gpu_fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gpu/fixtures/dgx2-16gpu.json"
    ))
}

fn hwloc_fixture() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/hwloc/nvidia-dgx2-16gpu.xml"
    ));
    assert!(
        p.is_file(),
        "{} is missing: this test needs ../shared/fixtures/hwloc beside the checkout",
        p.display()
    );
    p
}

/// UUID -> NUMA node, from the GPU fixture.
fn fixture_nodes() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(gpu_fixture()).expect("GPU fixture");
    let v: Value = serde_json::from_str(&text).expect("fixture JSON");
    v["gpus"]
        .as_array()
        .expect("gpus")
        .iter()
        .map(|g| {
            (
                g["uuid"].as_str().expect("uuid").to_string(),
                g["numa_node"].as_u64().expect("numa node"),
            )
        })
        .collect()
}

fn dgx2_cluster() -> Cluster {
    let mut c = Cluster::new();
    let fixture = gpu_fixture();
    let xml = hwloc_fixture();
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--gpu-fixture", fixture.to_str().expect("utf-8 path")],
        &[("HWLOC_XMLFILE", xml.to_str().expect("utf-8 path"))],
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dgx2_agent_reports_its_domains_and_a_require_task_gets_two_gpus_of_one_node() {
    let c = dgx2_cluster();
    c.wait_agents(1).await;

    // The agent's report, as the master shows it.
    let state = c.get("/master/state").await;
    let agent = &state["slaves"][0];
    let domains = agent["numa_domains"].as_array().expect("numa_domains");
    assert_eq!(domains.len(), 2, "{agent}");
    for d in domains {
        assert_eq!(d["gpus"].as_array().map(Vec::len), Some(8), "{d}");
        assert!(!d["cores"].as_array().expect("cores").is_empty(), "{d}");
    }
    let gpus = agent["gpus"].as_array().expect("gpus");
    assert_eq!(gpus.len(), 16);
    assert!(gpus.iter().all(|g| g["healthy"] == true), "{agent}");
    assert_eq!(agent["resources"]["gpus"], 16);
    assert_eq!(agent["topology_warnings"], json!([]), "the fixtures agree");

    // The agent's own /state shows the same.
    let agent_port = agent["port"].as_u64().expect("agent port");
    let own: Value = c
        .agent_get(u16::try_from(agent_port).expect("a port"), "/state")
        .send()
        .await
        .expect("agent /state")
        .json()
        .await
        .expect("JSON");
    assert_eq!(own["gpus"].as_array().map(Vec::len), Some(16));
    assert_eq!(own["numa_domains"].as_array().map(Vec::len), Some(2));
    assert!(own["gpu_inventory"]
        .as_str()
        .unwrap_or("")
        .contains("dgx2-16gpu.json"));

    // A 2-GPU require task.
    let cmd = format!("env > $MESOS_SANDBOX/env; {}", c.sleeper_cmd());
    let app = json!({"id": "/train", "cmd": cmd, "env": c.marker_env(), "instances": 1,
                     "cpus": 1, "mem": 64, "gpus": 2, "numaPolicy": "require"});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["numaPolicy"], "require");
    let tasks = c.wait_running("train", 1).await;
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
    let nvidia: Vec<String> = var("NVIDIA_VISIBLE_DEVICES")
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(nvidia.len(), 2, "{nvidia:?}");
    assert_eq!(
        var("CUDA_VISIBLE_DEVICES"),
        nvidia.join(","),
        "not confined yet: CUDA sees the UUIDs"
    );
    assert_eq!(var("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    let nodes = fixture_nodes();
    let task_nodes: BTreeSet<u64> = nvidia
        .iter()
        .map(|u| *nodes.get(u).unwrap_or_else(|| panic!("unknown GPU {u}")))
        .collect();
    assert_eq!(task_nodes.len(), 1, "both GPUs on one node: {nvidia:?}");
    let node = *task_nodes.iter().next().expect("a node");

    // Its placement: that node, cores of that node, memory from it.
    let state = c.get("/master/state").await;
    let task = state["frameworks"][0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == task_id.as_str())
        .cloned()
        .expect("the task in /master/state");
    let placement = &task["placement"];
    assert_eq!(placement["numa_node"], node, "{placement}");
    assert_eq!(placement["mems"], json!([node]));
    let placed_uuids: BTreeSet<&str> = placement["gpus"]
        .as_array()
        .expect("gpus")
        .iter()
        .filter_map(|g| g["uuid"].as_str())
        .collect();
    assert_eq!(
        placed_uuids,
        nvidia.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let domain = state["slaves"][0]["numa_domains"]
        .as_array()
        .expect("domains")
        .iter()
        .find(|d| d["id"] == node)
        .cloned()
        .expect("the node's domain");
    let node_cpus: BTreeSet<u64> = domain["cpus"]
        .as_array()
        .expect("cpus")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let cpus: Vec<u64> = placement["cpus"]
        .as_array()
        .expect("cpus")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(cpus.len(), 1, "{placement}");
    assert!(
        cpus.iter().all(|c| node_cpus.contains(c)),
        "{cpus:?} on {domain}"
    );

    // 9 GPUs on one node cannot be had on a DGX-2: the app waits and says why.
    let big = json!({"id": "/big", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "cpus": 1, "mem": 64, "gpus": 9, "numaPolicy": "require"});
    let (status, body) = c.post("/v2/apps", &big.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let reason = eventually(Duration::from_secs(20), "/big in the queue", || async {
        let q = c.get("/v2/queue").await;
        q["queue"].as_array()?.iter().find_map(|i| {
            (i["app"]["id"] == "/big").then(|| {
                i["processedOffersSummary"]["rejectSummaryLastOffers"][0]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
        })
    })
    .await;
    assert!(
        reason.contains("no NUMA node with 9 free GPUs") && reason.contains("require"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_inventory_that_disagrees_with_hwloc_is_reported_not_resolved() {
    let mut c = Cluster::new();
    let fixture = gpu_fixture();
    let other = hwloc_fixture().with_file_name("xeon-2numa-3gpu-pci.xml");
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--gpu-fixture", fixture.to_str().expect("utf-8 path")],
        &[("HWLOC_XMLFILE", other.to_str().expect("utf-8 path"))],
    );
    c.wait_agents(1).await;
    let state = c.get("/master/state").await;
    let agent = &state["slaves"][0];
    let warnings = agent["topology_warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap_or("")
            .contains("is not in the hwloc topology")),
        "{agent}"
    );
    // Reported as is: the inventory's 16 GPUs keep their own NUMA nodes.
    assert_eq!(agent["gpus"].as_array().map(Vec::len), Some(16));
    assert_eq!(agent["gpus"][8]["numa_node"], 1);
}
