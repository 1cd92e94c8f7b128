//! Health checks the agent runs next to a task (Marathon's `healthChecks`, with the port resolved
//! to the task's host port by the master) and the result of each, as Marathon shows them.

use serde::{Deserialize, Serialize};

/// How a check probes the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthProtocol {
    /// `GET path`; healthy on 200-399.
    #[default]
    Http,
    /// As HTTP over TLS; the certificate is not verified (as Marathon).
    Https,
    /// A TCP connection that opens.
    Tcp,
    /// A shell command that exits 0.
    Command,
}

/// One health check of a task, as the agent runs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckSpec {
    pub protocol: HealthProtocol,
    /// The HTTP path (HTTP and HTTPS).
    pub path: String,
    /// The port probed on the agent's loopback (HTTP, HTTPS, TCP): the host port `portIndex`
    /// names, or the fixed `port`.
    pub port: Option<u16>,
    /// The shell command (COMMAND).
    pub command: Option<String>,
    pub grace_period_secs: f64,
    pub interval_secs: f64,
    pub timeout_secs: f64,
    /// Consecutive failures after which the task is killed; 0 never kills a Marathon-level check
    /// (HTTP, HTTPS, TCP) and kills a Mesos-level one (COMMAND, MESOS_*) at its first failure.
    pub max_consecutive_failures: u32,
    /// Whether Mesos would run it (COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP).
    pub mesos_level: bool,
    /// A 1xx answer leaves the result as it was.
    pub ignore_http1xx: bool,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        HealthCheckSpec {
            protocol: HealthProtocol::Http,
            path: "/".into(),
            port: None,
            command: None,
            grace_period_secs: 300.0,
            interval_secs: 60.0,
            timeout_secs: 20.0,
            max_consecutive_failures: 3,
            mesos_level: false,
            ignore_http1xx: false,
        }
    }
}

impl HealthCheckSpec {
    /// Whether `result` has reached the failures that get the task killed.
    pub fn kill_due(&self, result: &HealthResult) -> bool {
        if result.alive || result.consecutive_failures == 0 {
            return false;
        }
        match self.max_consecutive_failures {
            0 => self.mesos_level,
            max => result.consecutive_failures >= max,
        }
    }
}

/// The result of one health check of a task (Marathon's `Health`), times in seconds since the
/// epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_success: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_cause: Option<String>,
}

impl HealthResult {
    /// No probe has counted yet (a placeholder beside another check's first result).
    pub fn is_pending(&self) -> bool {
        self.last_success.is_none() && self.last_failure.is_none()
    }

    /// The result after a success at `now`.
    pub fn succeeded(&self, now: f64) -> HealthResult {
        HealthResult {
            alive: true,
            consecutive_failures: 0,
            first_success: self.first_success.or(Some(now)),
            last_success: Some(now),
            ..self.clone()
        }
    }

    /// The result after a failure at `now` because of `cause`.
    pub fn failed(&self, now: f64, cause: String) -> HealthResult {
        HealthResult {
            alive: false,
            consecutive_failures: self.consecutive_failures.saturating_add(1),
            last_failure: Some(now),
            last_failure_cause: Some(cause),
            ..self.clone()
        }
    }
}

/// The first check of `checks` whose result in `results` (same order) gets the task killed.
pub fn kill_due<'a>(
    checks: &[HealthCheckSpec],
    results: &'a [HealthResult],
) -> Option<&'a HealthResult> {
    checks
        .iter()
        .zip(results)
        .find(|(c, r)| c.kill_due(r))
        .map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_after_max_failures_and_zero_depends_on_the_level() {
        let spec = HealthCheckSpec {
            max_consecutive_failures: 2,
            ..HealthCheckSpec::default()
        };
        assert!(HealthResult::default().is_pending());
        let ok = HealthResult::default().succeeded(1.0);
        assert!(!ok.is_pending());
        assert!(ok.alive && ok.first_success == Some(1.0));
        let f1 = ok.failed(2.0, "HTTP 500".into());
        assert_eq!(f1.consecutive_failures, 1);
        assert_eq!(f1.first_success, Some(1.0), "firstSuccess is kept");
        assert!(!spec.kill_due(&f1));
        let f2 = f1.failed(3.0, "HTTP 500".into());
        assert!(spec.kill_due(&f2));
        let f2s = std::slice::from_ref(&f2);
        assert_eq!(kill_due(std::slice::from_ref(&spec), f2s), Some(&f2));
        let back = f2.succeeded(4.0);
        assert_eq!(
            (back.consecutive_failures, back.last_failure),
            (0, Some(3.0))
        );
        let never = HealthCheckSpec {
            max_consecutive_failures: 0,
            ..HealthCheckSpec::default()
        };
        assert!(
            !never.kill_due(&f2),
            "0: a Marathon-level check never kills"
        );
        let mesos = HealthCheckSpec {
            mesos_level: true,
            ..never
        };
        assert!(mesos.kill_due(&f1), "0: a Mesos-level check kills at once");
    }

    #[test]
    fn old_frames_without_health_fields_parse() {
        let spec: HealthCheckSpec = serde_json::from_str(r#"{"protocol":"TCP"}"#).unwrap();
        assert_eq!(spec.protocol, HealthProtocol::Tcp);
        assert_eq!(spec.max_consecutive_failures, 3);
        let r: HealthResult = serde_json::from_str("{}").unwrap();
        assert_eq!(r, HealthResult::default());
    }
}
