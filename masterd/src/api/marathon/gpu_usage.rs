//! The Gantry extension `gpuUsage` on Marathon tasks: each GPU the task holds as its agent last
//! sampled it. Only with `embed=tasks.gpuUsage`, as marathon-python 0.13.0 rejects a Task key it
//! does not know (spec §4.2) and never sends that embed.

use super::views::Iso;
use gantry_proto::GpuUsage;
use serde::{Serialize, Serializer};

/// The `embed` value that asks for it.
pub const EMBED: &str = "tasks.gpuUsage";

/// True when the query's `embed` asks for `gpuUsage`.
pub fn embeds_gpu_usage<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == EMBED)
}

/// One GPU's usage with Marathon's camelCase names and ISO time; figures the agent did not
/// report are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GpuJson<'a> {
    uuid: &'a str,
    index: u32,
    sampled_at: Iso,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_util_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_util_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    power_watts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature_celsius: Option<f64>,
    xid_events: u64,
    xids: &'a [u64],
}

/// One entry of a task's `gpuUsage` (a Task holds a list of them, empty for a task without GPUs
/// or readings).
pub struct GpuUsageView<'a>(pub &'a GpuUsage);

impl Serialize for GpuUsageView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = self.0;
        GpuJson {
            uuid: &u.uuid,
            index: u.index,
            sampled_at: Iso(u.timestamp),
            gpu_util_percent: u.gpu_util_percent,
            memory_util_percent: u.memory_util_percent,
            memory_used_bytes: u.memory_used_bytes,
            memory_total_bytes: u.memory_total_bytes,
            power_watts: u.power_watts,
            temperature_celsius: u.temperature_celsius,
            xid_events: u.xid_events,
            xids: &u.xids,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gpus_get_camel_case_names_and_only_the_figures_reported() {
        let u = GpuUsage {
            uuid: "GPU-1".into(),
            index: 1,
            timestamp: 1443194028.343,
            gpu_util_percent: Some(87.0),
            memory_used_bytes: Some(5),
            xid_events: 1,
            xids: vec![13],
            ..GpuUsage::default()
        };
        assert_eq!(
            serde_json::to_value(GpuUsageView(&u)).ok(),
            Some(
                json!({"uuid": "GPU-1", "index": 1, "sampledAt": "2015-09-25T15:13:48.343Z",
                    "gpuUtilPercent": 87.0, "memoryUsedBytes": 5, "xidEvents": 1, "xids": [13]})
            )
        );
    }

    #[test]
    fn only_the_exact_embed_asks_for_it() {
        assert!(embeds_gpu_usage(
            ["app.tasks", "tasks.gpuUsage"].into_iter()
        ));
        assert!(!embeds_gpu_usage(["apps.tasks", "gpuUsage"].into_iter()));
    }
}
