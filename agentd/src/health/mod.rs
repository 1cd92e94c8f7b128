//! Health checks run by the agent next to each task (Marathon's `healthChecks`): one loop per
//! check probes every `intervalSeconds`, ignores failures during `gracePeriodSeconds` until the
//! first success, and hands every result change to a reporter (the task table, which sends it to
//! the master as a status update). The master decides the kill (`maxConsecutiveFailures`).

pub mod probe;
mod tls;

use gantry_proto::time::now_secs;
use gantry_proto::{HealthCheckSpec, HealthResult};
use probe::{probe, ProbeContext, Verdict};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Receives the results of all of a task's checks (in the order of its checks) after a change.
pub type Reporter = Arc<dyn Fn(Vec<HealthResult>) + Send + Sync>;

/// The running checks of one task; dropping it stops them.
pub struct TaskChecks {
    loops: Vec<tokio::task::AbortHandle>,
}

impl Drop for TaskChecks {
    fn drop(&mut self) {
        for l in &self.loops {
            l.abort();
        }
    }
}

/// Does `next` differ from `prev` in what is reported? Successes in a row only move
/// `lastSuccess`, which is not worth a status update each interval: the master shows the start
/// of the current healthy streak.
fn worth_reporting(prev: &HealthResult, next: &HealthResult) -> bool {
    prev.alive != next.alive
        || prev.consecutive_failures != next.consecutive_failures
        || prev.first_success != next.first_success
}

/// The result after `verdict`, or `None` when it leaves the result as it was (a 1xx with
/// `ignoreHttp1xx`, or a failure during the grace period before any success).
pub fn next_result(
    spec: &HealthCheckSpec,
    prev: &HealthResult,
    verdict: Verdict,
    since_start: Duration,
    now: f64,
) -> Option<HealthResult> {
    match verdict {
        Verdict::Healthy => Some(prev.succeeded(now)),
        Verdict::Unchanged => None,
        Verdict::Unhealthy(_)
            if prev.first_success.is_none()
                && since_start.as_secs_f64() < spec.grace_period_secs =>
        {
            None
        }
        Verdict::Unhealthy(cause) => Some(prev.failed(now, cause)),
    }
}

fn interval_of(spec: &HealthCheckSpec) -> Duration {
    Duration::try_from_secs_f64(spec.interval_secs.clamp(0.1, 86_400.0))
        .unwrap_or(Duration::from_secs(60))
}

/// Starts the checks `specs` of a task with results `prior` (from before an agent restart; empty
/// for a new task). The grace period counts from now.
pub fn start(
    specs: Vec<HealthCheckSpec>,
    prior: Vec<HealthResult>,
    ctx: ProbeContext,
    report: Reporter,
) -> TaskChecks {
    let n = specs.len();
    let mut initial = prior;
    initial.resize(n, HealthResult::default());
    let results = Arc::new(Mutex::new(initial));
    let ctx = Arc::new(ctx);
    let started = Instant::now();
    let loops = specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let results = results.clone();
            let ctx = ctx.clone();
            let report = report.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval_of(&spec));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let verdict = probe(&spec, &ctx).await;
                    let now = now_secs();
                    let changed = {
                        let mut all = results.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(prev) = all.get(i).cloned() else {
                            return;
                        };
                        match next_result(&spec, &prev, verdict, started.elapsed(), now) {
                            Some(next) => {
                                let worth = worth_reporting(&prev, &next);
                                all[i] = next;
                                worth.then(|| all.clone())
                            }
                            None => None,
                        }
                    };
                    if let Some(all) = changed {
                        report(all);
                    }
                }
            })
            .abort_handle()
        })
        .collect();
    TaskChecks { loops }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_ignores_failures_until_the_first_success() {
        let spec = HealthCheckSpec {
            grace_period_secs: 10.0,
            ..HealthCheckSpec::default()
        };
        let fresh = HealthResult::default();
        let fail = || Verdict::Unhealthy("HTTP status 500".into());
        assert_eq!(
            next_result(&spec, &fresh, fail(), Duration::from_secs(1), 1.0),
            None,
            "in the grace period before any success"
        );
        let after = next_result(&spec, &fresh, fail(), Duration::from_secs(11), 11.0)
            .expect("counted after the grace period");
        assert_eq!(after.consecutive_failures, 1);
        assert_eq!(after.last_failure_cause.as_deref(), Some("HTTP status 500"));
        let ok = next_result(&spec, &fresh, Verdict::Healthy, Duration::ZERO, 2.0).expect("ok");
        let counted = next_result(&spec, &ok, fail(), Duration::from_secs(3), 3.0)
            .expect("after a success failures count, grace or not");
        assert!(!counted.alive && counted.consecutive_failures == 1);
        assert_eq!(
            next_result(&spec, &ok, Verdict::Unchanged, Duration::ZERO, 4.0),
            None
        );
        assert!(worth_reporting(&ok, &counted));
        let again = ok.succeeded(5.0);
        assert!(
            !worth_reporting(&ok, &again),
            "success after success is quiet"
        );
    }
}
