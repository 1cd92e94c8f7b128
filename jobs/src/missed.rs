//! Missed runs: the explicit catch-up policy (none / one / all, plus a starting deadline) and the
//! pure `due` function that says which slots run at `now`, given the restorable progress state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::schedule::{Repetitions, Schedule};

/// What to do with slots that passed while the scheduler was down or the job was starved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Skip missed slots; run a slot only when it is on time (within the starting deadline, or
    /// [`ON_TIME_TOLERANCE_SECONDS`] without one), otherwise wait for the next future slot.
    None,
    /// Chronos 3.x: one catch-up run for however many slots were missed, then back on the grid.
    #[default]
    One,
    /// Every missed slot runs, oldest first, at most [`MissedRunPolicy::all_limit`] of them (the
    /// most recent ones; older ones are skipped).
    All,
}

/// Without a starting deadline, `CatchUp::None` still runs a slot this late (Chronos 2.x's
/// default `epsilon` was also 60 s).
pub const ON_TIME_TOLERANCE_SECONDS: u64 = 60;

/// Default cap on catch-up runs under `CatchUp::All`.
pub const DEFAULT_ALL_LIMIT: u32 = 100;

/// Per-job missed-run policy (a plain value stored with the job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissedRunPolicy {
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Most catch-up runs `CatchUp::All` starts in one go.
    #[serde(default = "default_all_limit")]
    pub all_limit: u32,
    /// A slot older than this at `now` is never started, whatever the policy (Metronome's
    /// `startingDeadlineSeconds`).
    #[serde(default)]
    pub starting_deadline_seconds: Option<u64>,
}

fn default_all_limit() -> u32 {
    DEFAULT_ALL_LIMIT
}

impl Default for MissedRunPolicy {
    fn default() -> Self {
        MissedRunPolicy {
            catch_up: CatchUp::One,
            all_limit: DEFAULT_ALL_LIMIT,
            starting_deadline_seconds: None,
        }
    }
}

/// What the scheduler must remember about a schedule between calls to [`due`]; a plain serde
/// value to store with the job so a restarted master neither skips nor repeats a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleProgress {
    /// Every slot at or before this instant has been handled (run or skipped). `None`: nothing
    /// handled yet, the schedule's first slot is still ahead.
    pub last_handled: Option<DateTime<Utc>>,
    /// Scheduled runs left (`Rn` counted here, never in the schedule text). Only scheduled runs
    /// consume it: retries and manual runs do not touch it.
    pub runs_remaining: Repetitions,
}

impl ScheduleProgress {
    /// Progress of a job submitted at `submitted_at`: an ISO 8601 schedule starts at its anchor
    /// (a start in the past is a missed slot, as in Chronos); cron starts after submission.
    pub fn new(schedule: &Schedule, submitted_at: DateTime<Utc>) -> ScheduleProgress {
        let last_handled = match schedule {
            Schedule::Iso8601(_) => None,
            Schedule::Cron(_) => Some(submitted_at),
        };
        ScheduleProgress {
            last_handled,
            runs_remaining: schedule.repetitions(),
        }
    }

    /// True once `Rn` is used up.
    pub fn exhausted(&self) -> bool {
        self.runs_remaining == Repetitions::Count(0)
    }
}

/// The answer of [`due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRuns {
    /// Slots to start now, oldest first (each is the run's due time, e.g. for the task id).
    pub runs: Vec<DateTime<Utc>>,
    /// Slots passed over (missed, expired or beyond `Rn`); cron counts stop at [`COUNT_CAP`].
    pub skipped: u64,
    /// State to store *before* starting the runs.
    pub progress: ScheduleProgress,
    /// When to call [`due`] again (`None`: the schedule is finished).
    pub next_wakeup: Option<DateTime<Utc>>,
}

/// Counting skipped cron slots stops here (an ISO 8601 count is exact).
pub const COUNT_CAP: u64 = 1_000_000;

