//! A daily 02:30 job in Europe/Berlin across both DST transitions, driven through the batch
//! controller's schedule step with a simulated clock: one run each day, at 03:00 CEST on the day
//! 02:30 does not exist and at the first 02:30 on the day it happens twice; a restart (the state
//! stored and read back) in the middle changes nothing.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use gantry_jobs::ScheduleProgress;
use gantry_masterd::batch::job::{read_job, Endpoint, Mode, ReadContext, AGENT_DEFAULT_USER};
use gantry_masterd::batch::pass::Pass;
use gantry_masterd::batch::schedule::queue_due;
use gantry_masterd::batch::state::{BatchState, JobEntry};
use gantry_masterd::store::Write;
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// A batch state holding the job, submitted at `now`.
fn state_with(body: serde_json::Value, now: DateTime<Utc>) -> BatchState {
    let ctx = ReadContext {
        endpoint: Endpoint::Iso8601,
        mode: Mode::Create,
        now,
        default_user: AGENT_DEFAULT_USER,
    };
    let def = read_job(&body, &ctx).expect("job accepted");
    let schedule = def.schedule(now).expect("scheduled").expect("parses");
    let progress = ScheduleProgress::new(&schedule, now);
    let mut b = BatchState::default();
    b.jobs.insert(
        def.name.clone(),
        JobEntry {
            def,
            schedule: Some(schedule),
            progress: Some(progress),
            submitted_at: now.timestamp() as f64,
            launched_once: false,
            next_due: None,
        },
    );
    b.rebuild_graph();
    b
}

/// What a restart would read back: the pass's writes applied to a fresh state.
fn restarted(b: &BatchState, writes: &[Write]) -> BatchState {
    let mut jobs = Vec::new();
    for w in writes {
        if let Write::PutJob { name, job } = w {
            jobs.push((name.clone(), job.clone()));
        }
    }
    if jobs.is_empty() {
        jobs = b
            .jobs
            .iter()
            .map(|(n, j)| (n.clone(), j.to_store(b.dag.jobs.get(n))))
            .collect();
    }
    BatchState::load(jobs, Vec::new(), &[], 100).expect("stored state reads back")
}

/// Steps the clock from `from` to `to` by `step`, queueing due runs; returns their due times.
/// Halfway through, the state is stored and read back as a restarted master would.
fn simulate(
    mut b: BatchState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) -> Vec<DateTime<Utc>> {
    let mut due = Vec::new();
    let mut now = from;
    let halfway = from + (to - from) / 2;
    let mut restarted_once = false;
    while now <= to {
        let mut pass = Pass::default();
        let before: Vec<u64> = b.active.keys().copied().collect();
        queue_due(&mut b, &mut pass, now.timestamp() as f64, now);
        for r in b.active.values() {
            let id = &r.id;
            if !before.contains(id) {
                due.push(DateTime::from_timestamp_millis(r.due_ms).expect("due"));
            }
        }
        let (writes, _, _) = pass.finish(&b);
        if now >= halfway && !restarted_once {
            b = restarted(&b, &writes);
            restarted_once = true;
        }
        now += step;
    }
    due
}

#[test]
fn a_daily_0230_berlin_job_runs_once_each_day_across_both_transitions() {
    let job = json!({"name": "nightly", "command": "true", "owner": "",
        "schedule": "R/2026-03-27T02:30:00/P1D", "scheduleTimeZone": "Europe/Berlin"});
    // Spring forward: 2026-03-29 02:00 CET → 03:00 CEST.
    let b = state_with(job.clone(), t("2026-03-26T12:00:00Z"));
    let due = simulate(
        b,
        t("2026-03-26T12:00:00Z"),
        t("2026-03-31T12:00:00Z"),
        Duration::minutes(7),
    );
    let local: Vec<String> = due
        .iter()
        .map(|d| {
            d.with_timezone(&Berlin)
                .format("%m-%d %H:%M %Z")
                .to_string()
        })
        .collect();
    assert_eq!(
        local,
        [
            "03-27 02:30 CET",
            "03-28 02:30 CET",
            "03-29 03:00 CEST",
            "03-30 02:30 CEST",
            "03-31 02:30 CEST"
        ]
    );

    // Fall back: 2026-10-25 03:00 CEST → 02:00 CET; 02:30 happens twice and runs once.
    let mut job = job;
    job["schedule"] = json!("R/2026-10-23T02:30:00/P1D");
    let b = state_with(job, t("2026-10-22T12:00:00Z"));
    let due = simulate(
        b,
        t("2026-10-22T12:00:00Z"),
        t("2026-10-27T12:00:00Z"),
        Duration::minutes(7),
    );
    let local: Vec<String> = due
        .iter()
        .map(|d| {
            d.with_timezone(&Berlin)
                .format("%m-%d %H:%M %Z")
                .to_string()
        })
        .collect();
    assert_eq!(
        local,
        [
            "10-23 02:30 CEST",
            "10-24 02:30 CEST",
            "10-25 02:30 CEST",
            "10-26 02:30 CET",
            "10-27 02:30 CET"
        ]
    );
    let days: std::collections::BTreeSet<_> = due
        .iter()
        .map(|d| d.with_timezone(&Berlin).date_naive())
        .collect();
    assert_eq!(days.len(), due.len(), "one run per local day");
    let _ = Berlin.with_ymd_and_hms(2026, 10, 25, 2, 30, 0);
}

#[test]
fn a_cron_job_in_a_zone_runs_once_each_day_too() {
    let job = json!({"name": "cronjob", "command": "true", "owner": "",
        "cron": "30 2 * * *", "scheduleTimeZone": "Europe/Berlin"});
    let b = state_with(job, t("2026-03-27T12:00:00Z"));
    let due = simulate(
        b,
        t("2026-03-27T12:00:00Z"),
        t("2026-03-31T12:00:00Z"),
        Duration::minutes(7),
    );
    let local: Vec<String> = due
        .iter()
        .map(|d| {
            d.with_timezone(&Berlin)
                .format("%m-%d %H:%M %Z")
                .to_string()
        })
        .collect();
    assert_eq!(local.len(), 4, "{local:?}");
    assert_eq!(local[0], "03-28 02:30 CET");
    assert_eq!(local[3], "03-31 02:30 CEST");
}
