//! Everything the master holds in memory, behind its one lock: the core's cluster state (agents,
//! tasks) and, beside it, each controller's own state. The core's code reads and writes only
//! `cluster`; a controller reads `cluster` and its own part, so one run sees a consistent whole.

use crate::batch::state::BatchState;
use crate::cluster::ClusterState;
use crate::frameworks::FrameworkState;
use crate::services::state::ServiceState;

/// The master's in-memory state.
#[derive(Debug, Default)]
pub struct MasterState {
    /// Agents and tasks: the core's.
    pub cluster: ClusterState,
    /// Apps, launch delays, waiting reasons: the services controller's.
    pub services: ServiceState,
    /// Jobs, runs and their history: the batch controller's.
    pub batch: BatchState,
    /// External frameworks, their offers and unacknowledged updates: the frameworks module's.
    pub frameworks: FrameworkState,
}
