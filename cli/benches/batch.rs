//! Batch jobs on one agent (issue 9's list), each part on a fresh master and agent (a release
//! gantry-masterd and gantry-agentd, the native containerizer when run as root, the agent
//! advertising `cpus:64;mem:65536;disk:100000` so placement never waits), all jobs `true` with
//! cpus 0.01, mem 8 and disk 1 (not Chronos's default 256 MB, which would let only 390 run at
//! once on the agent), submitted through the Chronos API by 16 parallel HTTP clients:
//!
//! (a) one-off: `GANTRY_BENCH_JOBS` (default 1000) jobs without a schedule (run once now), from the
//!     first submit to every job's `successCount` 1 (polling `GET /v1/scheduler/jobs`), as jobs/s,
//!     with the submit time alone; then Slurm's figure (support/slurm.rs, `sbatch --wrap=true`) for
//!     `GANTRY_BENCH_SLURM_JOBS` (default 50) jobs, as Debian's default Slurm runs about one job in
//!     3 s (0: Slurm is not run).
//! (b) array: one job with `array: "0-999"`, from submit to its `successCount` 1 (the array run's
//!     one verdict), as tasks/s.
//! (c) every minute: 1,000 jobs `R/<a whole minute>/PT1M`; for two slots (2,000 runs), the lag
//!     from `scheduledAt` to `launchedAt` (the launch command) and to `startedAt` (TASK_RUNNING),
//!     p50/p99/max, from each job's `GET /v1/scheduler/job/{name}/runs`.
//! (d) store writes per run of (a): SQLite transactions (`gantry_store_apply_seconds_count` on the
//!     master's Prometheus `/metrics`) per finished run, including the submit, and the bytes
//!     written (growth of gantry.db + WAL; the master's `write_bytes` from /proc); and the CPU
//!     time per run of the master and of the agent with everything it reaped (launchers, inits,
//!     tasks), from /proc/<pid>/stat.
//!
//! (e) the floor: the same `GANTRY_BENCH_JOBS` jobs of `true` with no scheduler at all, each in
//!     a cgroup of every v1 hierarchy the native containerizer uses and in new pid, mount, ipc
//!     and uts namespaces, 16 at once (support/container_floor.py: `unshare -pmiuf /bin/sh -c
//!     true`): what one container per job costs on this machine before Gantry does anything.
//!
//! `GANTRY_BENCH_PARTS=a,b,c,d,e` picks the parts (default all; d runs (a)'s jobs without printing
//! (a)'s line when a is left out). Slurm is skipped, saying why, when it is not installed.
//! `GANTRY_BENCH_DIR` puts the cluster's state (store, agent work dir, sandboxes) on another file
//! system than the temp dir's.
//! Run (as root): `cargo build --release --bins && cargo bench -p gantry-cli --bench batch`

mod support;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::gantry::GantryCluster;
use support::slurm::{SlurmCluster, Submit};

/// What the one agent advertises.
const AGENT_RESOURCES: &str = "cpus:64;mem:65536;disk:100000";
/// HTTP clients submitting (and reading histories) at once.
const PARALLEL: usize = 16;
/// How often progress is polled.
const POLL: Duration = Duration::from_millis(100);
/// The longest a part waits for its runs.
const DEADLINE: Duration = Duration::from_secs(900);
/// Jobs of (c), and its slots measured.
const MINUTE_JOBS: usize = 1000;
const MINUTE_SLOTS: i64 = 2;
/// Elements of (b)'s array.
const ARRAY_TASKS: usize = 1000;

fn env_usize(key: &str, default: usize) -> Result<usize> {
    match std::env::var(key) {
        Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("{key}={v:?}: {e}")),
        Err(_) => Ok(default),
    }
}

