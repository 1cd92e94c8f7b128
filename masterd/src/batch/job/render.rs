//! The job JSON Chronos returns (spec §2.2): every Chronos field in `JobSerializer`'s order,
//! `container` only when set, the schedule or parents tail, then Gantry's extensions only when
//! given, so that a submitted job comes back with the same keys and values.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::model::{Container, Fetch, JobDefinition, KeyValue, MissedRuns, Trigger};

/// How to render a job.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions<'a> {
    /// The schedule to show instead of the stored one (the controller's rewritten
    /// `R[n]/<next>/<period>` after runs); `None` = the stored text.
    pub schedule: Option<&'a str>,
    /// `GET /v1/scheduler/jobs` only: copy `uris` into an empty `fetch`, or `fetch[].uri` into
    /// an empty `uris` (Chronos's list compatibility; the single-job GET does not).
    pub mirror_uris: bool,
}

/// A time as Chronos writes `lastSuccess`/`lastError`: `2014-03-08T16:57:17.507Z`.
pub fn chronos_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The job JSON as a value that serializes with Chronos's key order (serde_json's `Value` would
/// sort the keys; serialize this instead, e.g. with `axum::Json` or [`render_job`]).
pub fn job_json<'a>(job: &'a JobDefinition, opts: RenderOptions<'a>) -> JobJson<'a> {
    let mut fetch: Vec<FetchJson> = job.fetch.iter().map(FetchJson::from).collect();
    let mut uris: Vec<&str> = job.uris.iter().map(String::as_str).collect();
    if opts.mirror_uris {
        if fetch.is_empty() {
            fetch = job
                .uris
                .iter()
                .map(|u| FetchJson::owned(Fetch::from_uri(u)))
                .collect();
        } else if uris.is_empty() {
            uris = job.fetch.iter().map(|f| f.uri.as_str()).collect();
        }
    }
    let (schedule, cron, time_zone, parents) = match &job.trigger {
        Trigger::Iso8601 {
            schedule,
            time_zone,
        } => (
            Some(opts.schedule.unwrap_or(schedule)),
            None,
            Some(time_zone.as_str()),
            None,
        ),
        Trigger::Cron { cron, time_zone } => {
            (None, Some(cron.as_str()), Some(time_zone.as_str()), None)
        }
        Trigger::Dependent { parents, .. } => (
            None,
            None,
            None,
            Some(parents.iter().map(String::as_str).collect()),
        ),
    };
    let (dependencies, dependency_mode) = match &job.trigger {
        Trigger::Dependent {
            dependencies, mode, ..
        } => (
            dependencies.as_ref().map(|ds| {
                ds.iter()
                    .map(|d| DependencyJson {
                        job: &d.job,
                        kind: d.kind.map(|k| k.to_string()),
                    })
                    .collect()
            }),
            mode.map(|m| match m {
                gantry_jobs::DependencyMode::All => "all",
                gantry_jobs::DependencyMode::Any => "any",
            }),
        ),
        _ => (None, None),
    };
    JobJson {
        name: &job.name,
        command: &job.command,
        shell: job.shell,
        executor: &job.executor,
        executor_flags: &job.executor_flags,
        task_info_data: &job.task_info_data,
        retries: job.retries,
        owner: &job.owner,
        owner_name: &job.owner_name,
        description: &job.description,
        success_count: job.success_count,
        error_count: job.error_count,
        last_success: &job.last_success,
        last_error: &job.last_error,
        cpus: job.cpus,
        disk: job.disk,
        mem: job.mem,
        disabled: job.disabled,
        soft_error: job.soft_error,
        data_processing_job_type: job.data_processing_job_type,
        errors_since_last_success: job.errors_since_last_success,
        fetch,
        uris,
        environment_variables: job
            .environment_variables
            .iter()
            .map(|e| NameValue {
                name: &e.name,
                value: &e.value,
            })
            .collect(),
        arguments: job.arguments.iter().map(String::as_str).collect(),
        high_priority: job.high_priority,
        run_as_user: &job.run_as_user,
        concurrent: job.concurrent,
        max_completion_time: job.max_completion_time,
        container: job.container.as_ref().map(ContainerJson::from),
        constraints: job
            .constraints
            .iter()
            .map(|c| [c.attribute.as_str(), c.operator.as_str(), c.value.as_str()])
            .collect(),
        schedule,
        cron,
        schedule_time_zone: time_zone,
        parents,
        gpus: job.gpus,
        numa_policy: job.numa_policy,
        gpu_profile: job.gpu_profile.as_deref(),
        dependencies,
        dependency_mode,
        missed_runs: job.missed_runs.map(MissedRunsJson::from),
        retry_delay_seconds: job.retry_delay_seconds,
        retry_backoff_factor: job.retry_backoff_factor,
        max_retry_delay_seconds: job.max_retry_delay_seconds,
        array: job.array.as_ref().map(|a| a.text.as_str()),
        gang: job.gang.map(|_| true),
        gang_size: job.gang.map(|g| g.size),
        gang_timeout_seconds: job.gang.and_then(|g| g.timeout_seconds),
    }
}