/// Which slots of `schedule` are due at `now`, given `progress` and `policy`.
///
/// Considers the slots in `(progress.last_handled, now]`, picks the runs by policy, caps them by
/// the runs remaining, and returns the progress that marks all of those slots handled. Pure and
/// deterministic: call it again with the returned progress at the same `now` and nothing is due.
pub fn due(
    schedule: &Schedule,
    policy: &MissedRunPolicy,
    progress: &ScheduleProgress,
    now: DateTime<Utc>,
) -> DueRuns {
    let handled = progress.last_handled;
    let latest = schedule
        .last_at_or_before(now)
        .filter(|l| handled.is_none_or(|h| *l > h));
    let Some(latest) = latest else {
        return DueRuns {
            runs: Vec::new(),
            skipped: 0,
            progress: *progress,
            next_wakeup: wakeup(schedule, progress, now),
        };
    };
    let total = schedule.count_between(handled, latest, COUNT_CAP);
    let deadline = policy.starting_deadline_seconds.map(seconds);
    let startable = |slot: DateTime<Utc>| deadline.is_none_or(|d| now - slot <= d);
    let mut runs = match policy.catch_up {
        CatchUp::None => {
            let tolerance = deadline.unwrap_or_else(|| seconds(ON_TIME_TOLERANCE_SECONDS));
            if now - latest <= tolerance {
                vec![latest]
            } else {
                Vec::new()
            }
        }
        CatchUp::One => {
            if startable(latest) {
                vec![latest]
            } else {
                Vec::new()
            }
        }
        CatchUp::All => {
            let mut picked = Vec::new();
            let mut slot = Some(latest);
            while let Some(s) = slot {
                let unhandled = handled.is_none_or(|h| s > h);
                if !unhandled || !startable(s) || picked.len() >= policy.all_limit as usize {
                    break;
                }
                picked.push(s);
                slot = s
                    .checked_sub_signed(Duration::nanoseconds(1))
                    .and_then(|before| schedule.last_at_or_before(before));
            }
            picked.reverse();
            picked
        }
    };
    let mut runs_remaining = progress.runs_remaining;
    if let Repetitions::Count(n) = runs_remaining {
        runs.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        runs_remaining = Repetitions::Count(n - runs.len() as u64);
    }
    let next = ScheduleProgress {
        last_handled: Some(latest),
        runs_remaining,
    };
    DueRuns {
        skipped: total.saturating_sub(runs.len() as u64),
        runs,
        next_wakeup: wakeup(schedule, &next, now),
        progress: next,
    }
}

fn seconds(s: u64) -> Duration {
    let max = i64::MAX / 1000;
    Duration::seconds(i64::try_from(s).unwrap_or(max).min(max))
}

