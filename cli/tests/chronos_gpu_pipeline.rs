//! A GPU pipeline as a Chronos DAG on the DGX-2 fixtures (issue 9): preprocess (CPU) → train
//! (2 GPUs, `numaPolicy: require`) → evaluate (1 GPU). Each GPU step sees only its own GPUs, all
//! on one NUMA node, with cores of that node; the graph export shows the pipeline.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:8192;disk:1000;ports:[31000-31099]";

fn fixture(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// GPU UUID → NUMA node, from the GPU fixture.
fn gpu_nodes() -> BTreeMap<String, u64> {
    let text =
        std::fs::read_to_string(fixture("../gpu/fixtures/dgx2-16gpu.json")).expect("fixture");
    let v: Value = serde_json::from_str(&text).expect("fixture JSON");
    v["gpus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g["uuid"].as_str()?.to_owned(), g["numa_node"].as_u64()?)))
        .collect()
}

async fn submit(c: &Cluster, path: &str, job: Value) {
    let r = c
        .request(Method::POST, path)
        .header("content-type", "application/json")
        .body(job.to_string())
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    assert_eq!(status, 204, "{job}: {}", r.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preprocess_train_evaluate_each_on_its_gpus_of_one_numa_node() {
    let mut c = Cluster::new();
    let gpu = fixture("../gpu/fixtures/dgx2-16gpu.json");
    let xml = fixture("../../shared/fixtures/hwloc/nvidia-dgx2-16gpu.xml");
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--gpu-fixture", gpu.to_str().expect("utf-8")],
        &[("HWLOC_XMLFILE", xml.to_str().expect("utf-8"))],
    );
    c.wait_agents(1).await;
    let out = c.agent_dir(0).join("pipeline");
    std::fs::create_dir_all(&out).expect("dir");
    let step = |name: &str| {
        format!(
            "echo \"$NVIDIA_VISIBLE_DEVICES\" > {d}/{name}.gpus; echo {name} >> {d}/order",
            d = out.display()
        )
    };
    submit(
        &c,
        "/v1/scheduler/iso8601",
        json!({"name": "preprocess", "owner": "ml@example.com", "cpus": 0.5, "mem": 64,
        "schedule": "R/2099-01-01T00:00:00Z/P1D", "command": step("preprocess")}),
    )
    .await;
    submit(
        &c,
        "/v1/scheduler/dependency",
        json!({"name": "train", "owner": "ml@example.com", "cpus": 1, "mem": 128,
        "gpus": 2, "numaPolicy": "require", "parents": ["preprocess"], "command": step("train")}),
    )
    .await;
    submit(
        &c,
        "/v1/scheduler/dependency",
        json!({"name": "evaluate", "owner": "ml@example.com", "cpus": 0.5, "mem": 64,
        "gpus": 1, "parents": ["train"], "command": step("evaluate")}),
    )
    .await;
    let r = c
        .request(Method::PUT, "/v1/scheduler/job/preprocess")
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 204);
    eventually(Duration::from_secs(40), "the pipeline", || async {
        let j = c.get("/v1/scheduler/job/evaluate").await;
        (j["successCount"] == 1).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(out.join("order")).unwrap_or_default(),
        "preprocess\ntrain\nevaluate\n"
    );
    let gpus_of = |name: &str| -> Vec<String> {
        let t = std::fs::read_to_string(out.join(format!("{name}.gpus"))).unwrap_or_default();
        t.trim()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let cpu_step = gpus_of("preprocess");
    assert_eq!(
        cpu_step,
        ["void"],
        "the CPU step sees no GPU (NVIDIA's void)"
    );
    let nodes = gpu_nodes();
    for (name, n) in [("train", 2), ("evaluate", 1)] {
        let g = gpus_of(name);
        assert_eq!(g.len(), n, "{name}: {g:?}");
        let on: BTreeSet<u64> = g.iter().filter_map(|u| nodes.get(u).copied()).collect();
        assert_eq!(on.len(), 1, "{name}'s GPUs on one node: {g:?}");
    }
    // The placements the master chose: the task's GPUs, and cores and memory of their node.
    let state = c.get("/master/state").await;
    let chronos = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "chronos")
        .cloned()
        .unwrap_or_default();
    let domains = state["slaves"][0]["numa_domains"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (name, n) in [("train", 2), ("evaluate", 1)] {
        let task = chronos["completed_tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == format!("ChronosTask:{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("{name}'s task in /master/state: {chronos}"));
        let p = &task["placement"];
        let placed: BTreeSet<String> = p["gpus"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["uuid"].as_str().map(String::from))
            .collect();
        assert_eq!(
            placed,
            gpus_of(name).into_iter().collect::<BTreeSet<_>>(),
            "{name}: {p}"
        );
        assert_eq!(placed.len(), n);
        let node = p["numa_node"].as_u64().expect("numa node");
        assert_eq!(p["mems"], json!([node]), "{name}: {p}");
        let node_cpus: BTreeSet<u64> = domains
            .iter()
            .find(|d| d["id"] == node)
            .and_then(|d| d["cpus"].as_array())
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        let cpus: Vec<u64> = p["cpus"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        assert!(
            !cpus.is_empty() && cpus.iter().all(|c| node_cpus.contains(c)),
            "{name}: {cpus:?}"
        );
    }
    let dot = c
        .request(Method::GET, "/v1/scheduler/graph/dot")
        .send()
        .await
        .expect("dot")
        .text()
        .await
        .unwrap_or_default();
    for l in [
        "label=\"preprocess\"",
        "label=\"train\"",
        "label=\"evaluate\"",
    ] {
        assert!(dot.contains(l), "{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 2, "{dot}");
    let csv = c
        .request(Method::GET, "/v1/scheduler/graph/csv")
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .unwrap_or_default();
    for n in ["preprocess", "train", "evaluate"] {
        assert!(csv.contains(&format!("node,{n},success,idle")), "{csv}");
    }
}
