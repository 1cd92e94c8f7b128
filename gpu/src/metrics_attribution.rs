//! Attributing GPU readings to tasks: the latest reading of each GPU goes to the task holding it,
//! and each XID to the tasks that held the GPU when it arrived (counted while they run, dropped
//! when they end).

use crate::metrics::GpuReading;
use gantry_proto::{GpuAssignment, GpuUsage, TaskId};
use std::collections::{BTreeSet, HashMap};

/// The XIDs one task saw on one GPU.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    count: u64,
    xids: BTreeSet<u64>,
}

/// A running task and the GPUs it holds.
pub type GpuHolder = (TaskId, Vec<GpuAssignment>);

/// The latest readings and the XID tallies of the running tasks.
#[derive(Clone, Debug, Default)]
pub struct GpuAttribution {
    /// UUID -> (reading, when it was taken).
    readings: HashMap<String, (GpuReading, f64)>,
    /// Task -> UUID -> the XIDs it saw there.
    tallies: HashMap<TaskId, HashMap<String, Tally>>,
}

impl GpuAttribution {
    /// Takes one sample, read at `now`, while `holders` run: it replaces every reading (a GPU
    /// missing from it has none now), and its XIDs go to the tasks holding their GPU. Tallies of
    /// tasks that no longer run are dropped.
    pub fn record(&mut self, sample: Vec<GpuReading>, holders: &[GpuHolder], now: f64) {
        self.forget_ended(holders);
        for r in &sample {
            if r.new_xids.is_empty() {
                continue;
            }
            let holding = holders
                .iter()
                .filter(|(_, gpus)| gpus.iter().any(|g| *g.uuid == *r.uuid));
            for (task, _) in holding {
                let tally = self
                    .tallies
                    .entry(task.clone())
                    .or_default()
                    .entry(r.uuid.clone())
                    .or_default();
                tally.count += r.new_xids.len() as u64;
                tally.xids.extend(r.new_xids.iter().copied());
            }
        }
        self.readings = sample
            .into_iter()
            .map(|r| (r.uuid.clone(), (r, now)))
            .collect();
    }

    /// A sample failed: no reading is kept (better none than a stale one); tallies stay.
    pub fn record_failure(&mut self, holders: &[GpuHolder]) {
        self.forget_ended(holders);
        self.readings.clear();
    }

    fn forget_ended(&mut self, holders: &[GpuHolder]) {
        self.tallies
            .retain(|task, _| holders.iter().any(|(t, _)| t == task));
    }

    /// How many GPUs have a reading now.
    pub fn readings(&self) -> usize {
        self.readings.len()
    }

