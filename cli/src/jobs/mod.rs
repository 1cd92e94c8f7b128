//! `gantry jobs`: Chronos jobs through the master's Chronos API (`/v1/scheduler/...`, docs/jobs.md):
//! submit a job JSON file or one built from flags, list them with their next run, show one, run
//! it now, kill its tasks, delete it, its run history, and the output of its latest run's task.

mod format;

use crate::client::Client;
use crate::logs::{encode_segment, print_task_log, LogOptions, Stream};
use crate::table::render;
use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `gantry jobs ...`.
#[derive(clap::Subcommand)]
pub enum JobsCommand {
    /// Create or replace jobs from a Chronos job JSON file (one job or an array), or from flags.
    Submit(Box<SubmitArgs>),
    /// List jobs: schedule, next run, last outcome and current state.
    #[command(alias = "ls")]
    List,
    /// Print a job's JSON as the master stores it.
    Show {
        /// The job's name.
        name: String,
    },
    /// Start a run of the job now.
    Run {
        /// The job's name.
        name: String,
        /// The arguments of this run (replace the job's own).
        #[arg(long)]
        arguments: Option<String>,
    },
    /// Kill the job's running tasks.
    Kill {
        /// The job's name.
        name: String,
    },
    /// Delete the job and its history (its dependents are rewired to its parents, as Chronos).
    #[command(alias = "rm")]
    Delete {
        /// The job's name.
        name: String,
    },
    /// The job's runs, oldest first, every attempt.
    History {
        /// The job's name.
        name: String,
    },
    /// Print the stdout (or --stderr) of the job's latest run, or of run --run ID.
    Log(JobLogArgs),
}

/// Flags of `gantry jobs submit`.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// A Chronos job JSON file, or "-" for standard input (not with --name).
    #[arg(conflicts_with = "name", required_unless_present = "name")]
    file: Option<PathBuf>,
    /// The job's name (builds the job from flags).
    #[arg(long)]
    name: Option<String>,
    /// The shell command to run.
    #[arg(long, requires = "name")]
    command: Option<String>,
    /// An ISO 8601 repeating interval, e.g. R/2030-01-01T00:00:00Z/P1D (default: run once now).
    #[arg(long, requires = "name", conflicts_with_all = ["cron", "parent"])]
    schedule: Option<String>,
    /// A cron expression (5 fields), e.g. "0 2 * * *".
    #[arg(long, requires = "name", conflicts_with = "parent")]
    cron: Option<String>,
    /// The IANA time zone of --schedule or --cron, e.g. Europe/Berlin.
    #[arg(long, requires = "name")]
    tz: Option<String>,
    /// Run after this job succeeds (repeat for several parents).
    #[arg(long, requires = "name")]
    parent: Vec<String>,
    #[arg(long, requires = "name")]
    cpus: Option<f64>,
    /// Memory in MiB.
    #[arg(long, requires = "name")]
    mem: Option<f64>,
    /// Disk in MiB.
    #[arg(long, requires = "name")]
    disk: Option<f64>,
    /// Whole GPUs per task.
    #[arg(long, requires = "name")]
    gpus: Option<u32>,
    /// Retries after a failed attempt.
    #[arg(long, requires = "name")]
    retries: Option<u32>,
    /// A Slurm-style array, e.g. 0-15%4.
    #[arg(long, requires = "name")]
    array: Option<String>,
    /// An environment variable NAME=VALUE (repeat for several).
    #[arg(long, requires = "name", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

/// Flags of `gantry jobs log`.
#[derive(clap::Args)]
pub struct JobLogArgs {
    /// The job's name.
    name: String,
    /// The run (the RUN column of `gantry jobs history`); its latest attempt.
    #[arg(long, value_name = "ID")]
    run: Option<u64>,
    /// The task's stderr instead of its stdout.
    #[arg(long)]
    stderr: bool,
    /// Keep printing until the task ends; wait for a run to start if none has.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
}

/// Runs one `gantry jobs` command.
pub async fn run(c: &Client, cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Submit(a) => submit(c, *a).await,
        JobsCommand::List => list(c).await,
        JobsCommand::Show { name } => {
            let job = c.get(&job_path(&name)).await?;
            println!("{}", pretty(&job));
            Ok(())
        }
        JobsCommand::Run { name, arguments } => {
            let query: Vec<(&str, String)> =
                arguments.iter().map(|a| ("arguments", a.clone())).collect();
            send(c, Method::PUT, &job_path(&name), &query, None).await?;
            done(c, &name, "run", format!("started a run of {name}"));
            Ok(())
        }
        JobsCommand::Kill { name } => {
            let path = format!("/v1/scheduler/task/kill/{}", encode_segment(&name));
            send(c, Method::DELETE, &path, &[], None).await?;
            done(c, &name, "kill", format!("killed the tasks of {name}"));
            Ok(())
        }
        JobsCommand::Delete { name } => {
            send(c, Method::DELETE, &job_path(&name), &[], None).await?;
            done(c, &name, "delete", format!("deleted {name}"));
            Ok(())
        }
        JobsCommand::History { name } => history(c, &name).await,
        JobsCommand::Log(a) => log(c, a).await,
    }
}

