//! Turning a Chronos request body into a validated [`JobDefinition`] (spec §1.2 rows 5–6, §2.1,
//! §3.1, §3.4 rows 21–22): Chronos's defaults and create-time rules, plus the checks Chronos
//! lacked (periods, zones, cron dates, resources, environment). The first error found is returned.

use chrono::{DateTime, SecondsFormat, Utc};
use gantry_gpu::NumaPolicy;
use gantry_jobs::{
    CatchUp, CronSchedule, DependencyKind, DependencyMode, Iso8601Error, Iso8601Schedule,
    RetryPolicy,
};
use serde_json::{Map, Value};

use super::array::JobArray;
use super::model::{
    DependencyInput, EnvironmentVariable, Gang, JobDefinition, JobError, MissedRuns, Trigger,
    DEFAULT_CPUS, DEFAULT_DISK, DEFAULT_MEM, DEFAULT_RETRIES, MAX_GANG_SIZE,
};
use super::read_container::{read_constraints, read_container, read_fetch};
use super::values::{
    array, clean_string, get, is_valid_name, number, object, opt_bool, opt_string, opt_unsigned,
    string, strings, unsigned, unsigned32,
};
use crate::services::app::limits::{MAX_CPUS, MAX_DISK_MIB, MAX_GPUS, MAX_MEM_MIB};

/// Which endpoint the body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/scheduler/iso8601`: a scheduled job (`schedule` or Gantry `cron`); neither given
    /// means "run once now" (`R1/<now>/PT24H`). `parents`/`dependencies` are refused.
    Iso8601,
    /// `POST /v1/scheduler/dependency`: a dependent job; needs a non-empty `parents` or
    /// `dependencies` (Chronos answered 500 on empty parents; Gantry answers 400).
    Dependency,
    /// Either kind, decided by the body (re-reading a stored job).
    Any,
}

/// Create (no job of that name exists) or update (one does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Chronos's create rules apply: the name must match `[\w.-]+`, the start must not be before
    /// 1970-01-01T00:00:01Z, `uris` and `fetch` may not both be given.
    Create,
    /// Chronos checked nothing but the schedule here; Gantry also keeps every rule that is not
    /// one of the three create-only rules.
    Update,
}

/// What the reader needs besides the body.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub endpoint: Endpoint,
    pub mode: Mode,
    /// The request time: the run-once-now schedule and an empty ISO 8601 start use it.
    pub now: DateTime<Utc>,
    /// `runAsUser` when the body gives none (see [`super::model::AGENT_DEFAULT_USER`]).
    pub default_user: &'a str,
}