    /// The usage of the GPUs `gpus` that task `task` holds, in their order: one entry per GPU
    /// that has a reading or saw an XID.
    pub fn usage_of(&self, task: &TaskId, gpus: &[GpuAssignment]) -> Vec<GpuUsage> {
        let tallies = self.tallies.get(task);
        gpus.iter()
            .filter_map(|g| {
                let reading = self.readings.get(&*g.uuid);
                let tally = tallies.and_then(|t| t.get(&*g.uuid));
                if reading.is_none() && tally.is_none() {
                    return None;
                }
                let mut u = GpuUsage {
                    uuid: g.uuid.to_string(),
                    index: g.index,
                    ..GpuUsage::default()
                };
                if let Some((r, at)) = reading {
                    u.timestamp = *at;
                    u.gpu_util_percent = r.gpu_util_percent;
                    u.memory_util_percent = r.memory_util_percent;
                    u.memory_used_bytes = r.memory_used_bytes;
                    u.memory_total_bytes = r.memory_total_bytes;
                    u.power_watts = r.power_watts;
                    u.temperature_celsius = r.temperature_celsius;
                }
                if let Some(t) = tally {
                    u.xid_events = t.count;
                    u.xids = t.xids.iter().copied().collect();
                }
                Some(u)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32) -> GpuAssignment {
        GpuAssignment {
            index,
            minor: index,
            uuid: format!("GPU-{index}").into(),
            pci_bus_id: "".into(),
            caps_minors: Vec::new(),
        }
    }

    fn reading(index: u32, util: f64, xids: &[u64]) -> GpuReading {
        GpuReading {
            uuid: format!("GPU-{index}"),
            gpu_util_percent: Some(util),
            memory_used_bytes: Some(u64::from(index) << 30),
            power_watts: Some(100.0 + f64::from(index)),
            new_xids: xids.to_vec(),
            ..GpuReading::default()
        }
    }

    fn task(id: &str) -> TaskId {
        TaskId::from(id)
    }

    #[test]
    fn each_task_gets_the_readings_of_its_own_gpus() {
        let mut a = GpuAttribution::default();
        let holders = vec![(task("a"), vec![gpu(0), gpu(1)]), (task("b"), vec![gpu(2)])];
        let sample = (0..4)
            .map(|i| reading(i, 10.0 * f64::from(i), &[]))
            .collect();
        a.record(sample, &holders, 50.0);
        let ua = a.usage_of(&task("a"), &holders[0].1);
        assert_eq!(ua.len(), 2);
        assert_eq!((ua[0].uuid.as_str(), ua[0].index), ("GPU-0", 0));
        assert_eq!(ua[1].gpu_util_percent, Some(10.0));
        assert_eq!(ua[1].memory_used_bytes, Some(1 << 30));
        assert_eq!(ua[1].power_watts, Some(101.0));
        assert_eq!(ua[1].timestamp, 50.0);
        let ub = a.usage_of(&task("b"), &holders[1].1);
        assert_eq!(ub.len(), 1);
        assert_eq!(ub[0].gpu_util_percent, Some(20.0));
        assert_eq!(ub[0].xid_events, 0);
        assert_eq!(a.readings(), 4, "GPU 3 is read though no task holds it");
    }

    #[test]
    fn xids_count_for_the_holder_only_and_accumulate() {
        let mut a = GpuAttribution::default();
        let holders = vec![(task("a"), vec![gpu(0)]), (task("b"), vec![gpu(1)])];
        a.record(
            vec![reading(0, 1.0, &[13]), reading(1, 1.0, &[])],
            &holders,
            1.0,
        );
        a.record(
            vec![reading(0, 1.0, &[43, 13]), reading(1, 1.0, &[])],
            &holders,
            2.0,
        );
        let ua = a.usage_of(&task("a"), &holders[0].1);
        assert_eq!(ua[0].xid_events, 3);
        assert_eq!(ua[0].xids, vec![13, 43]);
        let ub = a.usage_of(&task("b"), &holders[1].1);
        assert_eq!(ub[0].xid_events, 0, "an XID on another task's GPU");
    }

    #[test]
    fn a_new_task_on_a_gpu_starts_from_zero_xids() {
        let mut a = GpuAttribution::default();
        a.record(
            vec![reading(0, 1.0, &[79])],
            &[(task("old"), vec![gpu(0)])],
            1.0,
        );
        // "old" ended; "new" holds the GPU now.
        let holders = vec![(task("new"), vec![gpu(0)])];
        a.record(vec![reading(0, 2.0, &[])], &holders, 2.0);
        assert_eq!(a.usage_of(&task("new"), &holders[0].1)[0].xid_events, 0);
        assert!(a.usage_of(&task("old"), &[gpu(0)])[0].xids.is_empty());
        // An XID before a task holds its GPU is nobody's.
        let mut b = GpuAttribution::default();
        b.record(vec![reading(0, 1.0, &[48])], &[], 1.0);
        b.record(vec![reading(0, 1.0, &[])], &holders, 2.0);
        assert_eq!(b.usage_of(&task("new"), &holders[0].1)[0].xid_events, 0);
    }

    #[test]
    fn a_failed_sample_leaves_no_stale_reading_but_keeps_xids() {
        let mut a = GpuAttribution::default();
        let holders = vec![(task("a"), vec![gpu(0), gpu(1)])];
        a.record(
            vec![reading(0, 5.0, &[31]), reading(1, 6.0, &[])],
            &holders,
            1.0,
        );
        a.record_failure(&holders);
        let u = a.usage_of(&task("a"), &holders[0].1);
        assert_eq!(u.len(), 1, "only the GPU with an XID is listed: {u:?}");
        assert_eq!(u[0].gpu_util_percent, None);
        assert_eq!(u[0].xid_events, 1);
        assert_eq!(a.readings(), 0);
    }

    #[test]
    fn a_gpu_missing_from_the_sample_has_no_reading() {
        let mut a = GpuAttribution::default();
        let holders = vec![(task("a"), vec![gpu(0), gpu(1)])];
        a.record(
            vec![reading(0, 5.0, &[]), reading(1, 6.0, &[])],
            &holders,
            1.0,
        );
        a.record(vec![reading(1, 7.0, &[])], &holders, 2.0);
        let u = a.usage_of(&task("a"), &holders[0].1);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].index, u[0].gpu_util_percent), (1, Some(7.0)));
    }
}