fn job_path(name: &str) -> String {
    format!("/v1/scheduler/job/{}", encode_segment(name))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The outcome of an action the API answers with 204: a line, or JSON with `--json`.
fn done(c: &Client, name: &str, action: &str, text: String) {
    c.print(&json!({"job": name, "action": action, "ok": true}), || text);
}

/// Sends a request; the JSON body of a 2xx answer (`null` for 204), else the API's message.
async fn send(
    c: &Client,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    Client::body(c.send(method, path, query, body).await?).await
}

/// The jobs a submit sends, in order: the file's job or jobs, or the one the flags describe.
fn jobs_to_submit(a: &SubmitArgs) -> anyhow::Result<Vec<Value>> {
    if let Some(f) = &a.file {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        let v: Value = serde_json::from_str(&text).context("the job file is not JSON")?;
        return match v {
            Value::Array(jobs) => Ok(jobs),
            Value::Object(_) => Ok(vec![v]),
            _ => bail!("the job file must hold a job object or an array of jobs"),
        };
    }
    let Some(name) = &a.name else {
        bail!("give a job JSON file, or --name and --command");
    };
    let Some(command) = &a.command else {
        bail!("--name needs --command");
    };
    let mut job = Map::new();
    job.insert("name".into(), json!(name));
    job.insert("command".into(), json!(command));
    if let Some(s) = &a.schedule {
        job.insert("schedule".into(), json!(s));
    }
    if let Some(cron) = &a.cron {
        job.insert("cron".into(), json!(cron));
    }
    if let Some(tz) = &a.tz {
        job.insert("scheduleTimeZone".into(), json!(tz));
    }
    if !a.parent.is_empty() {
        job.insert("parents".into(), json!(a.parent));
    }
    let numbers = [("cpus", a.cpus), ("mem", a.mem), ("disk", a.disk)];
    for (k, v) in numbers {
        if let Some(v) = v {
            job.insert(k.into(), json!(v));
        }
    }
    if let Some(g) = a.gpus {
        job.insert("gpus".into(), json!(g));
    }
    if let Some(r) = a.retries {
        job.insert("retries".into(), json!(r));
    }
    if let Some(s) = &a.array {
        job.insert("array".into(), json!(s));
    }
    if !a.env.is_empty() {
        let mut vars = Vec::new();
        for e in &a.env {
            let Some((k, v)) = e.split_once('=') else {
                bail!("--env {e}: give NAME=VALUE");
            };
            vars.push(json!({"name": k, "value": v}));
        }
        job.insert("environmentVariables".into(), Value::Array(vars));
    }
    Ok(vec![Value::Object(job)])
}

/// Chronos's endpoint for a job: `/dependency` when it has parents, else `/iso8601`.
fn endpoint(job: &Value) -> &'static str {
    let given = |k: &str| !job[k].is_null();
    if given("parents") || given("dependencies") {
        "/v1/scheduler/dependency"
    } else {
        "/v1/scheduler/iso8601"
    }
}

async fn submit(c: &Client, a: SubmitArgs) -> anyhow::Result<()> {
    let jobs = jobs_to_submit(&a)?;
    let mut stored = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let Some(name) = job["name"].as_str() else {
            bail!("job {} of the file has no \"name\"", i + 1);
        };
        send(c, Method::POST, endpoint(job), &[], Some(job))
            .await
            .with_context(|| format!("the master refused job {name}"))?;
        let back = c.get(&job_path(name)).await?;
        if !c.json_output() {
            println!("stored {name}:\n{}", pretty(&back));
        }
        stored.push(back);
    }
    if c.json_output() {
        let out = match (a.file.is_some(), stored.len()) {
            (false, 1) => stored.swap_remove(0),
            _ => Value::Array(stored),
        };
        println!("{}", pretty(&out));
    }
    Ok(())
}