/// The next slot after both `now` and the last handled one, unless `Rn` is used up.
fn wakeup(
    schedule: &Schedule,
    progress: &ScheduleProgress,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if progress.exhausted() {
        return None;
    }
    let from = progress.last_handled.map_or(now, |h| h.max(now));
    schedule.next_after(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hourly() -> Schedule {
        Schedule::iso8601(
            "R/2024-01-15T10:00:00Z/PT1H",
            None,
            t("2024-01-15T00:00:00Z"),
        )
        .unwrap()
    }

    fn policy(catch_up: CatchUp) -> MissedRunPolicy {
        MissedRunPolicy {
            catch_up,
            ..MissedRunPolicy::default()
        }
    }

    #[test]
    fn policies_after_a_three_slot_outage() {
        let s = hourly();
        let p = ScheduleProgress::new(&s, t("2024-01-15T09:00:00Z"));
        let now = t("2024-01-15T12:00:30Z");
        let one = due(&s, &policy(CatchUp::One), &p, now);
        assert_eq!(one.runs, vec![t("2024-01-15T12:00:00Z")]);
        assert_eq!(one.skipped, 2);
        assert_eq!(one.next_wakeup, Some(t("2024-01-15T13:00:00Z")));
        let all = due(&s, &policy(CatchUp::All), &p, now);
        assert_eq!(all.runs.len(), 3);
        assert_eq!(all.skipped, 0);
        let none = due(&s, &policy(CatchUp::None), &p, now);
        assert_eq!(
            none.runs,
            vec![t("2024-01-15T12:00:00Z")],
            "12:00 is 30 s late: on time"
        );
        let none = due(&s, &policy(CatchUp::None), &p, t("2024-01-15T12:05:00Z"));
        assert!(none.runs.is_empty());
        assert_eq!(none.skipped, 3);
        // The same call again with the stored progress starts nothing.
        let again = due(&s, &policy(CatchUp::One), &one.progress, now);
        assert!(again.runs.is_empty());
        assert_eq!(again.skipped, 0);
    }

    #[test]
    fn all_is_bounded_and_deadline_expires_slots() {
        let s = hourly();
        let p = ScheduleProgress::new(&s, t("2024-01-15T09:00:00Z"));
        let now = t("2024-01-16T10:30:00Z");
        let capped = due(
            &s,
            &MissedRunPolicy {
                all_limit: 2,
                ..policy(CatchUp::All)
            },
            &p,
            now,
        );
        assert_eq!(
            capped.runs,
            vec![t("2024-01-16T09:00:00Z"), t("2024-01-16T10:00:00Z")]
        );
        assert_eq!(capped.skipped, 23);
        let deadline = MissedRunPolicy {
            starting_deadline_seconds: Some(3600),
            ..policy(CatchUp::All)
        };
        let d = due(&s, &deadline, &p, now);
        assert_eq!(d.runs, vec![t("2024-01-16T10:00:00Z")]);
        let half_hour = MissedRunPolicy {
            catch_up: CatchUp::One,
            starting_deadline_seconds: Some(1800),
            ..deadline
        };
        let d = due(&s, &half_hour, &p, t("2024-01-16T11:59:00Z"));
        assert!(
            d.runs.is_empty(),
            "11:00 is 59 min late, past the 30 min deadline"
        );
        assert_eq!(d.skipped, 26);
    }

    #[test]
    fn runs_remaining_caps_runs_and_ends_the_schedule() {
        let s = Schedule::iso8601(
            "R2/2024-01-15T10:00:00Z/PT1H",
            None,
            t("2024-01-15T00:00:00Z"),
        )
        .unwrap();
        let p = ScheduleProgress::new(&s, t("2024-01-15T00:00:00Z"));
        let d = due(&s, &policy(CatchUp::All), &p, t("2024-01-15T14:00:00Z"));
        assert_eq!(
            d.runs,
            vec![t("2024-01-15T10:00:00Z"), t("2024-01-15T11:00:00Z")]
        );
        assert_eq!(d.skipped, 3);
        assert!(d.progress.exhausted());
        assert_eq!(d.next_wakeup, None);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let s = Schedule::iso8601(
            "R/2008-03-01T13:00:00Z/P2147483647Y",
            None,
            t("2024-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(s.next_after(t("2024-01-01T00:00:00Z")), None);
        let s = Schedule::iso8601("R1//PT1H", None, DateTime::<Utc>::MIN_UTC).unwrap();
        assert!(s.next_after(DateTime::<Utc>::MIN_UTC).is_some());
        let policy = MissedRunPolicy {
            starting_deadline_seconds: Some(u64::MAX),
            ..MissedRunPolicy::default()
        };
        let s = hourly();
        let d = due(
            &s,
            &policy,
            &ScheduleProgress::new(&s, t("2024-01-01T00:00:00Z")),
            t("2030-01-01T00:00:00Z"),
        );
        assert_eq!(d.runs, vec![t("2030-01-01T00:00:00Z")]);
    }

    #[test]
    fn progress_is_a_plain_json_value() {
        let p = ScheduleProgress {
            last_handled: Some(t("2024-01-15T10:00:00.123456789Z")),
            runs_remaining: Repetitions::Count(3),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"lastHandled":"2024-01-15T10:00:00.123456789Z","runsRemaining":{"count":3}}"#
        );
        assert_eq!(serde_json::from_str::<ScheduleProgress>(&json).unwrap(), p);
        let policy: MissedRunPolicy = serde_json::from_str(r#"{"catchUp":"all"}"#).unwrap();
        assert_eq!(policy.catch_up, CatchUp::All);
        assert_eq!(policy.all_limit, DEFAULT_ALL_LIMIT);
    }
}
