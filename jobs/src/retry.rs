//! Retry policy for a failed run: attempts with a per-job delay and optional exponential backoff,
//! Chronos's task-state rules (spec §4.4) and softError (§4.3). Retries never touch the schedule.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::readiness::RunOutcome;

/// Per-job retry settings (Chronos `retries`; Gantry adds the delay and backoff, #633).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Extra attempts after a failed attempt; 0 = none (Chronos default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry (Chronos's global `--failure_retry`, 60 s).
    #[serde(default = "default_delay")]
    pub retry_delay_seconds: u64,
    /// Each further retry waits this many times longer (1.0 = constant delay).
    #[serde(default = "default_factor")]
    pub backoff_factor: f64,
    /// Upper bound on one delay.
    #[serde(default)]
    pub max_retry_delay_seconds: Option<u64>,
}

fn default_retries() -> u32 {
    2
}
fn default_delay() -> u64 {
    60
}
fn default_factor() -> f64 {
    1.0
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: default_retries(),
            retry_delay_seconds: default_delay(),
            backoff_factor: default_factor(),
            max_retry_delay_seconds: None,
        }
    }
}

/// Why a retry policy was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RetryError {
    #[error("backoffFactor {value} must be a finite number of at least 1")]
    BackoffFactor { value: f64 },
    #[error("maxRetryDelaySeconds {max} is below retryDelaySeconds {delay}")]
    MaxDelay { max: u64, delay: u64 },
}

/// How a task attempt ended (the terminal Mesos task states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskEnd {
    Finished,
    Failed,
    Lost,
    Killed,
    Error,
    Dropped,
    Gone,
}

/// What to do after an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "decision")]
pub enum RetryDecision {
    /// The run succeeded.
    Succeeded,
    /// Launch attempt `attempt` of the same run at `at` (same due time, same slot, `Rn` untouched).
    Retry { attempt: u32, at: DateTime<Utc> },
    /// The run failed for good; `triggers_dependents` is the job's `softError`.
    GaveUp { triggers_dependents: bool },
    /// Killed on request: neither retried nor counted as a failure (Chronos).
    Cancelled,
}

impl RetryDecision {
    /// The run's final outcome for [`crate::DagProgress::record_finished`], once there is one.
    pub fn outcome(&self) -> Option<RunOutcome> {
        match self {
            RetryDecision::Succeeded => Some(RunOutcome::Succeeded),
            RetryDecision::GaveUp { .. } => Some(RunOutcome::Failed),
            RetryDecision::Retry { .. } | RetryDecision::Cancelled => None,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), RetryError> {
        if !self.backoff_factor.is_finite() || self.backoff_factor < 1.0 {
            return Err(RetryError::BackoffFactor {
                value: self.backoff_factor,
            });
        }
        if let Some(max) = self.max_retry_delay_seconds {
            if max < self.retry_delay_seconds {
                return Err(RetryError::MaxDelay {
                    max,
                    delay: self.retry_delay_seconds,
                });
            }
        }
        Ok(())
    }

    /// Delay before attempt `next_attempt` (1 = first retry): delay × factor^(n−1), capped.
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let exponent = next_attempt.saturating_sub(1).min(1024) as i32;
        let secs = self.retry_delay_seconds as f64 * self.backoff_factor.max(1.0).powi(exponent);
        let cap = self.max_retry_delay_seconds.map_or(f64::MAX, |m| m as f64);
        // 100 years is far beyond any useful delay and keeps the Duration in range.
        let secs = secs.min(cap).min(3.2e9);
        Duration::milliseconds((secs * 1000.0).round() as i64)
    }

    /// Decide after attempt `attempt` (0 = the first launch) ended with `end` at `ended_at`.
    ///
    /// `FAILED`, `LOST`, `DROPPED` and `GONE` are retried while `attempt < retries`; `ERROR` (the
    /// task could not be valid) fails at once; `KILLED` cancels. Chronos silently forgot
    /// `ERROR`/`DROPPED`/`GONE` and refused retries to a job whose previous run had failed; here
    /// every run gets its retries and no attempt ends without a decision.
    pub fn decide(
        &self,
        soft_error: bool,
        attempt: u32,
        end: TaskEnd,
        ended_at: DateTime<Utc>,
    ) -> RetryDecision {
        let give_up = RetryDecision::GaveUp {
            triggers_dependents: soft_error,
        };
        match end {
            TaskEnd::Finished => RetryDecision::Succeeded,
            TaskEnd::Killed => RetryDecision::Cancelled,
            TaskEnd::Error => give_up,
            TaskEnd::Failed | TaskEnd::Lost | TaskEnd::Dropped | TaskEnd::Gone => {
                if attempt < self.retries {
                    let next = attempt + 1;
                    RetryDecision::Retry {
                        attempt: next,
                        at: ended_at
                            .checked_add_signed(self.delay_before(next))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC),
                    }
                } else {
                    give_up
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn chronos_defaults_two_retries_a_minute_apart() {
        let p = RetryPolicy::default();
        let at = t("2024-01-15T12:00:00Z");
        assert_eq!(
            p.decide(false, 0, TaskEnd::Failed, at),
            RetryDecision::Retry {
                attempt: 1,
                at: t("2024-01-15T12:01:00Z")
            }
        );
        assert_eq!(
            p.decide(false, 1, TaskEnd::Lost, at),
            RetryDecision::Retry {
                attempt: 2,
                at: t("2024-01-15T12:01:00Z")
            }
        );
        assert_eq!(
            p.decide(false, 2, TaskEnd::Failed, at),
            RetryDecision::GaveUp {
                triggers_dependents: false
            }
        );
        assert_eq!(
            p.decide(true, 2, TaskEnd::Failed, at),
            RetryDecision::GaveUp {
                triggers_dependents: true
            }
        );
        assert_eq!(
            p.decide(false, 0, TaskEnd::Killed, at),
            RetryDecision::Cancelled
        );
        assert_eq!(
            p.decide(false, 0, TaskEnd::Finished, at).outcome(),
            Some(RunOutcome::Succeeded)
        );
        assert_eq!(
            p.decide(false, 0, TaskEnd::Error, at).outcome(),
            Some(RunOutcome::Failed)
        );
        let none = RetryPolicy { retries: 0, ..p };
        assert!(matches!(
            none.decide(false, 0, TaskEnd::Failed, at),
            RetryDecision::GaveUp { .. }
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            retries: 10,
            retry_delay_seconds: 30,
            backoff_factor: 2.0,
            max_retry_delay_seconds: Some(300),
        };
        assert!(p.validate().is_ok());
        let secs: Vec<i64> = (1..=6).map(|n| p.delay_before(n).num_seconds()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
        assert!(RetryPolicy {
            backoff_factor: 0.5,
            ..p
        }
        .validate()
        .is_err());
        assert!(RetryPolicy {
            backoff_factor: f64::NAN,
            ..p
        }
        .validate()
        .is_err());
        assert!(RetryPolicy {
            max_retry_delay_seconds: Some(10),
            ..p
        }
        .validate()
        .is_err());
        let huge = RetryPolicy {
            backoff_factor: 1e300,
            max_retry_delay_seconds: None,
            ..p
        };
        assert!(huge.delay_before(50).num_days() < 365 * 200);
    }

    #[test]
    fn policy_json_uses_defaults() {
        let p: RetryPolicy = serde_json::from_str(r#"{"retries":3}"#).unwrap();
        assert_eq!(
            p,
            RetryPolicy {
                retries: 3,
                ..RetryPolicy::default()
            }
        );
    }
}