async fn list(c: &Client) -> anyhow::Result<()> {
    let jobs = c.get("/v1/scheduler/jobs").await?;
    if c.json_output() {
        println!("{}", pretty(&jobs));
        return Ok(());
    }
    let summary = c.get("/v1/scheduler/jobs/summary").await?;
    let state_of = |name: &str| -> String {
        summary["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j["name"] == name)
            .and_then(|j| j["state"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = jobs
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            let name = j["name"].as_str().unwrap_or("");
            let state = if j["disabled"].as_bool() == Some(true) {
                "disabled".to_string()
            } else {
                state_of(name)
            };
            vec![
                name.to_string(),
                format::schedule_text(j),
                format::next_run_text(j, now),
                format::last_state(j),
                state,
            ]
        })
        .collect();
    println!(
        "{}",
        render(&["NAME", "SCHEDULE", "NEXT RUN", "LAST", "STATE"], &rows)
    );
    Ok(())
}

async fn runs(c: &Client, name: &str) -> anyhow::Result<Value> {
    c.get(&format!("{}/runs", job_path(name))).await
}

async fn history(c: &Client, name: &str) -> anyhow::Result<()> {
    let v = runs(c, name).await?;
    c.print(&v, || {
        let rows: Vec<Vec<String>> = v["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(format::history_row)
            .collect();
        render(
            &[
                "RUN",
                "ATTEMPT",
                "TRIGGER",
                "SCHEDULED",
                "STARTED",
                "DURATION",
                "STATE",
                "EXIT",
                "TASK",
            ],
            &rows,
        )
    });
    Ok(())
}

/// What `gantry jobs log` reads.
#[derive(Debug, PartialEq)]
enum Pick {
    /// This task's output.
    Task(String),
    /// The run is queued: its task is not launched yet.
    Wait,
    /// No such run, or no run with a task.
    Nothing(String),
}

/// The task to read: with `run`, its latest attempt (highest attempt id); otherwise the latest
/// attempt with a task, except that with `follow` a newer queued run is waited for.
fn pick(runs: &Value, job: &str, run: Option<u64>, follow: bool) -> Pick {
    let all: Vec<&Value> = runs["runs"].as_array().into_iter().flatten().collect();
    let id = |r: &&Value| r["id"].as_u64().unwrap_or(0);
    let task = |r: &Value| r["taskId"].as_str().map(String::from);
    let queued = |r: &Value| r["state"] == "queued";
    if let Some(n) = run {
        let of_run: Vec<&Value> = all
            .iter()
            .copied()
            .filter(|r| r["run"].as_u64() == Some(n))
            .collect();
        return match of_run.iter().copied().max_by_key(id) {
            None => Pick::Nothing(format!("job {job} has no run {n}")),
            Some(r) => match task(r) {
                Some(t) => Pick::Task(t),
                None if follow && queued(r) => Pick::Wait,
                None => Pick::Nothing(format!("run {n} of {job} has no task yet")),
            },
        };
    }
    if follow {
        if let Some(latest) = all.iter().copied().max_by_key(id) {
            if task(latest).is_none() && queued(latest) {
                return Pick::Wait;
            }
        }
    }
    match all
        .iter()
        .copied()
        .filter(|r| r["taskId"].is_string())
        .max_by_key(id)
        .and_then(task)
    {
        Some(t) => Pick::Task(t),
        None if follow => Pick::Wait,
        None => Pick::Nothing(format!(
            "job {job} has no run with a task yet (--follow waits for one)"
        )),
    }
}

async fn log(c: &Client, a: JobLogArgs) -> anyhow::Result<()> {
    let mut said_waiting = false;
    let task = loop {
        let v = runs(c, &a.name).await?;
        match pick(&v, &a.name, a.run, a.follow) {
            Pick::Task(t) => break t,
            Pick::Nothing(why) => bail!("{why}"),
            Pick::Wait => {}
        }
        if !said_waiting {
            eprintln!("waiting for a run of {} to start...", a.name);
            said_waiting = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let opts = LogOptions {
        stream: if a.stderr {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        follow: a.follow,
        tail: a.tail,
    };
    print_task_log(c, &task, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependent_jobs_go_to_the_dependency_endpoint() {
        assert_eq!(endpoint(&json!({"name": "a"})), "/v1/scheduler/iso8601");
        assert_eq!(
            endpoint(&json!({"name": "a", "parents": ["b"]})),
            "/v1/scheduler/dependency"
        );
        assert_eq!(
            endpoint(&json!({"name": "a", "dependencies": [{"job": "b"}]})),
            "/v1/scheduler/dependency"
        );
    }

    #[test]
    fn the_latest_attempt_with_a_task() {
        let runs = json!({"runs": [
            {"id": 1, "run": 1, "state": "failed", "taskId": "ct:1:0:j:"},
            {"id": 2, "run": 1, "state": "succeeded", "taskId": "ct:1:1:j:"},
            {"id": 3, "run": 3, "state": "queued", "taskId": null},
        ]});
        let task = |t: &str| Pick::Task(t.to_string());
        assert_eq!(pick(&runs, "j", None, false), task("ct:1:1:j:"));
        assert_eq!(pick(&runs, "j", Some(1), true), task("ct:1:1:j:"));
        assert_eq!(pick(&runs, "j", None, true), Pick::Wait);
        assert_eq!(pick(&runs, "j", Some(3), true), Pick::Wait);
        assert!(matches!(pick(&runs, "j", Some(3), false), Pick::Nothing(_)));
        assert!(matches!(pick(&runs, "j", Some(9), true), Pick::Nothing(_)));
        let none = json!({"runs": []});
        assert_eq!(pick(&none, "j", None, true), Pick::Wait);
        assert!(matches!(pick(&none, "j", None, false), Pick::Nothing(_)));
    }
}
