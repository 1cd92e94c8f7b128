//! The per-task GPU gauges of `/metrics`: each running task's GPUs as its agent last sampled them
//! (heartbeat usage), labelled by task, agent and GPU UUID.

use super::Exposition;
use crate::state::MasterState;
use gantry_proto::GpuUsage;

/// One gauge family: its name, help, and how to read it from a GPU's usage.
type Family = (&'static str, &'static str, fn(&GpuUsage) -> Option<f64>);

const FAMILIES: [Family; 6] = [
    (
        "gantry_task_gpu_utilization_percent",
        "Percent of the last sample period a kernel ran on the GPU, per task holding it.",
        |u| u.gpu_util_percent,
    ),
    (
        "gantry_task_gpu_memory_utilization_percent",
        "Percent of the last sample period the GPU's memory was read or written.",
        |u| u.memory_util_percent,
    ),
    (
        "gantry_task_gpu_memory_used_bytes",
        "GPU memory allocated on the task's GPU, bytes.",
        |u| u.memory_used_bytes.map(|b| b as f64),
    ),
    (
        "gantry_task_gpu_power_watts",
        "Power draw of the task's GPU, watts.",
        |u| u.power_watts,
    ),
    (
        "gantry_task_gpu_temperature_celsius",
        "Die temperature of the task's GPU, degrees Celsius.",
        |u| u.temperature_celsius,
    ),
    (
        "gantry_task_gpu_xid_events_total",
        "XID events seen on the GPU while the task held it.",
        |u| Some(u.xid_events as f64),
    ),
];

/// Writes the families; a task whose agent did not report a figure has no sample for it.
pub(super) fn render(e: &mut Exposition, st: &MasterState) {
    let mut rows: Vec<(&str, &str, &GpuUsage)> = st
        .cluster
        .usage
        .iter()
        .filter_map(|(id, u)| {
            let agent = st.cluster.tasks().get(id)?.info.agent_id.as_str();
            Some(u.gpu_usage.iter().map(move |g| (id.as_str(), agent, g)))
        })
        .flatten()
        .collect();
    rows.sort_by(|a, b| (a.0, a.2.index).cmp(&(b.0, b.2.index)));
    for (name, help, read) in FAMILIES {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        e.family(name, kind, help);
        for (task, agent, g) in &rows {
            if let Some(v) = read(g) {
                let labels = [
                    ("task", *task),
                    ("agent", *agent),
                    ("gpu_uuid", g.uuid.as_str()),
                ];
                e.sample(name, &labels, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{TaskOwner, TaskRecord};
    use gantry_proto::{TaskInfo, TaskState, TaskUsage};

    fn state_with_a_gpu_task() -> MasterState {
        let mut st = MasterState::default();
        let info = TaskInfo {
            task_id: "train.1".into(),
            agent_id: "agent-7".into(),
            ..TaskInfo::default()
        };
        st.cluster.put_task(TaskRecord {
            info: info.clone(),
            owner: TaskOwner::App {
                id: "/train".into(),
                version: "v".into(),
            },
            state: TaskState::TaskRunning,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        });
        let gpu = |index: u32, util: Option<f64>| GpuUsage {
            uuid: format!("GPU-{index}"),
            index,
            gpu_util_percent: util,
            memory_used_bytes: Some(1 << 30),
            power_watts: Some(250.5),
            xid_events: u64::from(index),
            ..GpuUsage::default()
        };
        st.cluster.usage.insert(
            info.task_id.clone(),
            TaskUsage {
                task_id: info.task_id,
                gpu_usage: vec![gpu(3, None), gpu(1, Some(87.0))],
                ..TaskUsage::default()
            },
        );
        // A task without GPUs adds nothing.
        st.cluster.usage.insert(
            "cpu.1".into(),
            TaskUsage {
                task_id: "cpu.1".into(),
                ..TaskUsage::default()
            },
        );
        st
    }

    #[test]
    fn each_gpu_of_each_task_is_a_labelled_sample() {
        let mut e = Exposition(String::new());
        render(&mut e, &state_with_a_gpu_task());
        let text = e.0;
        for line in [
            "# TYPE gantry_task_gpu_utilization_percent gauge",
            "gantry_task_gpu_utilization_percent{task=\"train.1\",agent=\"agent-7\",gpu_uuid=\"GPU-1\"} 87",
            "gantry_task_gpu_memory_used_bytes{task=\"train.1\",agent=\"agent-7\",gpu_uuid=\"GPU-3\"} 1073741824",
            "gantry_task_gpu_power_watts{task=\"train.1\",agent=\"agent-7\",gpu_uuid=\"GPU-1\"} 250.5",
            "# TYPE gantry_task_gpu_xid_events_total counter",
            "gantry_task_gpu_xid_events_total{task=\"train.1\",agent=\"agent-7\",gpu_uuid=\"GPU-3\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("gantry_task_gpu_utilization_percent{task=\"train.1\",agent=\"agent-7\",gpu_uuid=\"GPU-3\"}"),
            "a figure the GPU lacks has no sample:\n{text}"
        );
        assert!(!text.contains("cpu.1"), "{text}");
        let one = text.find("gpu_uuid=\"GPU-1\"").unwrap_or(usize::MAX);
        let three = text.find("gpu_uuid=\"GPU-3\"").unwrap_or(0);
        assert!(one < three, "GPUs in index order:\n{text}");
    }

    #[test]
    fn an_empty_master_has_the_families_and_no_samples() {
        let mut e = Exposition(String::new());
        render(&mut e, &MasterState::default());
        assert_eq!(e.0.lines().count(), 2 * FAMILIES.len(), "{}", e.0);
    }
}
