//! Whole-cluster test of per-task GPU metrics with real processes: an agent on the DGX-2 GPU
//! fixture reads its GPUs from a metrics fixture; a 2-GPU task's readings (utilisation, memory,
//! power, temperature, XIDs) show on the agent's `/monitor/statistics`, the master's `/metrics`
//! and the Marathon task JSON (only with `embed=tasks.gpuUsage`), and rewriting the fixture file
//! changes all three.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:8192;disk:1000;ports:[31000-31099]";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gpu/fixtures")
        .join(name)
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

/// Writes the metrics fixture whole (a new file renamed over the old), so that the agent never
/// reads half of it.
fn write_metrics(path: &Path, doc: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, doc.to_string()).expect("write the metrics fixture");
    std::fs::rename(&tmp, path).expect("replace the metrics fixture");
}

/// The fixture's reading of each GPU, by UUID.
fn readings(doc: &Value) -> BTreeMap<String, Value> {
    doc["gpus"]
        .as_array()
        .expect("gpus")
        .iter()
        .map(|g| (g["uuid"].as_str().expect("uuid").to_string(), g.clone()))
        .collect()
}

/// The value of the `/metrics` sample `name{task=..,agent=..,gpu_uuid=..}`.
fn sample(text: &str, name: &str, task: &str, agent: &str, gpu: &str) -> Option<f64> {
    let prefix = format!("{name}{{task=\"{task}\",agent=\"{agent}\",gpu_uuid=\"{gpu}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// What every surface must show for one GPU: utilisation, power and XID count.
#[derive(Debug, PartialEq)]
struct Shown {
    util: f64,
    power: f64,
    xids: u64,
}

async fn agent_stats(c: &Cluster, port: u64, task: &str) -> Option<Vec<Value>> {
    let stats: Value = c
        .agent_get(u16::try_from(port).ok()?, "/monitor/statistics")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let entry = stats
        .as_array()?
        .iter()
        .find(|e| e["executor_id"] == task)?;
    entry["statistics"]["gpu_usage"].as_array().cloned()
}

fn shown_in(list: &[Value], uuid: &str, util: &str, power: &str, xids: &str) -> Option<Shown> {
    let g = list.iter().find(|g| g["uuid"] == uuid)?;
    Some(Shown {
        util: g[util].as_f64()?,
        power: g[power].as_f64()?,
        xids: g[xids].as_u64()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixtures_gpu_readings_reach_statistics_metrics_and_task_json_and_follow_the_file() {
    let mut c = Cluster::new();
    let metrics_file = c.dir.path().join("gpu-metrics.json");
    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("dgx2-16gpu.metrics.json")).expect("metrics fixture"),
    )
    .expect("metrics fixture JSON");
    write_metrics(&metrics_file, &original);
    let gpus = fixture("dgx2-16gpu.json");
    let xml = hwloc_fixture();
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &[
            "--gpu-fixture",
            gpus.to_str().expect("utf-8 path"),
            "--gpu-metrics-fixture",
            metrics_file.to_str().expect("utf-8 path"),
            "--gpu-metrics-interval-secs",
            "0.2",
        ],
        &[("HWLOC_XMLFILE", xml.to_str().expect("utf-8 path"))],
    );
    c.wait_agents(1).await;
    let state = c.get("/master/state").await;
    let agent_id = state["slaves"][0]["id"]
        .as_str()
        .expect("agent id")
        .to_string();
    let port = state["slaves"][0]["port"].as_u64().expect("agent port");

    let app = json!({"id": "/train", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 1, "cpus": 1, "mem": 64, "gpus": 2});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let task_id = c.wait_running("train", 1).await[0]["id"]
        .as_str()
        .expect("task id")
        .to_string();
    let state = c.get("/master/state").await;
    let placed: Vec<String> = state["frameworks"][0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == task_id.as_str())
        .expect("the task in /master/state")["placement"]["gpus"]
        .as_array()
        .expect("placed GPUs")
        .iter()
        .map(|g| g["uuid"].as_str().expect("uuid").to_string())
        .collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    let own: Value = c
        .agent_get(u16::try_from(port).expect("a port"), "/state")
        .send()
        .await
        .expect("agent /state")
        .json()
        .await
        .expect("JSON");
    assert!(
        own["gpu_metrics"]
            .as_str()
            .unwrap_or("")
            .contains("gpu-metrics.json"),
        "{}",
        own["gpu_metrics"]
    );

    // Every surface shows, for each of the task's GPUs, the fixture's figures.
    let check = |expected: BTreeMap<String, Shown>| {
        let c = &c;
        let task_id = task_id.clone();
        let agent_id = agent_id.clone();
        async move {
            eventually(
                Duration::from_secs(30),
                "the fixture's GPU readings on the agent, /metrics and /v2/tasks",
                || async {
                    let stats = agent_stats(c, port, &task_id).await?;
                    let text = c
                        .request(reqwest::Method::GET, "/metrics")
                        .send()
                        .await
                        .ok()?
                        .text()
                        .await
                        .ok()?;
                    let tasks = c.get("/v2/tasks?embed=tasks.gpuUsage").await;
                    let t = tasks["tasks"]
                        .as_array()?
                        .iter()
                        .find(|t| t["id"] == task_id.as_str())?
                        .clone();
                    let app_tasks = c.get("/v2/apps/train/tasks?embed=tasks.gpuUsage").await;
                    let at = app_tasks["tasks"].as_array()?.first()?.clone();
                    for (uuid, want) in &expected {
                        let on_agent = shown_in(
                            &stats,
                            uuid,
                            "gpu_util_percent",
                            "power_watts",
                            "xid_events",
                        )?;
                        let metric = |n: &str| sample(&text, n, &task_id, &agent_id, uuid);
                        let in_metrics = Shown {
                            util: metric("gantry_task_gpu_utilization_percent")?,
                            power: metric("gantry_task_gpu_power_watts")?,
                            xids: metric("gantry_task_gpu_xid_events_total")? as u64,
                        };
                        let marathon = |t: &Value| {
                            let list = t["gpuUsage"].as_array()?;
                            shown_in(list, uuid, "gpuUtilPercent", "powerWatts", "xidEvents")
                        };
                        let all = [
                            Some(on_agent),
                            Some(in_metrics),
                            marathon(&t),
                            marathon(&at),
                        ];
                        if all.iter().any(|s| s.as_ref() != Some(want)) {
                            return None;
                        }
                    }
                    Some((stats, text, t))
                },
            )
            .await
        }
    };
    let base = readings(&original);
    let expected = |r: &BTreeMap<String, Value>, xids: &[u64]| -> BTreeMap<String, Shown> {
        placed
            .iter()
            .zip(xids)
            .map(|(u, x)| {
                let g = &r[u];
                let shown = Shown {
                    util: g["gpu_util_percent"].as_f64().expect("util"),
                    power: g["power_watts"].as_f64().expect("power"),
                    xids: *x,
                };
                (u.clone(), shown)
            })
            .collect()
    };
    let (stats, text, t) = check(expected(&base, &[0, 0])).await;
    // The other figures are there too, and GPUs the task does not hold are not its.
    let first = stats
        .iter()
        .find(|g| g["uuid"] == placed[0].as_str())
        .expect("first GPU");
    assert_eq!(
        first["memory_used_bytes"],
        base[&placed[0]]["memory_used_bytes"]
    );
    assert_eq!(
        first["memory_total_bytes"],
        base[&placed[0]]["memory_total_bytes"]
    );
    assert_eq!(
        first["temperature_celsius"].as_f64(),
        base[&placed[0]]["temperature_celsius"].as_f64()
    );
    assert_eq!(stats.len(), 2, "only the task's own GPUs: {stats:?}");
    assert_eq!(
        text.matches(&format!(
            "gantry_task_gpu_temperature_celsius{{task=\"{task_id}\""
        ))
        .count(),
        2,
        "{text}"
    );
    let listed = t["gpuUsage"].as_array().expect("gpuUsage");
    assert_eq!(listed.len(), 2, "{t}");
    assert!(
        listed[0]["sampledAt"].as_str().unwrap_or("").ends_with('Z'),
        "{t}"
    );

    // Without the embed, the task JSON has no key marathon-python 0.13.0 would reject.
    let plain = c.get("/v2/tasks").await;
    let plain_task = plain["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|x| x["id"] == task_id.as_str())
        .expect("the task");
    assert!(plain_task.get("gpuUsage").is_none(), "{plain_task}");
    let app = c.get("/v2/apps/train").await;
    assert!(app["app"]["tasks"][0].get("gpuUsage").is_none(), "{app}");
    let embedded = c.get("/v2/apps/train?embed=tasks.gpuUsage").await;
    assert_eq!(
        embedded["app"]["tasks"][0]["gpuUsage"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{embedded}"
    );

    // Rewrite the file: new figures for every GPU, two XIDs on the task's first GPU and one on a
    // GPU it does not hold.
    let mut changed = original.clone();
    let other = base
        .keys()
        .find(|u| !placed.contains(u))
        .expect("a GPU the task does not hold")
        .clone();
    for g in changed["gpus"].as_array_mut().expect("gpus") {
        let util = g["gpu_util_percent"].as_f64().unwrap_or(0.0);
        g["gpu_util_percent"] = json!(100.0 - util);
        g["power_watts"] = json!(g["power_watts"].as_f64().unwrap_or(0.0) + 0.25);
        if g["uuid"] == placed[0].as_str() {
            g["xids"] = json!([13, 43]);
        }
        if g["uuid"] == other.as_str() {
            g["xids"] = json!([31]);
        }
    }
    write_metrics(&metrics_file, &changed);
    let (stats, _, t) = check(expected(&readings(&changed), &[2, 0])).await;
    let first = stats
        .iter()
        .find(|g| g["uuid"] == placed[0].as_str())
        .expect("first GPU");
    assert_eq!(first["xids"], json!([13, 43]));
    let listed = t["gpuUsage"].as_array().expect("gpuUsage");
    let marathon_first = listed
        .iter()
        .find(|g| g["uuid"] == placed[0].as_str())
        .expect("first GPU");
    assert_eq!(marathon_first["xids"], json!([13, 43]));

    let r = c
        .request(reqwest::Method::DELETE, "/v2/apps/train")
        .send()
        .await
        .expect("DELETE");
    assert!(r.status().is_success());
}
