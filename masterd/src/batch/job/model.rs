//! The Chronos job definition as Gantry stores it (spec §2.1): every Chronos 3.x field with its
//! default, plus Gantry's extensions (GPUs, NUMA, cron, typed dependencies, missed-run and retry
//! policies, job arrays), each kept exactly as given so that rendering round-trips.

use gantry_gpu::NumaPolicy;
use gantry_jobs::{CatchUp, DependencyKind, DependencyMode};
use thiserror::Error;

use super::array::JobArray;

/// Chronos `--mesos_task_cpu`: the cpus a job gets when it gives none (or 0).
pub const DEFAULT_CPUS: f64 = 0.1;
/// Chronos `--mesos_task_mem` (MB).
pub const DEFAULT_MEM: f64 = 128.0;
/// Chronos `--mesos_task_disk` (MB).
pub const DEFAULT_DISK: f64 = 256.0;
/// Chronos's default `retries`.
pub const DEFAULT_RETRIES: u32 = 2;
/// The `runAsUser` to pass to the reader to mirror Marathon apps: no user named, so the agent
/// runs the task as its own default user (`nobody` unless the agent is configured otherwise).
/// Chronos stored `--user` (default `root`) instead.
pub const AGENT_DEFAULT_USER: &str = "";

/// A refused job body: the field at fault and why. `Display` is `"<field>: <message>"`, the text
/// the HTTP layer puts in Chronos's 400 `{"message": ..., "status": "Bad Request"}`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct JobError {
    /// The JSON field (dotted path for nested ones, e.g. `container.volumes[0].mode`); `body` when
    /// the body as a whole is at fault.
    pub field: String,
    pub message: String,
}

impl JobError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What starts a job's runs: its schedule or its parents (Chronos: scheduled vs dependent job).
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Chronos `schedule` (ISO 8601 repeating interval, verbatim) and `scheduleTimeZone` (`""` =
    /// none).
    Iso8601 { schedule: String, time_zone: String },
    /// Gantry `cron` (Metronome dialect) evaluated in `scheduleTimeZone` (`""` = UTC).
    Cron { cron: String, time_zone: String },
    /// A dependent job: Chronos `parents` (afterok edges, duplicates collapsed, first order kept)
    /// and/or Gantry `dependencies` and `dependencyMode` (`None` when not given).
    Dependent {
        parents: Vec<String>,
        dependencies: Option<Vec<DependencyInput>>,
        mode: Option<DependencyMode>,
    },
}

impl Trigger {
    pub fn is_dependent(&self) -> bool {
        matches!(self, Trigger::Dependent { .. })
    }
}

/// One entry of Gantry's `dependencies`: `{"job": "a", "type": "afterok"}`; `kind` is `None` when
/// `type` was left out (meaning afterok).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyInput {
    pub job: String,
    pub kind: Option<DependencyKind>,
}

impl DependencyInput {
    pub fn effective_kind(&self) -> DependencyKind {
        self.kind.unwrap_or(DependencyKind::AfterOk)
    }
}

/// An entry of `environmentVariables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
}

/// An entry of `fetch` (Mesos fetcher URI, Chronos defaults: `extract` true, the others false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub uri: String,
    pub executable: bool,
    pub cache: bool,
    pub extract: bool,
    /// `output_file`; `""` = the URI's base name (omitted from the JSON when empty).
    pub output_file: String,
}

impl Fetch {
    /// The `fetch` entry a deprecated `uris` string stands for.
    pub fn from_uri(uri: &str) -> Fetch {
        Fetch {
            uri: uri.to_string(),
            executable: false,
            cache: false,
            extract: true,
            output_file: String::new(),
        }
    }
}

/// A `{key, value}` pair (docker parameters, labels, external volume options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `container.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerType {
    #[default]
    Docker,
    Mesos,
}

impl ContainerType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerType::Docker => "DOCKER",
            ContainerType::Mesos => "MESOS",
        }
    }
}