/// The body as JSON, or 400 naming `body`.
pub fn parse_body(body: &[u8]) -> Result<Value, JobError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(JobError::new(
            "body",
            "is empty: send the job definition as a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| JobError::new("body", format!("invalid JSON: {e}")))
}

/// Read and validate a job body. Unknown fields (and Chronos 2.x's `epsilon`/`async`) are ignored.
pub fn read_job(body: &Value, ctx: &ReadContext) -> Result<JobDefinition, JobError> {
    let o = object(body, "body")?;
    let name = match get(o, "name") {
        Some(v) => string(v, "name")?,
        None => return Err(JobError::new("name", "is required")),
    };
    if ctx.mode == Mode::Create && !is_valid_name(&name) {
        return Err(JobError::new(
            "name",
            format!(
                "'{name}' is not a valid job name: use only letters, digits, '_', '.' and '-' \
                 (the whole name must match [\\w.-]+)"
            ),
        ));
    }
    let mut job = JobDefinition::with_defaults(&name, read_trigger(o, ctx)?, ctx.default_user);
    if let Some(c) = opt_string(o, "command")? {
        job.command = c;
    }
    if let Some(a) = get(o, "arguments") {
        job.arguments = strings(a, "arguments")?;
    }
    read_flags(o, &mut job)?;
    read_resources(o, &mut job)?;
    read_texts(o, &mut job)?;
    if let Some(v) = get(o, "environmentVariables") {
        job.environment_variables = read_env(v)?;
    }
    if let Some(v) = get(o, "fetch") {
        job.fetch = read_fetch(v)?;
    }
    if let Some(v) = get(o, "uris") {
        job.uris = strings(v, "uris")?;
    }
    if ctx.mode == Mode::Create && !job.uris.is_empty() && !job.fetch.is_empty() {
        return Err(JobError::new(
            "uris",
            "give either uris (deprecated) or fetch, not both",
        ));
    }
    if let Some(v) = get(o, "container") {
        job.container = read_container(v)?;
    }
    if let Some(v) = get(o, "constraints") {
        job.constraints = read_constraints(v)?;
    }
    read_extensions(o, &mut job)?;
    Ok(job)
}

fn read_flags(o: &Map<String, Value>, job: &mut JobDefinition) -> Result<(), JobError> {
    for (key, slot) in [
        ("shell", &mut job.shell),
        ("disabled", &mut job.disabled),
        ("concurrent", &mut job.concurrent),
        ("highPriority", &mut job.high_priority),
        ("softError", &mut job.soft_error),
        ("dataProcessingJobType", &mut job.data_processing_job_type),
    ] {
        if let Some(b) = opt_bool(o, key)? {
            *slot = b;
        }
    }
    if let Some(v) = get(o, "retries") {
        let n = number(v, "retries")?;
        if n < 0.0 {
            return Err(JobError::new("retries", "must not be negative"));
        }
        job.retries = unsigned32(v, "retries")?;
    } else {
        job.retries = DEFAULT_RETRIES;
    }
    for (key, slot) in [
        ("maxCompletionTime", &mut job.max_completion_time),
        ("successCount", &mut job.success_count),
        ("errorCount", &mut job.error_count),
        ("errorsSinceLastSuccess", &mut job.errors_since_last_success),
    ] {
        if let Some(n) = opt_unsigned(o, key)? {
            *slot = n;
        }
    }
    Ok(())
}

fn read_resources(o: &Map<String, Value>, job: &mut JobDefinition) -> Result<(), JobError> {
    for (key, slot, default, max) in [
        ("cpus", &mut job.cpus, DEFAULT_CPUS, MAX_CPUS),
        ("mem", &mut job.mem, DEFAULT_MEM, MAX_MEM_MIB),
        ("disk", &mut job.disk, DEFAULT_DISK, MAX_DISK_MIB),
    ] {
        let Some(v) = get(o, key) else { continue };
        let x = number(v, key)?;
        if x < 0.0 {
            return Err(JobError::new(key, "must not be negative"));
        }
        if x > max {
            return Err(JobError::new(key, format!("must be at most {max}")));
        }
        // Chronos: 0 means "not given", and the default is stored.
        *slot = if x == 0.0 { default } else { x };
    }
    Ok(())
}

fn read_texts(o: &Map<String, Value>, job: &mut JobDefinition) -> Result<(), JobError> {
    for (key, slot) in [
        ("owner", &mut job.owner),
        ("ownerName", &mut job.owner_name),
        ("description", &mut job.description),
        ("runAsUser", &mut job.run_as_user),
        ("executor", &mut job.executor),
        ("executorFlags", &mut job.executor_flags),
        ("taskInfoData", &mut job.task_info_data),
    ] {
        if let Some(s) = opt_string(o, key)? {
            *slot = s;
        }
    }
    for (key, slot) in [
        ("lastSuccess", &mut job.last_success),
        ("lastError", &mut job.last_error),
    ] {
        if let Some(s) = opt_string(o, key)? {
            if !s.is_empty() && DateTime::parse_from_rfc3339(&s).is_err() {
                return Err(JobError::new(
                    key,
                    format!("'{s}' is not an ISO 8601 time like 2014-03-08T16:57:17.507Z"),
                ));
            }
            *slot = s;
        }
    }
    Ok(())
}

fn read_env(v: &Value) -> Result<Vec<EnvironmentVariable>, JobError> {
    let mut out = Vec::new();
    for (i, item) in array(v, "environmentVariables")?.iter().enumerate() {
        let path = format!("environmentVariables[{i}]");
        let e = object(item, &path)?;
        let name = match get(e, "name") {
            Some(n) => clean_string(n, &format!("{path}.name"))?,
            None => return Err(JobError::new(format!("{path}.name"), "is required")),
        };
        if name.is_empty() || name.contains('=') {
            return Err(JobError::new(
                format!("{path}.name"),
                format!("'{name}' is not a variable name: it must be non-empty without '='"),
            ));
        }
        let value = match get(e, "value") {
            Some(v) => clean_string(v, &format!("{path}.value"))?,
            None => String::new(),
        };
        out.push(EnvironmentVariable { name, value });
    }
    Ok(out)
}

/// The schedule (or parents) part, checked against the endpoint.
fn read_trigger(o: &Map<String, Value>, ctx: &ReadContext) -> Result<Trigger, JobError> {
    let schedule = opt_string(o, "schedule")?;
    let cron = opt_string(o, "cron")?;
    let time_zone = opt_string(o, "scheduleTimeZone")?.unwrap_or_default();
    let parents = match get(o, "parents") {
        Some(v) => {
            let mut out: Vec<String> = Vec::new();
            for (i, p) in strings(v, "parents")?.into_iter().enumerate() {
                check_parent_name(&p, &format!("parents[{i}]"))?;
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            Some(out)
        }
        None => None,
    };
    let dependencies = get(o, "dependencies").map(read_dependencies).transpose()?;
    let mode = match get(o, "dependencyMode") {
        None => None,
        Some(v) => match string(v, "dependencyMode")?.as_str() {
            "all" => Some(DependencyMode::All),
            "any" => Some(DependencyMode::Any),
            other => {
                return Err(JobError::new(
                    "dependencyMode",
                    format!("'{other}' must be 'all' or 'any'"),
                ))
            }
        },
    };
    let has_parents = parents.as_ref().is_some_and(|p| !p.is_empty())
        || dependencies.as_ref().is_some_and(|d| !d.is_empty());
    let scheduled = schedule.is_some() || cron.is_some();
    if schedule.is_some() && cron.is_some() {
        return Err(JobError::new(
            "cron",
            "give either schedule (ISO 8601) or cron, not both",
        ));
    }
    if has_parents && scheduled {
        let field = if schedule.is_some() {
            "schedule"
        } else {
            "cron"
        };
        return Err(JobError::new(
            field,
            "a job has either a schedule or parents/dependencies, not both",
        ));
    }
    let dependent = match ctx.endpoint {
        Endpoint::Iso8601 if has_parents => {
            return Err(JobError::new(
                "parents",
                "jobs with parents or dependencies go to /v1/scheduler/dependency",
            ))
        }
        Endpoint::Iso8601 => false,
        Endpoint::Dependency if !has_parents => {
            let field = if scheduled { "schedule" } else { "parents" };
            return Err(JobError::new(
                field,
                "a dependent job needs at least one parent in parents or dependencies \
                 (scheduled jobs go to /v1/scheduler/iso8601)",
            ));
        }
        Endpoint::Dependency => true,
        Endpoint::Any => has_parents,
    };
    if dependent {
        if let Some(deps) = &dependencies {
            check_edges(parents.as_deref().unwrap_or_default(), deps)?;
        }
        return Ok(Trigger::Dependent {
            parents: parents.unwrap_or_default(),
            dependencies,
            mode,
        });
    }
    if mode.is_some() {
        return Err(JobError::new(
            "dependencyMode",
            "only applies to jobs with parents or dependencies",
        ));
    }
    if let Some(expr) = cron {
        CronSchedule::parse(&expr, Some(&time_zone)).map_err(|e| match e {
            gantry_jobs::CronError::Zone(z) => JobError::new("scheduleTimeZone", z.to_string()),
            other => JobError::new("cron", other.to_string()),
        })?;
        return Ok(Trigger::Cron {
            cron: expr,
            time_zone,
        });
    }
    let schedule = schedule.unwrap_or_else(|| {
        let now = ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true);
        format!("R1/{now}/PT24H")
    });
    check_iso8601(&schedule, &time_zone, ctx)?;
    Ok(Trigger::Iso8601 {
        schedule,
        time_zone,
    })
}

/// Parse the schedule as the controller will; on create also apply the 1970 rule.
fn check_iso8601(schedule: &str, time_zone: &str, ctx: &ReadContext) -> Result<(), JobError> {
    let to_error = |e: Iso8601Error| match e {
        Iso8601Error::Zone(z) => JobError::new("scheduleTimeZone", z.to_string()),
        Iso8601Error::StartBefore1970 { .. } => JobError::new(
            "schedule",
            format!("Cannot parse schedule '{schedule}': the start is before 1970-01-01T00:00:01Z"),
        ),
        other => JobError::new(
            "schedule",
            format!("Cannot parse schedule '{schedule}': {other}"),
        ),
    };
    let parsed = Iso8601Schedule::parse(schedule, Some(time_zone), ctx.now).map_err(to_error)?;
    if ctx.mode == Mode::Create {
        parsed.check_create().map_err(to_error)?;
    }
    Ok(())
}

fn check_parent_name(name: &str, field: &str) -> Result<(), JobError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(JobError::new(
            field,
            format!("'{name}' is not a job name (names match [\\w.-]+)"),
        ))
    }
}

