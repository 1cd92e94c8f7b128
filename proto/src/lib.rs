//! Wire and domain types shared by every Gantry part: resources, tasks, agents and the versioned
//! master<->agent messages. Pure data with serde; no I/O.

pub mod agent;
pub mod docker;
pub mod health;
pub mod ids;
pub mod image_ref;
pub mod messages;
pub mod ranges;
pub mod resources;
pub mod task;
pub mod time;
pub mod usage;

pub use agent::{AgentInfo, GpuInfo, MigInfo, NumaDomain};
pub use docker::{
    DockerNetwork, DockerParameter, DockerPortMapping, DockerSpec, DockerVolume, NamedVolume,
};
pub use health::{HealthCheckSpec, HealthProtocol, HealthResult};
pub use ids::{AgentId, TaskId};
pub use image_ref::{ImageRef, ImageRefError};
pub use messages::{
    AgentMessage, DecodeError, MasterMessage, StatusUpdate, TaskReport, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};
pub use ranges::{PortRanges, RangeError};
pub use resources::Resources;
pub use task::{
    CommandInfo, ContainerSpec, FetchUri, GpuAssignment, NumaPlacement, Reason, TaskInfo,
    TaskState, TaskStatus,
};
pub use usage::{GpuUsage, TaskUsage, Usage};