/// A trivial job as the Chronos API takes it.
fn job(name: &str, extra: Value) -> Value {
    let mut v = json!({"name": name, "command": "true", "cpus": 0.01, "mem": 8, "disk": 1,
                       "owner": "bench@example.com"});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// Runs `f(cluster, i)` for i in 0..n, at most [`PARALLEL`] at once; the results in order.
async fn parallel<T, F, Fut>(c: &Arc<GantryCluster>, n: usize, f: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Arc<GantryCluster>, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..PARALLEL.min(n) {
        let (c, next, f) = (c.clone(), next.clone(), f.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(out);
                }
                out.push((i, f(c.clone(), i).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Submits `bodies` to `POST /v1/scheduler/iso8601`, [`PARALLEL`] at once.
async fn submit_all(c: &Arc<GantryCluster>, bodies: Vec<Value>) -> Result<()> {
    let bodies = Arc::new(bodies);
    let n = bodies.len();
    parallel(c, n, move |c, i| {
        let bodies = bodies.clone();
        async move { c.post_json("/v1/scheduler/iso8601", &bodies[i]).await }
    })
    .await?;
    Ok(())
}

/// Polls `GET /v1/scheduler/jobs` until every job whose name starts with `prefix` has succeeded
/// once (`n` of them); fails on a job error.
async fn wait_all_succeeded(c: &GantryCluster, prefix: &str, n: usize) -> Result<()> {
    let start = Instant::now();
    loop {
        let jobs = c.get_json("/v1/scheduler/jobs").await?;
        let ours = jobs
            .as_array()
            .context("jobs is not an array")?
            .iter()
            .filter(|j| j["name"].as_str().is_some_and(|s| s.starts_with(prefix)));
        let (mut done, mut failed) = (0, 0);
        for j in ours {
            done += usize::from(j["successCount"].as_u64().unwrap_or(0) >= 1);
            failed += usize::from(j["errorCount"].as_u64().unwrap_or(0) >= 1);
        }
        if failed > 0 {
            bail!("{failed} of the {n} jobs failed");
        }
        if done >= n {
            return Ok(());
        }
        if start.elapsed() > DEADLINE {
            bail!("only {done} of {n} jobs succeeded in {DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What (a) measured, and the store figures (d) reports.
struct OneOff {
    jobs: usize,
    submit: Duration,
    total: Duration,
    transactions: u64,
    /// Seconds the store spent applying them.
    apply_secs: f64,
    store_growth: i64,
    write_bytes: Option<u64>,
    /// CPU seconds of the master, and of the agent with its containers, during the part.
    cpu: Option<(f64, f64)>,
}

async fn one_off(jobs: usize) -> Result<OneOff> {
    let c = Arc::new(GantryCluster::start(AGENT_RESOURCES).await?);
    let bodies: Vec<Value> = (0..jobs)
        .map(|i| job(&format!("oneoff-{i}"), json!({})))
        .collect();
    let tx_before = c.store_transactions().await?;
    let size_before = c.store_size() as i64;
    let written_before = c.master_write_bytes();
    let cpu_before = c.cpu_secs();
    let start = Instant::now();
    submit_all(&c, bodies).await?;
    let submit = start.elapsed();
    wait_all_succeeded(&c, "oneoff-", jobs).await?;
    let total = start.elapsed();
    // The end passes' writes are applied before the verdict shows, so nothing is left pending.
    let tx_after = c.store_transactions().await?;
    // The agent's children are counted once reaped: give the last inits a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_before
        .zip(c.cpu_secs())
        .map(|((m0, a0), (m1, a1))| (m1 - m0, a1 - a0));
    Ok(OneOff {
        cpu,
        jobs,
        submit,
        total,
        transactions: tx_after.0 - tx_before.0,
        apply_secs: tx_after.1 - tx_before.1,
        store_growth: c.store_size() as i64 - size_before,
        write_bytes: written_before
            .zip(c.master_write_bytes())
            .map(|(a, b)| b - a),
    })
}

/// Part (e): runs support/container_floor.py; (jobs, seconds, jobs/s, CPU ms per job).
fn container_floor(jobs: usize) -> Result<(usize, f64, f64, f64)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/support/container_floor.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(jobs.to_string())
        .arg("16")
        .output()
        .context("run python3 container_floor.py")?;
    if !out.status.success() {
        bail!(
            "container_floor.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    match f.as_slice() {
        [n, secs, per_s, cpu] => Ok((n.parse()?, secs.parse()?, per_s.parse()?, cpu.parse()?)),
        _ => bail!("container_floor.py printed {text:?}"),
    }
}

/// Slurm's jobs/s for `jobs` sequential `sbatch --wrap=true`, with its version.
fn slurm_peer(jobs: usize) -> Result<(String, f64)> {
    support::slurm::check_installed()?;
    let mut slurm = SlurmCluster::start()?;
    // "slurm-wlm 22.05.8" -> "slurm 22.05.8"
    let version = slurm.version.replace("slurm-wlm", "slurm");
    let t = slurm.submit_and_wait(jobs, Submit::Sequential)?;
    Ok((version, t.jobs_per_s()))
}

async fn array() -> Result<(Duration, Duration)> {
    let c = Arc::new(GantryCluster::start(AGENT_RESOURCES).await?);
    let body = job("array", json!({"array": format!("0-{}", ARRAY_TASKS - 1)}));
    let start = Instant::now();
    c.post_json("/v1/scheduler/iso8601", &body).await?;
    let submit = start.elapsed();
    loop {
        let j = c.get_json("/v1/scheduler/job/array").await?;
        if j["successCount"].as_u64().unwrap_or(0) >= 1 {
            return Ok((submit, start.elapsed()));
        }
        if j["errorCount"].as_u64().unwrap_or(0) >= 1 {
            bail!("the array run failed");
        }
        if start.elapsed() > DEADLINE {
            bail!("the array run did not finish in {DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Lags of (c), seconds: (to launchedAt, to startedAt), and how many runs had no startedAt.
struct Lags {
    launched: Vec<f64>,
    started: Vec<f64>,
    no_start: usize,
    submit: Duration,
    first_slot: DateTime<Utc>,
}

/// The runs of `jobs` jobs for `slots` slots from `first`, once all of them ended: each run's
/// (scheduledAt, launchedAt, startedAt).
type Run = (DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

async fn slot_runs(
    c: &Arc<GantryCluster>,
    jobs: usize,
    slots: Vec<DateTime<Utc>>,
) -> Result<Option<Vec<Run>>> {
    let slots = Arc::new(slots);
    let per_job = parallel(c, jobs, move |c, i| {
        let slots = slots.clone();
        async move {
            let v = c
                .get_json(&format!("/v1/scheduler/job/minute-{i}/runs"))
                .await?;
            let mut out = Vec::new();
            for r in v["runs"].as_array().into_iter().flatten() {
                let Some(at) = parse_time(&r["scheduledAt"]) else {
                    continue;
                };
                if !slots.contains(&at) {
                    continue;
                }
                if r["endedAt"].is_null() {
                    return Ok(None);
                }
                out.push((
                    at,
                    parse_time(&r["launchedAt"]),
                    parse_time(&r["startedAt"]),
                ));
            }
            Ok((out.len() == slots.len()).then_some(out))
        }
    })
    .await?;
    Ok(per_job
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(|v| v.into_iter().flatten().collect()))
}

async fn every_minute() -> Result<Lags> {
    let c = Arc::new(GantryCluster::start(AGENT_RESOURCES).await?);
    // The first whole minute at least 30 s away, so every job is stored before its first slot.
    let first = (Utc::now() + ChronoDuration::seconds(30))
        .duration_trunc(ChronoDuration::minutes(1))?
        + ChronoDuration::minutes(1);
    let schedule = format!("R/{}/PT1M", first.format("%Y-%m-%dT%H:%M:%SZ"));
    let bodies: Vec<Value> = (0..MINUTE_JOBS)
        .map(|i| job(&format!("minute-{i}"), json!({"schedule": schedule})))
        .collect();
    let start = Instant::now();
    submit_all(&c, bodies).await?;
    let submit = start.elapsed();
    if Utc::now() >= first {
        bail!("submitting took {submit:?}, past the first slot {first}");
    }
    let slots: Vec<DateTime<Utc>> = (0..MINUTE_SLOTS)
        .map(|k| first + ChronoDuration::minutes(k))
        .collect();
    let last = *slots.last().context("no slots")?;
    let wait = (last + ChronoDuration::seconds(5) - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        if let Some(r) = slot_runs(&c, MINUTE_JOBS, slots.clone()).await? {
            break r;
        }
        if Instant::now() > deadline {
            bail!("the runs of the slots {slots:?} did not all end in time");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds() as f64 / 1000.0;
    let mut lags = Lags {
        launched: Vec::new(),
        started: Vec::new(),
        no_start: 0,
        submit,
        first_slot: first,
    };
    for (at, launched, started) in runs {
        if let Some(l) = launched {
            lags.launched.push(secs(at, l));
        }
        match started {
            Some(s) => lags.started.push(secs(at, s)),
            None => lags.no_start += 1,
        }
    }
    Ok(lags)
}

/// `p50 x s, p99 y s, max z s` of `v`.
fn percentiles(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    format!(
        "p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        at(0.50),
        at(0.99),
        v[v.len() - 1]
    )
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn main() -> Result<()> {
    let parts = std::env::var("GANTRY_BENCH_PARTS").unwrap_or_else(|_| "a,b,c,d,e".into());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    let jobs = env_usize("GANTRY_BENCH_JOBS", 1000)?;
    let slurm_jobs = env_usize("GANTRY_BENCH_SLURM_JOBS", 50)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    if part("a") || part("d") {
        let r = rt.block_on(one_off(jobs))?;
        let per_s = r.jobs as f64 / r.total.as_secs_f64();
        if part("a") {
            let peer = match (slurm_jobs > 0).then(|| slurm_peer(slurm_jobs)) {
                None => "; slurm not run (GANTRY_BENCH_SLURM_JOBS=0)".to_string(),
                Some(r) => match r {
                    Ok((version, slurm_per_s)) => format!(
                    "; {version}: {slurm_jobs} jobs (sbatch --wrap=true), {slurm_per_s:.1} jobs/s; \
                     gantry/slurm {:.0}x",
                    per_s / slurm_per_s
                ),
                    Err(e) => format!("; slurm skipped: {e:#}"),
                },
            };
            println!(
                "batch one-off: {} jobs on 1 agent: submit {:.1} s, all finished {:.1} s, \
                 {per_s:.0} jobs/s{peer}",
                r.jobs,
                r.submit.as_secs_f64(),
                r.total.as_secs_f64(),
            );
        }
        if part("d") {
            let written = r.write_bytes.map_or(String::new(), |w| {
                format!(
                    ", master wrote {} ({:.1} KiB per run)",
                    mib(w as f64),
                    w as f64 / 1024.0 / r.jobs as f64
                )
            });
            if let Some((master, agent)) = r.cpu {
                let per = |s: f64| s * 1000.0 / r.jobs as f64;
                println!(
                    "batch cpu per run: {} one-off runs: master {:.2} ms, agent with its \
                     containers and tasks {:.2} ms, {:.2} ms in all (2 cores: at most {:.0} \
                     runs/s)",
                    r.jobs,
                    per(master),
                    per(agent),
                    per(master + agent),
                    2000.0 / per(master + agent),
                );
            }
            println!(
                "batch store writes: {} one-off runs: {} transactions, {:.2} per run (submit \
                 included), applying them took {:.1} s of the {:.1} s; gantry.db+wal {:+.1} \
                 MiB{written}",
                r.jobs,
                r.transactions,
                r.transactions as f64 / r.jobs as f64,
                r.apply_secs,
                r.total.as_secs_f64(),
                r.store_growth as f64 / (1024.0 * 1024.0),
            );
        }
    }

    if part("e") {
        let (n, secs, per_s, cpu_ms) = container_floor(jobs)?;
        println!(
            "batch floor: {n} jobs of `true` in namespaces and cgroups, no scheduler (unshare \
             -pmiuf, 16 at once): {secs:.1} s, {per_s:.0} jobs/s, {cpu_ms:.2} ms CPU per job"
        );
    }

    if part("b") {
        let (submit, total) = rt.block_on(array())?;
        println!(
            "batch array: {ARRAY_TASKS} tasks (array 0-{}) on 1 agent: submit {:.3} s, \
             successCount 1 after {:.1} s, {:.0} tasks/s",
            ARRAY_TASKS - 1,
            submit.as_secs_f64(),
            total.as_secs_f64(),
            ARRAY_TASKS as f64 / total.as_secs_f64(),
        );
    }

    if part("c") {
        let mut l = rt.block_on(every_minute())?;
        let n = l.launched.len();
        println!(
            "batch every minute: {MINUTE_JOBS} jobs R/{}/PT1M (submit {:.1} s), {MINUTE_SLOTS} \
             slots, {n} runs: scheduledAt to launchedAt {}; to startedAt {}{}",
            l.first_slot.format("%H:%M:%SZ"),
            l.submit.as_secs_f64(),
            percentiles(&mut l.launched),
            percentiles(&mut l.started),
            if l.no_start > 0 {
                format!(" ({} runs without startedAt)", l.no_start)
            } else {
                String::new()
            },
        );
    }
    Ok(())
}