fn read_dependencies(v: &Value) -> Result<Vec<DependencyInput>, JobError> {
    let mut out = Vec::new();
    for (i, item) in array(v, "dependencies")?.iter().enumerate() {
        let path = format!("dependencies[{i}]");
        let d = object(item, &path)?;
        let job = match get(d, "job") {
            Some(j) => string(j, &format!("{path}.job"))?,
            None => return Err(JobError::new(format!("{path}.job"), "is required")),
        };
        check_parent_name(&job, &format!("{path}.job"))?;
        let kind = match get(d, "type") {
            None => None,
            Some(t) => Some(match string(t, &format!("{path}.type"))?.as_str() {
                "afterok" => DependencyKind::AfterOk,
                "afterany" => DependencyKind::AfterAny,
                "afternotok" => DependencyKind::AfterNotOk,
                other => {
                    return Err(JobError::new(
                        format!("{path}.type"),
                        format!("'{other}' must be afterok, afterany or afternotok"),
                    ))
                }
            }),
        };
        out.push(DependencyInput { job, kind });
    }
    Ok(out)
}

/// A parent given twice must be given with the same kind (`parents` entries are afterok).
fn check_edges(parents: &[String], deps: &[DependencyInput]) -> Result<(), JobError> {
    let mut seen: Vec<(&str, DependencyKind)> = parents
        .iter()
        .map(|p| (p.as_str(), DependencyKind::AfterOk))
        .collect();
    for (i, d) in deps.iter().enumerate() {
        let kind = d.effective_kind();
        match seen.iter().find(|(n, _)| *n == d.job) {
            Some((_, k)) if *k != kind => {
                return Err(JobError::new(
                    format!("dependencies[{i}]"),
                    format!("'{}' is already a parent with type {k}", d.job),
                ))
            }
            Some(_) => {}
            None => seen.push((&d.job, kind)),
        }
    }
    Ok(())
}

