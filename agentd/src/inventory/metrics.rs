//! Per-task GPU metrics at the agent: a thread reads the GPUs every interval (NVML, or the
//! metrics fixture beside `--gpu-fixture`) and attributes each reading to the task holding the
//! GPU; `/monitor/statistics` and the heartbeat read the latest from [`GpuMetrics`].

use crate::tasks::TaskTable;
use gantry_gpu::{GpuAttribution, GpuMetricsSource};
use gantry_proto::{GpuAssignment, GpuUsage, TaskId};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The latest GPU readings, attributed to tasks.
#[derive(Debug)]
pub struct GpuMetrics {
    attribution: Mutex<GpuAttribution>,
    /// Where the readings come from, for `/state` and logs.
    source: String,
}

impl GpuMetrics {
    /// An empty table for readings from `source`.
    pub fn new(source: String) -> Self {
        Self {
            attribution: Mutex::new(GpuAttribution::default()),
            source,
        }
    }

    /// Where the readings come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The readings of the GPUs `gpus` that `task` holds (empty before the first sample).
    pub fn usage_of(&self, task: &TaskId, gpus: &[GpuAssignment]) -> Vec<GpuUsage> {
        if gpus.is_empty() {
            return Vec::new();
        }
        self.attribution
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .usage_of(task, gpus)
    }

    /// Takes one sample from `source` for the tasks of `tasks` that hold GPUs; returns how long
    /// the read took and how many GPUs it read (0 when it failed, which is logged).
    pub fn sample_once(
        &self,
        source: &dyn GpuMetricsSource,
        tasks: &TaskTable,
    ) -> (Duration, usize) {
        let start = Instant::now();
        let holders = tasks.gpu_holders();
        let sample = source.sample();
        let now = gantry_proto::time::now_secs();
        let mut a = self
            .attribution
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = match sample {
            Ok(readings) => {
                let n = readings.len();
                a.record(readings, &holders, now);
                n
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = %e, "cannot read the GPUs; no GPU readings until the next sample works");
                a.record_failure(&holders);
                0
            }
        };
        (start.elapsed(), n)
    }
}

/// Starts the sampling thread: every `interval` it reads `source` and attributes the readings to
/// the tasks of `tasks`. It ends when the task table is gone. Returns the table the readings
/// land in (also set on `tasks`, which puts them in its usage reports).
pub fn spawn_gpu_sampler(
    source: Box<dyn GpuMetricsSource>,
    tasks: &Arc<TaskTable>,
    interval: Duration,
) -> Arc<GpuMetrics> {
    let metrics = Arc::new(GpuMetrics::new(source.describe()));
    tasks.set_gpu_metrics(metrics.clone());
    let weak: Weak<TaskTable> = Arc::downgrade(tasks);
    let m = metrics.clone();
    tracing::info!(source = %m.source(), interval_secs = interval.as_secs_f64(), "sampling GPU metrics");
    let spawned = std::thread::Builder::new()
        .name("gpu-metrics".into())
        .spawn(move || {
            while let Some(tasks) = weak.upgrade() {
                m.sample_once(source.as_ref(), &tasks);
                drop(tasks);
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the GPU metrics thread; tasks get no GPU readings");
    }
    metrics
}