/// `container.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerNetwork {
    #[default]
    Host,
    Bridge,
    User,
}

impl ContainerNetwork {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerNetwork::Host => "HOST",
            ContainerNetwork::Bridge => "BRIDGE",
            ContainerNetwork::User => "USER",
        }
    }
}

/// `container.volumes[].mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeMode {
    Rw,
    Ro,
}

impl VolumeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeMode::Rw => "RW",
            VolumeMode::Ro => "RO",
        }
    }
}

/// `container.volumes[].external`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalVolume {
    pub name: String,
    pub provider: String,
    pub options: Vec<KeyValue>,
}

/// An entry of `container.volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host_path: Option<String>,
    pub container_path: String,
    pub mode: Option<VolumeMode>,
    pub external: Option<ExternalVolume>,
}

/// An entry of `networkInfos[].portMappings` (Chronos writes the ports back as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: Option<String>,
}

/// An entry of `container.networkInfos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: Option<String>,
    /// `IPv4` or `IPv6`.
    pub protocol: Option<String>,
    pub labels: Vec<KeyValue>,
    pub port_mappings: Vec<PortMapping>,
}

/// `container` (only kept when it names an `image`, as Chronos does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub kind: ContainerType,
    pub image: String,
    pub network: ContainerNetwork,
    pub network_name: Option<String>,
    pub network_infos: Vec<NetworkInfo>,
    pub volumes: Vec<Volume>,
    pub force_pull_image: bool,
    pub parameters: Vec<KeyValue>,
}

/// `constraints[]` operator (Chronos 3.x knows these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintOperator {
    Equals,
    Like,
    Unlike,
}

impl ConstraintOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintOperator::Equals => "EQUALS",
            ConstraintOperator::Like => "LIKE",
            ConstraintOperator::Unlike => "UNLIKE",
        }
    }
}

/// An entry of `constraints`: `[attribute, operator, value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConstraint {
    pub attribute: String,
    pub operator: ConstraintOperator,
    pub value: String,
}

/// Gantry's `missedRuns`, each part `None` when not given (defaults: Chronos 3.x's single
/// catch-up run, a limit of [`gantry_jobs::missed::DEFAULT_ALL_LIMIT`], no deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissedRuns {
    pub catch_up: Option<CatchUp>,
    pub limit: Option<u32>,
    pub starting_deadline_seconds: Option<u64>,
}

/// A Chronos job with Gantry's extensions. Chronos fields always hold a value (their default when
/// not given); extensions are `None` when not given and are then not rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefinition {
    pub name: String,
    pub command: String,
    pub arguments: Vec<String>,
    pub shell: bool,
    pub trigger: Trigger,
    pub retries: u32,
    pub disabled: bool,
    pub concurrent: bool,
    pub high_priority: bool,
    pub soft_error: bool,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Seconds; 0 = none.
    pub max_completion_time: u64,
    pub owner: String,
    pub owner_name: String,
    pub description: String,
    /// `""` = the agent's default user.
    pub run_as_user: String,
    pub environment_variables: Vec<EnvironmentVariable>,
    pub fetch: Vec<Fetch>,
    pub uris: Vec<String>,
    pub container: Option<Container>,
    pub constraints: Vec<JobConstraint>,
    pub executor: String,
    pub executor_flags: String,
    pub task_info_data: String,
    pub data_processing_job_type: bool,
    pub success_count: u64,
    pub error_count: u64,
    /// `""` or an ISO 8601 UTC time such as `2014-03-08T16:57:17.507Z` (see
    /// [`super::render::chronos_time`]).
    pub last_success: String,
    pub last_error: String,
    pub errors_since_last_success: u64,
    // Gantry extensions.
    pub gpus: Option<u32>,
    pub numa_policy: Option<NumaPolicy>,
    /// MIG profile of the job's GPUs (`gpuProfile`, e.g. `1g.10gb`); `None`: whole GPUs.
    pub gpu_profile: Option<String>,
    pub missed_runs: Option<MissedRuns>,
    pub retry_delay_seconds: Option<u64>,
    pub retry_backoff_factor: Option<f64>,
    pub max_retry_delay_seconds: Option<u64>,
    pub array: Option<JobArray>,
    /// `gang: true` with `gangSize` and `gangTimeoutSeconds`: the run is a gang of ranks placed
    /// all together (docs/gang.md); `None` for an ordinary job.
    pub gang: Option<Gang>,
}