fn read_extensions(o: &Map<String, Value>, job: &mut JobDefinition) -> Result<(), JobError> {
    if let Some(v) = get(o, "gpus") {
        let n = unsigned32(v, "gpus")?;
        if n > MAX_GPUS {
            return Err(JobError::new("gpus", format!("must be at most {MAX_GPUS}")));
        }
        job.gpus = Some(n);
    }
    if let Some(v) = get(o, "numaPolicy") {
        let s = string(v, "numaPolicy")?;
        job.numa_policy = Some(
            serde_json::from_value::<NumaPolicy>(Value::String(s.clone())).map_err(|_| {
                JobError::new(
                    "numaPolicy",
                    format!("'{s}' must be none, prefer or require"),
                )
            })?,
        );
    }
    if let Some(v) = get(o, "gpuProfile") {
        let p = string(v, "gpuProfile")?;
        if let Some(why) = crate::services::app::gpu_profile_issue(&p, job.gpus.unwrap_or(0)) {
            return Err(JobError::new("gpuProfile", why));
        }
        job.gpu_profile = Some(p);
    }
    if let Some(v) = get(o, "missedRuns") {
        job.missed_runs = Some(read_missed_runs(v)?);
    }
    job.retry_delay_seconds = opt_unsigned(o, "retryDelaySeconds")?;
    job.max_retry_delay_seconds = opt_unsigned(o, "maxRetryDelaySeconds")?;
    if let Some(v) = get(o, "retryBackoffFactor") {
        job.retry_backoff_factor = Some(number(v, "retryBackoffFactor")?);
    }
    let policy = RetryPolicy {
        retries: job.retries,
        retry_delay_seconds: job.retry_delay_seconds.unwrap_or(60),
        backoff_factor: job.retry_backoff_factor.unwrap_or(1.0),
        max_retry_delay_seconds: job.max_retry_delay_seconds,
    };
    policy.validate().map_err(|e| match e {
        gantry_jobs::RetryError::BackoffFactor { value } => JobError::new(
            "retryBackoffFactor",
            format!("{value} must be a number of at least 1"),
        ),
        gantry_jobs::RetryError::MaxDelay { max, delay } => JobError::new(
            "maxRetryDelaySeconds",
            format!("{max} is below the retry delay of {delay} seconds"),
        ),
    })?;
    if let Some(v) = get(o, "array") {
        let text = string(v, "array")?;
        job.array = Some(JobArray::parse(&text).map_err(|m| JobError::new("array", m))?);
    }
    job.gang = read_gang(o, job.array.is_some())?;
    Ok(())
}

