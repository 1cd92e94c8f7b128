//! Marathon's launch backoff: after an instance fails (or exits), the app waits before the next launch,
//! `backoffSeconds` at first, multiplied by `backoffFactor` up to `maxLaunchDelaySeconds`.

use super::state::{LaunchDelay, ServiceState};
use crate::store::records::TaskRecord;
use gantry_proto::TaskState;

/// Applies the ends of app instances: each one that failed or exited on its own (not killed), or
/// was killed for failed health checks, delays its app's next launch.
pub fn record_ends(svc: &mut ServiceState, ended: &[TaskRecord], now: f64) {
    for rec in ended {
        let failed = (matches!(rec.state, TaskState::TaskFailed | TaskState::TaskFinished)
            && !rec.kill_requested)
            || rec.killed_unhealthy();
        let Some(app) = rec.app_id().and_then(|id| svc.apps.get(id)) else {
            continue;
        };
        if !failed {
            continue;
        }
        let (base, factor, max) = (
            app.backoff_seconds as f64,
            app.backoff_factor,
            app.max_launch_delay_seconds as f64,
        );
        let id = app.id.clone();
        let d = next_delay(svc.launch_delays.get(&id), base, factor, max, now);
        svc.launch_delays.insert(
            id,
            LaunchDelay {
                delay_secs: d,
                until: now + d,
            },
        );
    }
}

/// The launch delay after a failure: `base` at first, then multiplied by `factor` up to `max`.
/// A failure after a quiet period (no failure for `max` seconds since the last delay ended) starts
/// again from `base`, as Marathon forgets old failures.
pub fn next_delay(prev: Option<&LaunchDelay>, base: f64, factor: f64, max: f64, now: f64) -> f64 {
    match prev {
        Some(p) if now - p.until < max => (p.delay_secs * factor).min(max),
        _ => base.min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset_after_quiet() {
        let d1 = next_delay(None, 1.0, 2.0, 5.0, 100.0);
        assert_eq!(d1, 1.0);
        let p = LaunchDelay {
            delay_secs: d1,
            until: 101.0,
        };
        let d2 = next_delay(Some(&p), 1.0, 2.0, 5.0, 102.0);
        assert_eq!(d2, 2.0);
        let p = LaunchDelay {
            delay_secs: 4.0,
            until: 110.0,
        };
        assert_eq!(next_delay(Some(&p), 1.0, 2.0, 5.0, 111.0), 5.0, "capped");
        assert_eq!(
            next_delay(Some(&p), 1.0, 2.0, 5.0, 116.0),
            1.0,
            "quiet for max seconds: reset"
        );
    }
}
