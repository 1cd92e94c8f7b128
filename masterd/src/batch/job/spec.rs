//! From a job definition to what the scheduler and the agents use: the `gantry_jobs` graph node,
//! schedule and policies, and one run's Chronos task id and command (spec §2.4).

use chrono::{DateTime, Utc};
use gantry_jobs::{
    missed::DEFAULT_ALL_LIMIT, CatchUp, Dependency, DependencyMode, JobSpec, MissedRunPolicy,
    RetryPolicy, Schedule, ScheduleError,
};
use gantry_proto::{CommandInfo, FetchUri};
use std::collections::BTreeMap;

use super::model::{JobDefinition, Trigger};

/// Chronos's global `--failure_retry` (60 s), the delay when `retryDelaySeconds` is not given.
pub const DEFAULT_RETRY_DELAY_SECONDS: u64 = 60;

impl JobDefinition {
    /// The job as a node of the dependency graph: `parents` are afterok edges, then
    /// `dependencies`; `singleton` is `!concurrent`.
    pub fn job_spec(&self) -> JobSpec {
        let mode = match &self.trigger {
            Trigger::Dependent { mode, .. } => mode.unwrap_or_default(),
            _ => DependencyMode::All,
        };
        JobSpec {
            name: self.name.clone(),
            dependencies: self
                .parent_edges()
                .into_iter()
                .map(|(parent, kind)| Dependency { parent, kind })
                .collect(),
            mode,
            soft_error: self.soft_error,
            singleton: !self.concurrent,
        }
    }

    /// The parsed schedule; `None` for a dependent job. `submitted_at` must be the time the job
    /// was read (an empty ISO 8601 start, `R1//PT1H`, means one second before it).
    pub fn schedule(&self, submitted_at: DateTime<Utc>) -> Option<Result<Schedule, ScheduleError>> {
        match &self.trigger {
            Trigger::Iso8601 {
                schedule,
                time_zone,
            } => Some(Schedule::iso8601(schedule, Some(time_zone), submitted_at)),
            Trigger::Cron { cron, time_zone } => Some(Schedule::cron(cron, Some(time_zone))),
            Trigger::Dependent { .. } => None,
        }
    }

    /// `retries` with Gantry's `retryDelaySeconds`/`retryBackoffFactor`/`maxRetryDelaySeconds`.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            retry_delay_seconds: self
                .retry_delay_seconds
                .unwrap_or(DEFAULT_RETRY_DELAY_SECONDS),
            backoff_factor: self.retry_backoff_factor.unwrap_or(1.0),
            max_retry_delay_seconds: self.max_retry_delay_seconds,
        }
    }

    /// `missedRuns` with its defaults (Chronos 3.x: one catch-up run).
    pub fn missed_run_policy(&self) -> MissedRunPolicy {
        let m = self.missed_runs.unwrap_or_default();
        MissedRunPolicy {
            catch_up: m.catch_up.unwrap_or(CatchUp::One),
            all_limit: m.limit.unwrap_or(DEFAULT_ALL_LIMIT),
            starting_deadline_seconds: m.starting_deadline_seconds,
        }
    }
}

/// The parts of a Chronos task id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChronosTaskId {
    pub due_ms: i64,
    pub attempt: u32,
    pub job: String,
    /// The array index (Gantry's `#<index>` after the job name).
    pub array_index: Option<u32>,
    /// The arguments part (may be empty).
    pub arguments: String,
}

/// `ct:<dueMillis>:<attempt>:<jobName>[#<index>]:<arguments>` with `;` removed from the
/// arguments. The index uses `#`, which no job name contains, so ids stay unique per array task
/// and [`parse_task_id`] can split them however many `:` the arguments hold.
pub fn task_id(
    due_ms: i64,
    attempt: u32,
    job: &str,
    array_index: Option<u32>,
    arguments: &str,
) -> String {
    let args: String = arguments.chars().filter(|&c| c != ';').collect();
    match array_index {
        Some(i) => format!("ct:{due_ms}:{attempt}:{job}#{i}:{args}"),
        None => format!("ct:{due_ms}:{attempt}:{job}:{args}"),
    }
}

/// Split a task id made by [`task_id`] (or by Chronos, which has no `#<index>`).
pub fn parse_task_id(id: &str) -> Option<ChronosTaskId> {
    let rest = id.strip_prefix("ct:")?;
    let mut parts = rest.splitn(4, ':');
    let due_ms = parts.next()?.parse().ok()?;
    let attempt = parts.next()?.parse().ok()?;
    let name_part = parts.next()?;
    let arguments = parts.next().unwrap_or("").to_string();
    let (job, array_index) = match name_part.split_once('#') {
        Some((j, i)) => (j, Some(i.parse().ok()?)),
        None => (name_part, None),
    };
    if job.is_empty() {
        return None;
    }
    Some(ChronosTaskId {
        due_ms,
        attempt,
        job: job.to_string(),
        array_index,
        arguments,
    })
}

