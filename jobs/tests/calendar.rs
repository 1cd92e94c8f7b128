//! DST spring-forward and fall-back (America/Los_Angeles, Europe/Berlin) for ISO 8601 and cron
//! schedules, leap days, month ends and years.

use chrono::{DateTime, Utc};
use gantry_jobs::{Iso8601Schedule, Schedule};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

fn iso(text: &str, tz: &str) -> Iso8601Schedule {
    Iso8601Schedule::parse(text, Some(tz), t("2024-01-01T00:00:00Z")).expect(text)
}

/// The slots of `s` strictly after `from`, `n` of them, in RFC 3339 UTC.
fn slots(s: &Schedule, from: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = t(from);
    for _ in 0..n {
        at = s.next_after(at).expect("a next slot");
        out.push(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    out
}

#[test]
fn cron_spring_forward_los_angeles_runs_once_at_the_first_valid_instant() {
    // 2024-03-10: 02:00 PST jumps to 03:00 PDT; 02:30 does not exist.
    let s = Schedule::cron("30 2 * * *", Some("America/Los_Angeles")).unwrap();
    assert_eq!(
        slots(&s, "2024-03-09T00:00:00Z", 3),
        [
            "2024-03-09T10:30:00Z", // 02:30 PST
            "2024-03-10T10:00:00Z", // 03:00 PDT: the first instant after the gap
            "2024-03-11T09:30:00Z", // 02:30 PDT
        ]
    );
    // Several slots inside the gap collapse into one run at the transition.
    let s = Schedule::cron("*/15 2 * * *", Some("America/Los_Angeles")).unwrap();
    let got = slots(&s, "2024-03-10T09:59:00Z", 2);
    assert_eq!(got, ["2024-03-10T10:00:00Z", "2024-03-11T09:00:00Z"]);
}

#[test]
fn cron_fall_back_los_angeles_runs_once_not_twice() {
    // 2024-11-03: 02:00 PDT falls back to 01:00 PST; 01:30 happens twice.
    let s = Schedule::cron("30 1 * * *", Some("America/Los_Angeles")).unwrap();
    assert_eq!(
        slots(&s, "2024-11-02T12:00:00Z", 2),
        ["2024-11-03T08:30:00Z", "2024-11-04T09:30:00Z"] // 01:30 PDT, then next day 01:30 PST
    );
    // Asked from inside the second pass (01:15 PST), the repeated 01:30 is not offered again.
    assert_eq!(
        s.next_after(t("2024-11-03T09:15:00Z")),
        Some(t("2024-11-04T09:30:00Z"))
    );
    assert_eq!(
        s.last_at_or_before(t("2024-11-03T09:15:00Z")),
        Some(t("2024-11-03T08:30:00Z"))
    );
    // An hourly job gets one 01:00 slot and one 02:00 slot: the repeated hour runs once.
    let s = Schedule::cron("0 * * * *", Some("America/Los_Angeles")).unwrap();
    assert_eq!(
        slots(&s, "2024-11-03T07:30:00Z", 3),
        [
            "2024-11-03T08:00:00Z",
            "2024-11-03T10:00:00Z",
            "2024-11-03T11:00:00Z"
        ]
    );
}

#[test]
fn cron_berlin_both_transitions() {
    // 2024-03-31 02:00 CET → 03:00 CEST; 2024-10-27 03:00 CEST → 02:00 CET.
    let s = Schedule::cron("30 2 * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        slots(&s, "2024-03-30T00:00:00Z", 3),
        [
            "2024-03-30T01:30:00Z",
            "2024-03-31T01:00:00Z",
            "2024-04-01T00:30:00Z"
        ]
    );
    assert_eq!(
        slots(&s, "2024-10-26T00:00:00Z", 3),
        [
            "2024-10-26T00:30:00Z",
            "2024-10-27T00:30:00Z",
            "2024-10-28T01:30:00Z"
        ]
    );
}

#[test]
fn iso_daily_across_both_transitions_los_angeles() {
    let p1d = Schedule::Iso8601(iso("R/2024-03-09T02:30:00/P1D", "America/Los_Angeles"));
    // 02:30 on the spring-forward day runs at 03:00 PDT; the next day is back to 02:30.
    assert_eq!(
        slots(&p1d, "2024-03-09T00:00:00Z", 3),
        [
            "2024-03-09T10:30:00Z",
            "2024-03-10T10:00:00Z",
            "2024-03-11T09:30:00Z"
        ]
    );
    let fall = Schedule::Iso8601(iso("R/2024-11-02T01:30:00/P1D", "America/Los_Angeles"));
    assert_eq!(
        slots(&fall, "2024-11-02T00:00:00Z", 3),
        [
            "2024-11-02T08:30:00Z",
            "2024-11-03T08:30:00Z",
            "2024-11-04T09:30:00Z"
        ]
    );
    // PT24H keeps absolute time: 09:00 PST becomes 10:00 PDT.
    let pt24h = iso("R/2024-03-09T09:00:00/PT24H", "America/Los_Angeles");
    assert_eq!(pt24h.occurrence(2), Some(t("2024-03-11T17:00:00Z")));
    let p1d = iso("R/2024-03-09T09:00:00/P1D", "America/Los_Angeles");
    assert_eq!(p1d.occurrence(2), Some(t("2024-03-11T16:00:00Z")));
}

#[test]
fn iso_daily_across_both_transitions_berlin() {
    let s = iso("R/2024-03-30T02:30:00/P1D", "Europe/Berlin");
    assert_eq!(s.occurrence(1), Some(t("2024-03-31T01:00:00Z"))); // gap → 03:00 CEST
    assert_eq!(s.occurrence(2), Some(t("2024-04-01T00:30:00Z"))); // 02:30 CEST
    let s = iso("R/2024-10-26T02:30:00/P1D", "Europe/Berlin");
    assert_eq!(s.occurrence(1), Some(t("2024-10-27T00:30:00Z"))); // first 02:30 (CEST)
    assert_eq!(s.occurrence(2), Some(t("2024-10-28T01:30:00Z"))); // 02:30 CET
                                                                  // Weekly keeps the wall clock over the change too.
    let s = iso("R/2024-03-25T09:00:00/P1W", "Europe/Berlin");
    assert_eq!(s.occurrence(0), Some(t("2024-03-25T08:00:00Z"))); // 09:00 CET
    assert_eq!(s.occurrence(1), Some(t("2024-04-01T07:00:00Z"))); // 09:00 CEST
}

#[test]
fn leap_days() {
    let s = iso("R/2024-02-29T12:00:00/P1Y", "UTC");
    let got: Vec<String> = (0..5)
        .map(|k| s.occurrence(k).unwrap().format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(
        got,
        [
            "2024-02-29",
            "2025-02-28",
            "2026-02-28",
            "2027-02-28",
            "2028-02-29"
        ]
    );
    // 2100 is not a leap year, 2000 was.
    let s = iso("R/2096-02-29T00:00:00/P4Y", "UTC");
    assert_eq!(s.occurrence(1), Some(t("2100-02-28T00:00:00Z")));
    assert_eq!(s.occurrence(2), Some(t("2104-02-29T00:00:00Z")));
    let s = iso("R/1996-02-29T00:00:00/P4Y", "UTC");
    assert_eq!(s.occurrence(1), Some(t("2000-02-29T00:00:00Z")));
    let cron = Schedule::cron("0 0 29 2 *", None).unwrap();
    assert_eq!(
        cron.next_after(t("2024-03-01T00:00:00Z")),
        Some(t("2028-02-29T00:00:00Z"))
    );
}

#[test]
fn month_ends() {
    let s = iso("R/2024-01-30T08:00:00/P1M", "Europe/Berlin");
    let got: Vec<String> = (0..4)
        .map(|k| s.occurrence(k).unwrap().format("%m-%d").to_string())
        .collect();
    assert_eq!(got, ["01-30", "02-29", "03-30", "04-30"]);
    let s = iso("R/2023-08-31T00:00:00/P3M", "UTC");
    let got: Vec<String> = (0..5)
        .map(|k| s.occurrence(k).unwrap().format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(
        got,
        [
            "2023-08-31",
            "2023-11-30",
            "2024-02-29",
            "2024-05-31",
            "2024-08-31"
        ]
    );
    // Month plus days: the clamp happens before the days are added.
    let s = iso("R/2024-01-31T00:00:00/P1M1D", "UTC");
    assert_eq!(s.occurrence(1), Some(t("2024-03-01T00:00:00Z")));
    assert_eq!(s.occurrence(2), Some(t("2024-04-02T00:00:00Z")));
}

#[test]
fn years_and_year_boundaries() {
    let s = iso("R/2024-12-31T23:30:00/PT1H", "UTC");
    assert_eq!(
        s.next_after(t("2024-12-31T23:59:59Z")),
        Some(t("2025-01-01T00:30:00Z"))
    );
    let s = iso("R/2000-06-15T00:00:00/P10Y", "America/Los_Angeles");
    assert_eq!(
        s.next_after(t("2024-01-01T00:00:00Z")),
        Some(t("2030-06-15T07:00:00Z"))
    );
    let s = iso("R/2024-12-31T00:00:00/P1M", "UTC");
    assert_eq!(s.occurrence(2), Some(t("2025-02-28T00:00:00Z")));
    // Far from the anchor, next_after jumps there directly and stays exact.
    let s = iso("R/1970-01-01T00:00:00/PT1S", "UTC");
    assert_eq!(
        s.next_after(t("2024-01-01T00:00:00Z")),
        Some(t("2024-01-01T00:00:01Z"))
    );
}
