//! What `gantry jobs list` and `gantry jobs history` show of a job and its runs: the SCHEDULE
//! text, the NEXT RUN computed here from the schedule the master displays (with the same
//! `gantry-jobs` schedule code the master runs), LAST from `lastSuccess`/`lastError`, and the
//! times and durations of a run. Pure functions of the JSON and the current time.

use chrono::{DateTime, Utc};
use gantry_jobs::{LastState, Repetitions, Schedule};
use serde_json::Value;

/// The job's parents: Chronos's `parents` then Gantry's `dependencies[].job`, each once.
pub fn parents(job: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_parents = job["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let from_deps = job["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["job"].as_str());
    for p in from_parents.chain(from_deps) {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// True for a job triggered by its parents rather than a schedule.
pub fn is_dependent(job: &Value) -> bool {
    !parents(job).is_empty()
}

/// The SCHEDULE column: the ISO 8601 schedule as the master displays it, the cron expression
/// (with its zone when one is set), or `after a, b` for a dependent job.
pub fn schedule_text(job: &Value) -> String {
    let zone = job["scheduleTimeZone"].as_str().unwrap_or("");
    let with_zone = |s: &str| {
        if zone.is_empty() {
            s.to_string()
        } else {
            format!("{s} ({zone})")
        }
    };
    if is_dependent(job) {
        let any = job["dependencyMode"].as_str() == Some("any");
        let list = parents(job).join(", ");
        return if any {
            format!("after any of {list}")
        } else {
            format!("after {list}")
        };
    }
    if let Some(cron) = job["cron"].as_str() {
        return with_zone(&format!("cron {cron}"));
    }
    with_zone(job["schedule"].as_str().unwrap_or(""))
}

/// The next scheduled run at or after `now`, or `None` when there is none: disabled, dependent,
/// no repetitions left (`R0`), or a schedule that cannot be read here.
pub fn next_run(job: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if job["disabled"].as_bool() == Some(true) || is_dependent(job) {
        return None;
    }
    let zone = job["scheduleTimeZone"].as_str().filter(|z| !z.is_empty());
    if let Some(cron) = job["cron"].as_str() {
        let s = Schedule::cron(cron, zone).ok()?;
        return s.next_after(now - chrono::Duration::seconds(1));
    }
    let text = job["schedule"].as_str()?;
    // An empty start (`R1//PT1H`) means "when it was submitted": it ran then.
    let start = text.split('/').nth(1)?;
    if start.is_empty() {
        return None;
    }
    let Schedule::Iso8601(s) = Schedule::iso8601(text, zone, now).ok()? else {
        return None;
    };
    if s.repetitions() == Repetitions::Count(0) {
        return None;
    }
    if s.anchor() >= now {
        Some(s.anchor())
    } else {
        s.next_after(now)
    }
}

/// The NEXT RUN column: `in 3m`, `in ~24 hours`, a date for far ones, `-` for none.
pub fn next_run_text(job: &Value, now: DateTime<Utc>) -> String {
    match next_run(job, now) {
        Some(t) => until(t, now),
        None => "-".to_string(),
    }
}

/// How far `t` is from `now`, roughly: `now`, `in 40s`, `in 3m`, `in ~5 hours`, `in ~3 days`, or
/// the date beyond 60 days.
pub fn until(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs <= 0 {
        return "now".to_string();
    }
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("in ~1 {unit}")
        } else {
            format!("in ~{n} {unit}s")
        }
    };
    let minutes = (secs + 30) / 60;
    let hours = (secs + 1800) / 3600;
    let days = (secs + 43_200) / 86_400;
    if secs < 60 {
        format!("in {secs}s")
    } else if minutes < 60 {
        format!("in {minutes}m")
    } else if hours < 48 {
        plural(hours, "hour")
    } else if days <= 60 {
        plural(days, "day")
    } else {
        format!("on {}", t.format("%Y-%m-%d %H:%M UTC"))
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str().filter(|s| !s.is_empty())?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The LAST column: `fresh`, `success` or `failure`, Chronos's rule on the job's times.
pub fn last_state(job: &Value) -> String {
    LastState::from_times(time(&job["lastSuccess"]), time(&job["lastError"])).to_string()
}

/// An API time (`2024-01-15T13:00:00.000Z`) as `2024-01-15 13:00:00`; `-` when absent.
pub fn short_time(v: &Value) -> String {
    match time(v) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "-".to_string(),
    }
}

/// Seconds as `0.4s`, `12s`, `3m04s`, `2h05m`; `-` when absent.
pub fn duration(v: &Value) -> String {
    let Some(secs) = v.as_f64().filter(|s| s.is_finite() && *s >= 0.0) else {
        return "-".to_string();
    };
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let whole = secs.round() as u64;
    if whole < 60 {
        format!("{whole}s")
    } else if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

/// One row of `gantry jobs history` from a run of `GET /v1/scheduler/job/{name}/runs`.
pub fn history_row(r: &Value) -> Vec<String> {
    let run = match r["arrayIndex"].as_u64() {
        Some(i) => format!("{}#{i}", r["run"]),
        None => r["run"].to_string(),
    };
    let exit = match r["exitCode"].as_i64() {
        Some(c) => c.to_string(),
        None => "-".to_string(),
    };
    vec![
        run,
        r["attempt"].to_string(),
        r["trigger"].as_str().unwrap_or("").to_string(),
        short_time(&r["scheduledAt"]),
        short_time(&r["startedAt"]),
        duration(&r["durationSeconds"]),
        r["state"].as_str().unwrap_or("").to_string(),
        exit,
        r["taskId"].as_str().unwrap_or("-").to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .expect("a test time")
    }

    #[test]
    fn next_run_of_iso_schedules() {
        let now = at("2024-01-15T12:57:00Z");
        let hourly = json!({"schedule": "R/2024-01-15T13:00:00.000Z/PT1H"});
        assert_eq!(next_run_text(&hourly, now), "in 3m");
        // A start in the past: the first slot from now on.
        let daily = json!({"schedule": "R5/2024-01-01T13:00:00Z/P1D"});
        assert_eq!(next_run(&daily, now), Some(at("2024-01-15T13:00:00Z")));
        let once = json!({"schedule": "R1/2024-01-15T12:57:00.000Z/PT24H"});
        assert_eq!(
            next_run_text(&once, now + chrono::Duration::seconds(5)),
            "in ~24 hours"
        );
        for none in [
            json!({"schedule": "R0/2024-01-16T13:00:00.000Z/PT1H"}),
            json!({"schedule": "R/2024-01-16T13:00:00Z/PT1H", "disabled": true}),
            json!({"schedule": "R1//PT1H"}),
            json!({"parents": ["a"]}),
            json!({"schedule": "nonsense"}),
        ] {
            assert_eq!(next_run_text(&none, now), "-", "{none}");
        }
    }

    #[test]
    fn next_run_in_a_zone_and_of_cron() {
        let now = at("2024-01-15T12:00:00Z");
        // 09:00 in Los Angeles is 17:00 UTC in January.
        let la = json!({"schedule": "R/2024-01-01T09:00:00/P1D",
                        "scheduleTimeZone": "America/Los_Angeles"});
        assert_eq!(next_run(&la, now), Some(at("2024-01-15T17:00:00Z")));
        let cron = json!({"cron": "30 12 * * *", "scheduleTimeZone": ""});
        assert_eq!(next_run(&cron, now), Some(at("2024-01-15T12:30:00Z")));
        assert_eq!(schedule_text(&cron), "cron 30 12 * * *");
        assert_eq!(
            schedule_text(&la),
            "R/2024-01-01T09:00:00/P1D (America/Los_Angeles)"
        );
    }

    #[test]
    fn dependent_jobs_show_their_parents() {
        let j = json!({"parents": ["a"], "dependencies": [{"job": "b"}, {"job": "a"}]});
        assert_eq!(schedule_text(&j), "after a, b");
        let any = json!({"dependencies": [{"job": "x"}], "dependencyMode": "any"});
        assert_eq!(schedule_text(&any), "after any of x");
    }

    #[test]
    fn rough_times_and_durations() {
        let now = at("2024-01-15T12:00:00Z");
        let s = |n: i64| until(now + chrono::Duration::seconds(n), now);
        assert_eq!(s(0), "now");
        assert_eq!(s(42), "in 42s");
        assert_eq!(s(179), "in 3m");
        assert_eq!(s(3590), "in ~1 hour");
        assert_eq!(s(86_395), "in ~24 hours");
        assert_eq!(s(3 * 86_400), "in ~3 days");
        assert_eq!(s(400 * 86_400), "on 2025-02-18 12:00 UTC");
        assert_eq!(duration(&json!(0.42)), "0.4s");
        assert_eq!(duration(&json!(184.0)), "3m04s");
        assert_eq!(duration(&json!(7500.0)), "2h05m");
        assert_eq!(duration(&Value::Null), "-");
    }

    #[test]
    fn last_state_and_history_rows() {
        assert_eq!(
            last_state(&json!({"lastSuccess": "", "lastError": ""})),
            "fresh"
        );
        let j = json!({"lastSuccess": "2024-01-15T13:00:00.000Z",
                       "lastError": "2024-01-15T12:00:00.000Z"});
        assert_eq!(last_state(&j), "success");
        let r = json!({"run": 7, "attempt": 1, "trigger": "manual",
                       "scheduledAt": "2024-01-15T13:00:00.000Z", "startedAt": null,
                       "durationSeconds": null, "state": "queued", "exitCode": null,
                       "taskId": null, "arrayIndex": 2});
        assert_eq!(
            history_row(&r),
            [
                "7#2",
                "1",
                "manual",
                "2024-01-15 13:00:00",
                "-",
                "-",
                "queued",
                "-",
                "-"
            ]
        );
    }
}