/// `gang`, `gangSize` and `gangTimeoutSeconds` (docs/gang.md).
fn read_gang(o: &Map<String, Value>, array: bool) -> Result<Option<Gang>, JobError> {
    let gang = opt_bool(o, "gang")?.unwrap_or(false);
    let size = get(o, "gangSize")
        .map(|v| unsigned32(v, "gangSize"))
        .transpose()?;
    let timeout_seconds = opt_unsigned(o, "gangTimeoutSeconds")?;
    if !gang {
        for (field, given) in [
            ("gangSize", size.is_some()),
            ("gangTimeoutSeconds", timeout_seconds.is_some()),
        ] {
            if given {
                return Err(JobError::new(field, "is only allowed with gang: true"));
            }
        }
        return Ok(None);
    }
    let Some(size) = size else {
        return Err(JobError::new(
            "gangSize",
            "is required with gang: true (the number of ranks, WORLD_SIZE)",
        ));
    };
    if size == 0 || size > MAX_GANG_SIZE {
        return Err(JobError::new(
            "gangSize",
            format!("{size} must be between 1 and {MAX_GANG_SIZE}"),
        ));
    }
    if array {
        return Err(JobError::new(
            "gang",
            "a gang job cannot also be an array job (remove array or gang)",
        ));
    }
    Ok(Some(Gang {
        size,
        timeout_seconds,
    }))
}

fn read_missed_runs(v: &Value) -> Result<MissedRuns, JobError> {
    let o = object(v, "missedRuns")?;
    let catch_up = match get(o, "catchUp") {
        None => None,
        Some(c) => Some(match string(c, "missedRuns.catchUp")?.as_str() {
            "none" => CatchUp::None,
            "one" => CatchUp::One,
            "all" => CatchUp::All,
            other => {
                return Err(JobError::new(
                    "missedRuns.catchUp",
                    format!("'{other}' must be none, one or all"),
                ))
            }
        }),
    };
    let limit = match get(o, "limit") {
        None => None,
        Some(l) => match unsigned32(l, "missedRuns.limit")? {
            0 => return Err(JobError::new("missedRuns.limit", "must be at least 1")),
            n => Some(n),
        },
    };
    let starting_deadline_seconds = match get(o, "startingDeadlineSeconds") {
        None => None,
        Some(d) => match unsigned(d, "missedRuns.startingDeadlineSeconds")? {
            0 => {
                return Err(JobError::new(
                    "missedRuns.startingDeadlineSeconds",
                    "must be at least 1",
                ))
            }
            n => Some(n),
        },
    };
    Ok(MissedRuns {
        catch_up,
        limit,
        starting_deadline_seconds,
    })
}
