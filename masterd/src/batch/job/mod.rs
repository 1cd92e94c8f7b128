//! The Chronos job definition of the batch controller (spec §2): reading and validating request
//! bodies, rendering Chronos's job JSON, and turning a job into `gantry_jobs` values and the
//! command of one run. Pure code: no store, no clock, no I/O.

mod array;
mod model;
mod read;
mod read_container;
mod render;
mod spec;
mod values;

#[cfg(test)]
mod tests;

pub use array::{JobArray, MAX_ARRAY_INDEX, MAX_ARRAY_TASKS};
pub use model::{
    ConstraintOperator, Container, ContainerNetwork, ContainerType, DependencyInput,
    EnvironmentVariable, ExternalVolume, Fetch, Gang, JobConstraint, JobDefinition, JobError,
    KeyValue, MissedRuns, NetworkInfo, PortMapping, Trigger, Volume, VolumeMode,
    AGENT_DEFAULT_USER, DEFAULT_CPUS, DEFAULT_DISK, DEFAULT_GANG_TIMEOUT_SECONDS, DEFAULT_MEM,
    DEFAULT_RETRIES, MAX_GANG_SIZE,
};
pub use read::{parse_body, read_job, Endpoint, Mode, ReadContext};
pub use render::{chronos_time, job_json, render_job, JobJson, RenderOptions};
pub use spec::{parse_task_id, run_command, task_id, ChronosTaskId, DEFAULT_RETRY_DELAY_SECONDS};
pub use values::is_valid_name;
