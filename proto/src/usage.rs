//! Resource usage of one task's container, as the agent measures it from its cgroup (Mesos
//! `ResourceStatistics` field names), reported on `/monitor/statistics` and in heartbeats.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};

/// CPU time and memory of one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cpus_user_time_secs: f64,
    pub cpus_system_time_secs: f64,
    pub mem_rss_bytes: u64,
    /// Memory charged to the container (page cache included), bytes.
    #[serde(default)]
    pub mem_total_bytes: u64,
    #[serde(default)]
    pub mem_limit_bytes: Option<u64>,
    #[serde(default)]
    pub cpus_nr_periods: u64,
    #[serde(default)]
    pub cpus_nr_throttled: u64,
    #[serde(default)]
    pub cpus_throttled_time_secs: f64,
}

/// One task's usage at a moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskUsage {
    pub task_id: TaskId,
    /// Seconds since the epoch when it was read.
    pub timestamp: f64,
    #[serde(flatten)]
    pub usage: Usage,
}