/// The job JSON as text.
pub fn render_job(job: &JobDefinition, opts: RenderOptions) -> String {
    // Serializing plain strings, numbers and vectors cannot fail.
    serde_json::to_string(&job_json(job, opts)).unwrap_or_default()
}

/// One job in Chronos's JSON shape (field order = Chronos's `JobSerializer`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobJson<'a> {
    name: &'a str,
    command: &'a str,
    shell: bool,
    executor: &'a str,
    executor_flags: &'a str,
    task_info_data: &'a str,
    retries: u32,
    owner: &'a str,
    owner_name: &'a str,
    description: &'a str,
    success_count: u64,
    error_count: u64,
    last_success: &'a str,
    last_error: &'a str,
    cpus: f64,
    disk: f64,
    mem: f64,
    disabled: bool,
    soft_error: bool,
    data_processing_job_type: bool,
    errors_since_last_success: u64,
    fetch: Vec<FetchJson<'a>>,
    uris: Vec<&'a str>,
    environment_variables: Vec<NameValue<'a>>,
    arguments: Vec<&'a str>,
    high_priority: bool,
    run_as_user: &'a str,
    concurrent: bool,
    max_completion_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<ContainerJson<'a>>,
    constraints: Vec<[&'a str; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_time_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parents: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    numa_policy: Option<gantry_gpu::NumaPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<Vec<DependencyJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missed_runs: Option<MissedRunsJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_delay_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_backoff_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retry_delay_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    array: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gang: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gang_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gang_timeout_seconds: Option<u64>,
}

#[derive(Debug, Serialize)]
struct FetchJson<'a> {
    uri: std::borrow::Cow<'a, str>,
    executable: bool,
    cache: bool,
    extract: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    output_file: std::borrow::Cow<'a, str>,
}

impl<'a> From<&'a Fetch> for FetchJson<'a> {
    fn from(f: &'a Fetch) -> Self {
        FetchJson {
            uri: (&*f.uri).into(),
            executable: f.executable,
            cache: f.cache,
            extract: f.extract,
            output_file: (&*f.output_file).into(),
        }
    }
}

impl FetchJson<'static> {
    fn owned(f: Fetch) -> Self {
        FetchJson {
            uri: f.uri.into(),
            executable: f.executable,
            cache: f.cache,
            extract: f.extract,
            output_file: f.output_file.into(),
        }
    }
}

#[derive(Debug, Serialize)]
struct NameValue<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct KeyValueJson<'a> {
    key: &'a str,
    value: &'a str,
}

fn key_values(kv: &[KeyValue]) -> Vec<KeyValueJson<'_>> {
    kv.iter()
        .map(|p| KeyValueJson {
            key: &p.key,
            value: &p.value,
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct DependencyJson<'a> {
    job: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MissedRunsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    catch_up: Option<gantry_jobs::CatchUp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_deadline_seconds: Option<u64>,
}

impl From<MissedRuns> for MissedRunsJson {
    fn from(m: MissedRuns) -> Self {
        MissedRunsJson {
            catch_up: m.catch_up,
            limit: m.limit,
            starting_deadline_seconds: m.starting_deadline_seconds,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    image: &'a str,
    network: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_name: Option<&'a str>,
    network_infos: Vec<NetworkInfoJson<'a>>,
    volumes: Vec<VolumeJson<'a>>,
    force_pull_image: bool,
    parameters: Vec<KeyValueJson<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkInfoJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    labels: Vec<KeyValueJson<'a>>,
    port_mappings: Vec<PortMappingJson<'a>>,
}

/// Chronos writes the ports as strings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortMappingJson<'a> {
    host_port: String,
    container_port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    host_path: Option<&'a str>,
    container_path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<ExternalJson<'a>>,
}

#[derive(Debug, Serialize)]
struct ExternalJson<'a> {
    name: &'a str,
    provider: &'a str,
    options: Vec<KeyValueJson<'a>>,
}

impl<'a> From<&'a Container> for ContainerJson<'a> {
    fn from(c: &'a Container) -> Self {
        ContainerJson {
            kind: c.kind.as_str(),
            image: &c.image,
            network: c.network.as_str(),
            network_name: c.network_name.as_deref(),
            network_infos: c
                .network_infos
                .iter()
                .map(|n| NetworkInfoJson {
                    name: n.name.as_deref(),
                    protocol: n.protocol.as_deref(),
                    labels: key_values(&n.labels),
                    port_mappings: n
                        .port_mappings
                        .iter()
                        .map(|p| PortMappingJson {
                            host_port: p.host_port.to_string(),
                            container_port: p.container_port.to_string(),
                            protocol: p.protocol.as_deref(),
                        })
                        .collect(),
                })
                .collect(),
            volumes: c
                .volumes
                .iter()
                .map(|v| VolumeJson {
                    host_path: v.host_path.as_deref(),
                    container_path: &v.container_path,
                    mode: v.mode.map(|m| m.as_str()),
                    external: v.external.as_ref().map(|e| ExternalJson {
                        name: &e.name,
                        provider: &e.provider,
                        options: key_values(&e.options),
                    }),
                })
                .collect(),
            force_pull_image: c.force_pull_image,
            parameters: key_values(&c.parameters),
        }
    }
}