/// Java's `Double.toString` for the values Chronos puts in the environment (`128.0`, `0.1`).
fn java_double(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

/// The task id and command of one run of `job` (spec §2.4).
///
/// `arguments` is the manual run's `?arguments=` (else the job's `arguments`); `array_index` the
/// array task; `host` the agent's hostname (`HOST`). With `shell: true` the arguments (`;`
/// removed) are appended to the command after a space, as Chronos does; with `shell: false` the
/// argv is `[command, arguments...]` and the command is not touched (Chronos also appended them to
/// the command, doubling them). A command starting with `http`/`ftp` is fetched as an executable
/// and run as `./<basename>`. `runAsUser` `""` leaves the user to the agent.
pub fn run_command(
    job: &JobDefinition,
    due_ms: i64,
    attempt: u32,
    arguments: Option<&str>,
    array_index: Option<u32>,
    host: &str,
) -> (String, CommandInfo) {
    let args_text = match arguments {
        Some(a) => a.to_string(),
        None => job.arguments.join(" "),
    };
    let id = task_id(due_ms, attempt, &job.name, array_index, &args_text);
    let mut env = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        env.entry(k.to_string()).or_insert(v);
    };
    put("mesos_task_id", id.clone());
    put("MESOS_TASK_ID", id.clone());
    put("CHRONOS_JOB_OWNER", job.owner.clone());
    put("CHRONOS_JOB_NAME", job.name.clone());
    put("HOST", host.to_string());
    put("CHRONOS_RESOURCE_MEM", java_double(job.mem));
    put("CHRONOS_RESOURCE_CPU", java_double(job.cpus));
    put("CHRONOS_RESOURCE_DISK", java_double(job.disk));
    put("CHRONOS_JOB_RUN_TIME", due_ms.to_string());
    put("CHRONOS_JOB_RUN_ATTEMPT", attempt.to_string());
    if let (Some(array), Some(i)) = (&job.array, array_index) {
        put("GANTRY_ARRAY_INDEX", i.to_string());
        put("GANTRY_ARRAY_SIZE", array.size().to_string());
        put("SLURM_ARRAY_TASK_ID", i.to_string());
        put("SLURM_ARRAY_TASK_COUNT", array.size().to_string());
        put("SLURM_ARRAY_TASK_MIN", array.min().to_string());
        put("SLURM_ARRAY_TASK_MAX", array.max().to_string());
    }
    for e in &job.environment_variables {
        put(&e.name, e.value.clone());
    }
    let mut uris: Vec<FetchUri> = job
        .fetch
        .iter()
        .map(|f| FetchUri {
            uri: f.uri.clone(),
            extract: f.extract,
            executable: f.executable,
            cache: f.cache,
            dest_path: (!f.output_file.is_empty()).then(|| f.output_file.clone()),
        })
        .collect();
    for u in &job.uris {
        if !uris.iter().any(|f| f.uri == *u) {
            uris.push(FetchUri {
                uri: u.clone(),
                extract: true,
                executable: false,
                cache: false,
                dest_path: None,
            });
        }
    }
    let mut command = job.command.clone();
    if command.starts_with("http") || command.starts_with("ftp") {
        let base = command.rsplit('/').next().unwrap_or_default().to_string();
        uris.push(FetchUri {
            uri: command.clone(),
            extract: false,
            executable: true,
            cache: false,
            dest_path: None,
        });
        command = format!("./{base}");
    }
    let (value, argv) = if job.shell {
        let args: String = args_text.chars().filter(|&c| c != ';').collect();
        if args.is_empty() {
            (command, Vec::new())
        } else {
            (format!("{command} {args}"), Vec::new())
        }
    } else {
        let rest: Vec<String> = match arguments {
            Some(a) => a.split_whitespace().map(str::to_string).collect(),
            None => job.arguments.clone(),
        };
        let argv = std::iter::once(command.clone()).chain(rest).collect();
        (command, argv)
    };
    let info = CommandInfo {
        value: Some(value),
        arguments: argv,
        shell: job.shell,
        environment: env,
        user: (!job.run_as_user.is_empty()).then(|| job.run_as_user.clone()),
        uris,
    };
    (id, info)
}