/// The largest `gangSize`.
pub const MAX_GANG_SIZE: u32 = 4096;
/// How long a gang waits for room for all its ranks when `gangTimeoutSeconds` is not given.
pub const DEFAULT_GANG_TIMEOUT_SECONDS: u64 = 600;

/// A gang job's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gang {
    /// `gangSize`: the number of ranks (torchrun's `WORLD_SIZE`, Slurm's `--ntasks`); each rank
    /// asks for the job's cpus, mem, disk and gpus.
    pub size: u32,
    /// `gangTimeoutSeconds` as given (`None`: [`DEFAULT_GANG_TIMEOUT_SECONDS`]; 0: wait forever).
    pub timeout_seconds: Option<u64>,
}

impl Gang {
    /// Seconds a gang waits for a place before its run fails; 0 = forever.
    pub fn timeout(&self) -> u64 {
        self.timeout_seconds.unwrap_or(DEFAULT_GANG_TIMEOUT_SECONDS)
    }
}

impl JobDefinition {
    /// A job `name` started by `trigger`, every other field at its Chronos default (bodies go
    /// through [`super::read::read_job`]).
    pub fn with_defaults(name: &str, trigger: Trigger, run_as_user: &str) -> JobDefinition {
        JobDefinition {
            name: name.to_string(),
            command: String::new(),
            arguments: Vec::new(),
            shell: true,
            trigger,
            retries: DEFAULT_RETRIES,
            disabled: false,
            concurrent: false,
            high_priority: false,
            soft_error: false,
            cpus: DEFAULT_CPUS,
            mem: DEFAULT_MEM,
            disk: DEFAULT_DISK,
            max_completion_time: 0,
            owner: String::new(),
            owner_name: String::new(),
            description: String::new(),
            run_as_user: run_as_user.to_string(),
            environment_variables: Vec::new(),
            fetch: Vec::new(),
            uris: Vec::new(),
            container: None,
            constraints: Vec::new(),
            executor: String::new(),
            executor_flags: String::new(),
            task_info_data: String::new(),
            data_processing_job_type: false,
            success_count: 0,
            error_count: 0,
            last_success: String::new(),
            last_error: String::new(),
            errors_since_last_success: 0,
            gpus: None,
            numa_policy: None,
            gpu_profile: None,
            missed_runs: None,
            retry_delay_seconds: None,
            retry_backoff_factor: None,
            max_retry_delay_seconds: None,
            array: None,
            gang: None,
        }
    }

    /// True for a dependent job (`parents` / `dependencies`).
    pub fn is_dependent(&self) -> bool {
        self.trigger.is_dependent()
    }

    /// Every parent name with its edge kind: `parents` (afterok) first, then `dependencies`, each
    /// name once (the reader refused a name given with two different kinds).
    pub fn parent_edges(&self) -> Vec<(String, DependencyKind)> {
        let mut out: Vec<(String, DependencyKind)> = Vec::new();
        if let Trigger::Dependent {
            parents,
            dependencies,
            ..
        } = &self.trigger
        {
            let deps = dependencies.iter().flatten();
            let all = parents
                .iter()
                .map(|p| (p.clone(), DependencyKind::AfterOk))
                .chain(deps.map(|d| (d.job.clone(), d.effective_kind())));
            for (name, kind) in all {
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, kind));
                }
            }
        }
        out
    }
}
