//! The rolling-replace arithmetic of Marathon's `TaskReplaceActor` (spec §2.8), as a pure function
//! of what runs now, so that a plan resumed after a master restart continues where it was.

use crate::services::app_definition::UpgradeStrategy;
use crate::store::records::TaskRecord;
use gantry_proto::TaskState;

/// Does this task count as ready for a deployment? TASK_RUNNING, and healthy when its app has
/// health checks (every check has a result and is alive), as Marathon waits for. A new task of an
/// app with a readiness check must also have passed it (`readiness::passed`, which callers add).
pub fn is_ready(t: &TaskRecord) -> bool {
    t.state == TaskState::TaskRunning
        && (t.info.health_checks.is_empty() || crate::services::health::is_healthy(t))
}

/// An app's instances during a replace, split by configuration (old = not the app's current one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub old_ready: usize,
    pub old_unready: usize,
    pub new_ready: usize,
    pub new_unready: usize,
}

/// What the controller does next for a replace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Move {
    /// Old instances that are not ready to kill (killed first: they serve nobody).
    pub kill_old_unready: usize,
    /// Ready old instances to kill.
    pub kill_old_ready: usize,
    /// New instances to launch.
    pub launch: usize,
}

/// The next move of a rolling replace to `instances` of the new configuration:
/// - `minHealthy = ceil(instances × minimumHealthCapacity)`, `maxCapacity = floor(instances × (1 +
///   maximumOverCapacity))`; when they are equal a normal app may run one over (a resident one
///   kills one more instead), else nothing could move;
/// - old instances beyond `instances` go at once; ready old instances are killed while the ready
///   ones left (old and new) stay at least `minHealthy`, so one old goes per new one that turns
///   ready;
/// - new instances are launched while the total stays within `maxCapacity`.
pub fn next_move(instances: u32, strategy: UpgradeStrategy, resident: bool, c: Census) -> Move {
    let n = instances as usize;
    let mut min_healthy = (instances as f64 * strategy.minimum_health_capacity).ceil() as usize;
    let mut max_capacity =
        (instances as f64 * (1.0 + strategy.maximum_over_capacity)).floor() as usize;
    if n > 0 && min_healthy >= max_capacity {
        if resident {
            min_healthy = max_capacity.saturating_sub(1);
        } else {
            max_capacity = min_healthy + 1;
        }
    }
    let new_total = c.new_ready + c.new_unready;
    // Old instances beyond `instances` (a forced deployment left them), not-ready ones first.
    let old_total = c.old_ready + c.old_unready;
    let extra = old_total.saturating_sub(n);
    let kill_old_unready = c.old_unready;
    let extra_ready = extra.saturating_sub(kill_old_unready);
    let ready = c.old_ready + c.new_ready;
    let may_kill = ready.saturating_sub(min_healthy).max(extra_ready);
    let kill_old_ready = may_kill.min(c.old_ready);
    let old_left = old_total - kill_old_unready - kill_old_ready;
    let room = max_capacity.saturating_sub(old_left + new_total);
    let launch = n.saturating_sub(new_total).min(room);
    Move {
        kill_old_unready,
        kill_old_ready,
        launch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(min: f64, over: f64) -> UpgradeStrategy {
        UpgradeStrategy {
            minimum_health_capacity: min,
            maximum_over_capacity: over,
        }
    }

    fn census(old_ready: usize, new_ready: usize, new_unready: usize) -> Census {
        Census {
            old_ready,
            old_unready: 0,
            new_ready,
            new_unready,
        }
    }

    /// Plays a whole replace, one new instance turning ready per round, and returns the lowest
    /// ready count seen and the highest total.
    fn play(n: u32, s: UpgradeStrategy) -> (usize, usize) {
        let mut c = census(n as usize, 0, 0);
        let (mut lowest, mut highest) = (n as usize, n as usize);
        for _ in 0..(4 * n + 4) {
            let m = next_move(n, s, false, c);
            c.old_ready -= m.kill_old_ready;
            c.new_unready += m.launch;
            lowest = lowest.min(c.old_ready + c.new_ready);
            highest = highest.max(c.old_ready + c.new_ready + c.new_unready);
            if c.new_unready > 0 {
                c.new_unready -= 1;
                c.new_ready += 1;
            }
            if c.old_ready == 0 && c.new_ready == n as usize {
                return (lowest, highest);
            }
        }
        panic!("the replace did not finish: {c:?}");
    }

    #[test]
    fn the_arithmetic_of_spec_2_8() {
        // Defaults (1, 1): all new next to the old, nothing killed until new ones are ready.
        assert_eq!(
            next_move(10, strategy(1.0, 1.0), false, census(10, 0, 0)),
            Move {
                kill_old_unready: 0,
                kill_old_ready: 0,
                launch: 10
            }
        );
        // One new ready: one old goes.
        assert_eq!(
            next_move(10, strategy(1.0, 1.0), false, census(10, 1, 9)).kill_old_ready,
            1
        );
        // (0, 0): everything old is killed first.
        let m = next_move(10, strategy(0.0, 0.0), false, census(10, 0, 0));
        assert_eq!((m.kill_old_ready, m.launch), (10, 10));
        // (0.5, 0): five go at once and five new start.
        let m = next_move(10, strategy(0.5, 0.0), false, census(10, 0, 0));
        assert_eq!((m.kill_old_ready, m.launch), (5, 5));
        let m = next_move(10, strategy(0.5, 0.0), false, census(5, 0, 5));
        assert_eq!(
            (m.kill_old_ready, m.launch),
            (0, 0),
            "wait for the new ones"
        );
        let m = next_move(10, strategy(0.5, 0.0), false, census(5, 1, 4));
        assert_eq!((m.kill_old_ready, m.launch), (1, 1));
        // (1, 0): minHealthy == maxCapacity, so one over capacity.
        let m = next_move(3, strategy(1.0, 0.0), false, census(3, 0, 0));
        assert_eq!((m.kill_old_ready, m.launch), (0, 1));
        // ... and a resident app kills one more instead.
        let m = next_move(3, strategy(1.0, 0.0), true, census(3, 0, 0));
        assert_eq!((m.kill_old_ready, m.launch), (1, 1));
        // Old ones beyond `instances` go at once, not-ready ones first.
        let m = next_move(
            2,
            strategy(1.0, 1.0),
            false,
            Census {
                old_ready: 3,
                old_unready: 1,
                new_ready: 0,
                new_unready: 0,
            },
        );
        assert_eq!((m.kill_old_unready, m.kill_old_ready), (1, 1));
    }

    #[test]
    fn a_replace_never_goes_below_min_healthy_nor_above_max_capacity() {
        for (min, over) in [(1.0, 1.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.0), (1.0, 0.0)] {
            for n in [1, 2, 5, 10, 33] {
                let (lowest, highest) = play(n, strategy(min, over));
                let min_healthy = (n as f64 * min).ceil() as usize;
                let max_capacity =
                    ((n as f64 * (1.0 + over)).floor() as usize).max(min_healthy + 1);
                assert!(lowest >= min_healthy, "({min},{over}) n={n}: {lowest}");
                assert!(highest <= max_capacity, "({min},{over}) n={n}: {highest}");
            }
        }
    }
}
