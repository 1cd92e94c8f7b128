//! Resource usage of one task's container, as the agent measures it from its cgroup (Mesos
//! `ResourceStatistics` field names), and the readings of the GPUs it holds (a Gantry extension),
//! reported on `/monitor/statistics` and in heartbeats.

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
    /// The GPUs the task holds, as last sampled (Gantry; absent for tasks without GPUs). Optional
    /// on the wire: an earlier agent sends none, an earlier master ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_usage: Vec<GpuUsage>,
}

/// One GPU's reading, attributed to the task that holds it (NVML's figures, or a fixture's).
/// A figure the GPU does not report (NVML `NotSupported`) is absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuUsage {
    /// `GPU-...` (or `MIG-...`).
    pub uuid: String,
    /// NVML index on the agent.
    pub index: u32,
    /// Seconds since the epoch when the GPU was read.
    pub timestamp: f64,
    /// Percent of the last sample period a kernel ran (NVML `utilization.gpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_util_percent: Option<f64>,
    /// Percent of the last sample period device memory was read or written (`utilization.memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_util_percent: Option<f64>,
    /// Device memory allocated, bytes (the whole GPU's: NVML does not split it by process here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// Device memory installed, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// Power draw, watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_watts: Option<f64>,
    /// GPU die temperature, degrees Celsius.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<f64>,
    /// XID events seen on this GPU while the task held it.
    #[serde(default)]
    pub xid_events: u64,
    /// The distinct XIDs among them, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heartbeat's element as an agent before GPU readings wrote it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct EarlierTaskUsage {
        task_id: TaskId,
        timestamp: f64,
        #[serde(flatten)]
        usage: Usage,
    }

    fn with_gpu() -> TaskUsage {
        TaskUsage {
            task_id: "t1".into(),
            timestamp: 5.0,
            usage: Usage {
                mem_rss_bytes: 7,
                ..Usage::default()
            },
            gpu_usage: vec![GpuUsage {
                uuid: "GPU-1".into(),
                index: 3,
                timestamp: 4.5,
                gpu_util_percent: Some(87.0),
                power_watts: Some(251.5),
                xid_events: 2,
                xids: vec![13, 43],
                ..GpuUsage::default()
            }],
        }
    }

    #[test]
    fn gpu_readings_are_optional_both_ways_on_the_link() {
        // An earlier agent's element parses, with no GPU readings.
        let old = r#"{"task_id":"t1","timestamp":5.0,"cpus_user_time_secs":1.0,"cpus_system_time_secs":0.5,"mem_rss_bytes":7}"#;
        let parsed: TaskUsage = serde_json::from_str(old).expect("old heartbeat element");
        assert!(parsed.gpu_usage.is_empty());
        assert_eq!(parsed.usage.mem_rss_bytes, 7);
        // A new one parses in an earlier master, which ignores the readings.
        let new = serde_json::to_string(&with_gpu()).expect("serialize");
        let earlier: EarlierTaskUsage = serde_json::from_str(&new).expect("earlier master");
        assert_eq!(earlier.usage.mem_rss_bytes, 7);
        // And round-trips in this one; figures a GPU lacks are left out, not null.
        assert_eq!(
            serde_json::from_str::<TaskUsage>(&new).ok(),
            Some(with_gpu())
        );
        let gpu = new.split("gpu_usage").nth(1).unwrap_or_default();
        assert!(!gpu.is_empty() && !gpu.contains("null"), "{new}");
        assert!(new.contains(r#""gpu_util_percent":87.0"#), "{new}");
    }

    #[test]
    fn a_task_without_gpus_sends_what_it_sent_before() {
        let mut u = with_gpu();
        u.gpu_usage.clear();
        let json = serde_json::to_string(&u).expect("serialize");
        assert!(!json.contains("gpu_usage"), "{json}");
    }
}
