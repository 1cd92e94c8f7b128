//! Issue 16's service figures on two local agents (release gantry-masterd and gantry-agentd, the
//! native containerizer when run as root, each agent advertising `cpus:64;mem:65536;disk:100000`
//! and its own port range): one app of `sleep 3600` (cpus 0.01, mem 8, no ports) created at 0
//! instances, then
//! (a) scale 0 → `GANTRY_BENCH_INSTANCES` (default 500) with one PUT, timed until every instance
//!     is TASK_RUNNING and the deployment is gone;
//! (b) a rolling replace of all of them (a new `cmd`, Marathon's default upgradeStrategy
//!     {minimumHealthCapacity 1, maximumOverCapacity 1}), timed until every task runs the new
//!     version and the deployment is gone, with the least number of running instances seen
//!     (polled every 100 ms; it must never go under the app's instances);
//! then the app is deleted and the bench waits for its tasks to end. Prints the master's and
//! agents' resident memory at the end of (b).
//! Run (as root): `cargo build --release --bins && cargo bench -p gantry-cli --bench marathon_scale`

mod support;

use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gantry::GantryCluster;

const APP: &str = "/bench-scale";
const POLL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(900);

/// (running tasks of `version`, all running tasks, deployments on the app).
async fn progress(c: &GantryCluster, version: Option<&str>) -> Result<(usize, usize, usize)> {
    let v = c
        .get_json(&format!("/v2/apps{APP}?embed=app.tasks"))
        .await?;
    let app = &v["app"];
    let tasks = app["tasks"].as_array().cloned().unwrap_or_default();
    let running: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .collect();
    let of_version = running
        .iter()
        .filter(|t| version.is_none_or(|want| t["version"] == want))
        .count();
    let deployments = app["deployments"].as_array().map_or(0, Vec::len);
    Ok((of_version, running.len(), deployments))
}

/// Polls until `n` tasks of `version` run and no deployment is left; the seconds it took and
/// the least number of running tasks seen on the way.
async fn until_done(
    c: &GantryCluster,
    n: usize,
    version: Option<&str>,
    start: Instant,
) -> Result<(f64, usize)> {
    let mut least = usize::MAX;
    loop {
        let (mine, running, deployments) = progress(c, version).await?;
        least = least.min(running);
        if mine >= n && deployments == 0 {
            return Ok((start.elapsed().as_secs_f64(), least));
        }
        if start.elapsed() > DEADLINE {
            bail!("after {DEADLINE:?}: {mine} of {n} running, {deployments} deployments");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("GANTRY_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let c = GantryCluster::start_agents(&[
        "cpus:64;mem:65536;disk:100000;ports:[31000-31999]",
        "cpus:64;mem:65536;disk:100000;ports:[32000-32999]",
    ])
    .await?;
    let app = json!({
        "id": APP, "cmd": "sleep 3600", "cpus": 0.01, "mem": 8, "disk": 0,
        "instances": 0, "portDefinitions": []
    });
    c.post_json("/v2/apps", &app).await?;
    until_done(&c, 0, None, Instant::now()).await?;

    let start = Instant::now();
    c.send_json(
        Method::PUT,
        &format!("/v2/apps{APP}"),
        &json!({"instances": n}),
    )
    .await?;
    let (scale_s, _) = until_done(&c, n, None, start).await?;
    println!(
        "(a) scale 0 -> {n} instances on 2 agents: {scale_s:.1} s until all TASK_RUNNING ({:.0} tasks/s)",
        n as f64 / scale_s
    );

    let start = Instant::now();
    c.send_json(
        Method::PUT,
        &format!("/v2/apps{APP}"),
        &json!({"cmd": "sleep 3601", "instances": n}),
    )
    .await?;
    let version = c.get_json(&format!("/v2/apps{APP}")).await?["app"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (replace_s, least) = until_done(&c, n, Some(&version), start).await?;
    println!(
        "(b) rolling replace of {n}: {replace_s:.1} s until all run the new version; least running seen {least} (of {n})"
    );
    let (master, agents) = c.rss();
    let mib = |b: Option<u64>| {
        b.map_or("?".to_string(), |b| {
            format!("{:.0} MiB", b as f64 / 1048576.0)
        })
    };
    println!(
        "resident memory after (b): master {}, agents {}",
        mib(master),
        agents
            .into_iter()
            .map(mib)
            .collect::<Vec<_>>()
            .join(" and ")
    );

    c.request(Method::DELETE, &format!("/v2/apps{APP}"))
        .send()
        .await?;
    let start = Instant::now();
    loop {
        let tasks = c.get_json("/v2/tasks").await?;
        if tasks["tasks"].as_array().is_none_or(|t| t.is_empty()) {
            break;
        }
        if start.elapsed() > DEADLINE {
            bail!("the app's tasks never ended");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}
