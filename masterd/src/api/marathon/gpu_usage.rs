//! The Gantry extension `gpuUsage` on Marathon tasks: each GPU the task holds as its agent last
//! sampled it. Only with `embed=tasks.gpuUsage`, as marathon-python 0.13.0 rejects a Task key it
//! does not know (spec §4.2) and never sends that embed.

use super::render::iso;
use crate::state::MasterState;
use gantry_proto::{GpuUsage, TaskId};
use serde_json::{json, Map, Value};

/// The `embed` value that asks for it.
pub const EMBED: &str = "tasks.gpuUsage";

/// True when the query's `embed` asks for `gpuUsage`.
pub fn embeds_gpu_usage<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == EMBED)
}

/// One GPU's usage with Marathon's camelCase names and ISO time; figures the agent did not
/// report are left out.
fn gpu_json(u: &GpuUsage) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(u.uuid));
    m.insert("index".into(), json!(u.index));
    m.insert("sampledAt".into(), json!(iso(u.timestamp)));
    let figures = [
        ("gpuUtilPercent", u.gpu_util_percent.map(|v| json!(v))),
        ("memoryUtilPercent", u.memory_util_percent.map(|v| json!(v))),
        ("memoryUsedBytes", u.memory_used_bytes.map(|v| json!(v))),
        ("memoryTotalBytes", u.memory_total_bytes.map(|v| json!(v))),
        ("powerWatts", u.power_watts.map(|v| json!(v))),
        (
            "temperatureCelsius",
            u.temperature_celsius.map(|v| json!(v)),
        ),
    ];
    for (k, v) in figures {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    m.insert("xidEvents".into(), json!(u.xid_events));
    m.insert("xids".into(), json!(u.xids));
    Value::Object(m)
}

/// Adds `gpuUsage` (a list, empty for a task without GPUs or readings) to a rendered Task.
pub fn add_gpu_usage(st: &MasterState, task: &mut Value) {
    let Some(obj) = task.as_object_mut() else {
        return;
    };
    let id = obj.get("id").and_then(Value::as_str).map(TaskId::from);
    let gpus: Vec<Value> = id
        .and_then(|id| st.cluster.usage.get(&id))
        .map(|u| u.gpu_usage.iter().map(gpu_json).collect())
        .unwrap_or_default();
    obj.insert("gpuUsage".into(), Value::Array(gpus));
}

/// Adds `gpuUsage` to every task of a rendered list (`{"tasks": [...]}` or an AppInfo).
pub fn add_to_tasks(st: &MasterState, holder: &mut Value) {
    if let Some(tasks) = holder.get_mut("tasks").and_then(Value::as_array_mut) {
        for t in tasks {
            add_gpu_usage(st, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::TaskUsage;

    #[test]
    fn tasks_get_camel_case_gpu_usage_and_others_an_empty_list() {
        let mut st = MasterState::default();
        st.cluster.usage.insert(
            "t1".into(),
            TaskUsage {
                task_id: "t1".into(),
                gpu_usage: vec![GpuUsage {
                    uuid: "GPU-1".into(),
                    index: 1,
                    timestamp: 1443194028.343,
                    gpu_util_percent: Some(87.0),
                    memory_used_bytes: Some(5),
                    xid_events: 1,
                    xids: vec![13],
                    ..GpuUsage::default()
                }],
                ..TaskUsage::default()
            },
        );
        let mut list = json!({"tasks": [{"id": "t1"}, {"id": "t2"}]});
        add_to_tasks(&st, &mut list);
        assert_eq!(
            list["tasks"][0]["gpuUsage"],
            json!([{"uuid": "GPU-1", "index": 1, "sampledAt": "2015-09-25T15:13:48.343Z",
                    "gpuUtilPercent": 87.0, "memoryUsedBytes": 5, "xidEvents": 1, "xids": [13]}])
        );
        assert_eq!(list["tasks"][1]["gpuUsage"], json!([]));
    }

    #[test]
    fn only_the_exact_embed_asks_for_it() {
        assert!(embeds_gpu_usage(
            ["app.tasks", "tasks.gpuUsage"].into_iter()
        ));
        assert!(!embeds_gpu_usage(["apps.tasks", "gpuUsage"].into_iter()));
    }
}
