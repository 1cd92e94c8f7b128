//! A job's schedule: an ISO 8601 repeating interval or a cron expression, both in a time zone,
//! behind one type whose occurrences the missed-run logic walks.

pub mod cron;
pub mod iso8601;
pub mod zone;

use chrono::{DateTime, Utc};
use thiserror::Error;

pub use self::cron::{CronError, CronSchedule};
pub use self::iso8601::{Iso8601Error, Iso8601Schedule, Period, Repetitions};
pub use self::zone::{parse_zone, Zone, ZoneError};

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Iso8601(#[from] Iso8601Error),
    #[error(transparent)]
    Cron(#[from] CronError),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Iso8601(Iso8601Schedule),
    Cron(CronSchedule),
}

impl Schedule {
    /// Parse a Chronos `schedule` + `scheduleTimeZone`; `now` fixes an empty start (see
    /// [`Iso8601Schedule::parse`]).
    pub fn iso8601(
        text: &str,
        time_zone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::Iso8601(Iso8601Schedule::parse(
            text, time_zone, now,
        )?))
    }

    /// Parse a Metronome-style cron expression in an IANA zone (`None` = UTC).
    pub fn cron(expr: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::Cron(CronSchedule::parse(expr, time_zone)?))
    }

    /// Scheduled runs allowed: `Rn` for ISO 8601, unbounded for cron.
    pub fn repetitions(&self) -> Repetitions {
        match self {
            Schedule::Iso8601(s) => s.repetitions(),
            Schedule::Cron(_) => Repetitions::Infinite,
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Iso8601(s) => s.next_after(t),
            Schedule::Cron(s) => s.next_after(t),
        }
    }

    /// The last slot at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Iso8601(s) => s.last_at_or_before(t).map(|(_, o)| o),
            Schedule::Cron(s) => s.last_at_or_before(t),
        }
    }

    /// Number of slots in `(after, upto]`, `after = None` meaning from the first slot (cron has no
    /// first slot; `None` counts nothing). Cron counts by walking and stops at `cap`.
    pub fn count_between(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        cap: u64,
    ) -> u64 {
        match self {
            Schedule::Iso8601(s) => s.count_between(after, upto),
            Schedule::Cron(s) => {
                let Some(mut t) = after else { return 0 };
                let mut n = 0;
                while n < cap {
                    match s.next_after(t) {
                        Some(o) if o <= upto => {
                            n += 1;
                            t = o;
                        }
                        _ => break,
                    }
                }
                n
            }
        }
    }
}

/// The first occurrence of `schedule` strictly after `t` (the function the scheduler loop calls).
pub fn next_after(schedule: &Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(t)
}
