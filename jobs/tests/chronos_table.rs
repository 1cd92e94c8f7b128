//! Every row of spec §3.4 (Chronos 3.x edge cases): Chronos's answer where Gantry keeps it, and
//! Gantry's where it fixes it (each fix marked FIX with the reason).

use chrono::{DateTime, Utc};
use gantry_jobs::{
    due, CatchUp, Iso8601Error, Iso8601Schedule, MissedRunPolicy, Repetitions, Schedule,
    ScheduleError, ScheduleProgress, ZoneError,
};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

const NOW: &str = "2024-01-15T12:00:30Z";

fn parse(text: &str, tz: Option<&str>) -> Iso8601Schedule {
    Iso8601Schedule::parse(text, tz, t(NOW)).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Launch at `now` under Chronos's default policy (one catch-up); returns whether something was
/// due and the schedule string Chronos would show afterwards.
fn launch(text: &str, tz: Option<&str>, now: &str) -> (bool, String) {
    let iso = parse(text, tz);
    let schedule = Schedule::Iso8601(iso.clone());
    let progress = ScheduleProgress::new(&schedule, t(now));
    let d = due(&schedule, &MissedRunPolicy::default(), &progress, t(now));
    // Chronos shows the next slot on the grid, even when no repetitions are left.
    let from = d.progress.last_handled.map_or(t(now), |h| h.max(t(now)));
    let shown_at = schedule.next_after(from).unwrap_or(iso.anchor());
    (
        !d.runs.is_empty(),
        iso.chronos_display(d.progress.runs_remaining, shown_at),
    )
}

#[test]
fn row01_infinite_one_catch_up_then_grid() {
    assert_eq!(
        launch("R/2024-01-15T10:00:00Z/PT1H", None, NOW),
        (true, "R/2024-01-15T13:00:00.000Z/PT1H".into())
    );
}

#[test]
fn row02_missed_slots_do_not_consume_repetitions() {
    assert_eq!(
        launch("R5/2024-01-15T10:00:00Z/PT1H", None, NOW),
        (true, "R4/2024-01-15T13:00:00.000Z/PT1H".into())
    );
}

#[test]
fn row03_r1_runs_once_then_r0() {
    let (ran, shown) = launch("R1/2024-01-15T10:00:00Z/PT1H", None, NOW);
    assert!(ran);
    assert_eq!(shown, "R0/2024-01-15T13:00:00.000Z/PT1H");
    // The progress is exhausted: no wake-up, the controller disables the job after success.
    let s = Schedule::iso8601("R1/2024-01-15T10:00:00Z/PT1H", None, t(NOW)).unwrap();
    let d = due(
        &s,
        &MissedRunPolicy::default(),
        &ScheduleProgress::new(&s, t(NOW)),
        t(NOW),
    );
    assert!(d.progress.exhausted());
    assert_eq!(d.next_wakeup, None);
}

#[test]
fn row04_r0_is_never_due_and_stays_r0() {
    let s = Schedule::iso8601("R0/2024-01-15T10:00:00Z/PT1H", None, t(NOW)).unwrap();
    let p = ScheduleProgress::new(&s, t(NOW));
    let d = due(&s, &MissedRunPolicy::default(), &p, t(NOW));
    assert!(d.runs.is_empty());
    assert_eq!(d.next_wakeup, None);
    // FIX (#814): a manual run or a retry never goes through `due` and never touches the
    // progress, so R0 cannot become R. The progress after any number of calls is still R0.
    let d2 = due(
        &s,
        &MissedRunPolicy::default(),
        &d.progress,
        t("2024-01-16T00:00:00Z"),
    );
    assert_eq!(d2.progress.runs_remaining, Repetitions::Count(0));
    assert!(d2.runs.is_empty());
}

#[test]
fn row05_future_start_not_due() {
    let s = Schedule::iso8601("R/2024-01-15T13:00:00Z/PT1H", None, t(NOW)).unwrap();
    let p = ScheduleProgress::new(&s, t(NOW));
    let d = due(&s, &MissedRunPolicy::default(), &p, t(NOW));
    assert!(d.runs.is_empty());
    assert_eq!(d.next_wakeup, Some(t("2024-01-15T13:00:00Z")));
    // FIX: Chronos decremented Rn on a manual run; manual runs do not touch the progress here.
    assert_eq!(d.progress, p);
}

#[test]
fn row06_empty_start_runs_once_now() {
    let (ran, shown) = launch("R1//PT1H", None, NOW);
    assert!(ran);
    assert_eq!(shown, "R0/2024-01-15T13:00:29.000Z/PT1H");
    let (ran, shown) = launch("R1//P", None, NOW);
    assert!(ran);
    assert_eq!(shown, "R0/2024-01-15T12:00:29.000Z/PT0S");
    // FIX: the empty start is fixed at parse time (now − 1 s), not re-evaluated at every parse,
    // so the job does not stay "always due"; pass the submission time to re-parse identically.
    let a = parse("R//PT1H", None);
    let b = Iso8601Schedule::parse("R//PT1H", None, t(NOW)).unwrap();
    assert_eq!(a.anchor(), b.anchor());
}

#[test]
fn row07_zero_period_rejected_for_repeating() {
    // FIX: Chronos ran `R/…/PT0S` back-to-back forever.
    let e = Iso8601Schedule::parse("R/2024-01-15T10:00:00Z/PT0S", None, t(NOW)).unwrap_err();
    assert!(
        matches!(e, Iso8601Error::ZeroPeriod { ref part, .. } if part == "PT0S"),
        "{e}"
    );
    assert!(Iso8601Schedule::parse("R2/2024-01-15T10:00:00Z/P0D", None, t(NOW)).is_err());
    assert!(Iso8601Schedule::parse("R1/2024-01-15T10:00:00Z/PT0S", None, t(NOW)).is_ok());
}

#[test]
fn row08_negative_period_rejected() {
    // FIX: Chronos moved the start backwards and stayed permanently due.
    let e = Iso8601Schedule::parse("R/2024-01-15T10:00:00Z/P-1D", None, t(NOW)).unwrap_err();
    assert!(
        matches!(
            e,
            Iso8601Error::NegativePeriod {
                component: "days",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn row09_monthly() {
    assert_eq!(
        launch("R/2024-01-01T00:00:00Z/P1M", None, NOW),
        (true, "R/2024-02-01T00:00:00.000Z/P1M".into())
    );
}

#[test]
fn row10_no_day_of_month_drift() {
    let (ran, shown) = launch("R/2024-01-31T00:00:00Z/P1M", None, "2024-02-01T00:00:00Z");
    assert!(ran);
    assert_eq!(shown, "R/2024-02-29T00:00:00.000Z/P1M");
    // FIX: Chronos re-anchored on the 29th for good; from the immutable anchor we return to the 31st.
    let s = parse("R/2024-01-31T00:00:00Z/P1M", None);
    assert_eq!(
        s.next_after(t("2024-02-29T00:00:00Z")),
        Some(t("2024-03-31T00:00:00Z"))
    );
}

#[test]
fn row11_no_duplicate_after_a_long_gap() {
    // FIX: Chronos's month-skip undercount left the start in the past ⇒ a duplicate run.
    let s = Schedule::iso8601("R/2023-01-31T00:00:00Z/P1M", None, t(NOW)).unwrap();
    let p = ScheduleProgress::new(&s, t(NOW));
    let now = t("2024-03-01T00:00:00Z");
    let d = due(&s, &MissedRunPolicy::default(), &p, now);
    assert_eq!(d.runs, vec![t("2024-02-29T00:00:00Z")]);
    assert_eq!(d.next_wakeup, Some(t("2024-03-31T00:00:00Z")));
    assert!(due(&s, &MissedRunPolicy::default(), &d.progress, now)
        .runs
        .is_empty());
    let s = Schedule::iso8601("R/2020-01-31T00:00:00Z/P1M", None, t(NOW)).unwrap();
    let d = due(
        &s,
        &MissedRunPolicy::default(),
        &ScheduleProgress::new(&s, t(NOW)),
        t("2024-07-15T00:00:00Z"),
    );
    assert_eq!(d.runs, vec![t("2024-06-30T00:00:00Z")]);
    assert_eq!(d.next_wakeup, Some(t("2024-07-31T00:00:00Z")));
}

#[test]
fn row12_leap_day_yearly() {
    let (ran, shown) = launch("R/2020-02-29T00:00:00Z/P1Y", None, "2024-03-01T00:00:00Z");
    assert!(ran);
    assert_eq!(shown, "R/2025-02-28T00:00:00.000Z/P1Y");
    // FIX (no drift): after 2025-02-28 the anchor brings it back to the 29th in 2028.
    let s = parse("R/2020-02-29T00:00:00Z/P1Y", None);
    let years: Vec<String> = (0..9)
        .map(|k| s.occurrence(k).unwrap().format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(years[4], "2024-02-29");
    assert_eq!(years[5], "2025-02-28");
    assert_eq!(years[8], "2028-02-29");
}

#[test]
fn row13_p1d_keeps_wall_clock_across_dst() {
    let (ran, shown) = launch(
        "R/2024-03-09T09:00:00Z/P1D",
        Some("America/Los_Angeles"),
        "2024-03-10T20:00:00Z",
    );
    assert!(ran);
    assert_eq!(shown, "R/2024-03-11T09:00:00.000-07:00/P1D");
}

#[test]
fn row14_pt24h_keeps_absolute_hours() {
    let (ran, shown) = launch(
        "R/2024-03-09T09:00:00Z/PT24H",
        Some("America/Los_Angeles"),
        "2024-03-10T20:00:00Z",
    );
    assert!(ran);
    assert_eq!(shown, "R/2024-03-11T10:00:00.000-07:00/PT24H");
}

#[test]
fn row15_fixed_offset_without_zone_has_no_dst() {
    let (ran, shown) = launch(
        "R/2024-03-09T09:00:00-08:00/P1D",
        None,
        "2024-03-10T20:00:00Z",
    );
    assert!(ran);
    assert_eq!(shown, "R/2024-03-11T09:00:00.000-08:00/P1D");
}

#[test]
fn row16_zone_beats_the_written_offset() {
    // Kept: the wall clock 18:32 is re-read in the zone (Joda withZoneRetainFields).
    let s = parse("R/2014-10-10T18:32:00Z/PT60M", Some("America/Los_Angeles"));
    assert_eq!(s.anchor(), t("2014-10-11T01:32:00Z"));
    // FIX: `PST` (Java: America/Los_Angeles) is refused as an ambiguous abbreviation.
    let e =
        Iso8601Schedule::parse("R/2014-10-10T18:32:00Z/PT60M", Some("PST"), t(NOW)).unwrap_err();
    assert!(
        matches!(e, Iso8601Error::Zone(ZoneError::Ambiguous { ref suggestion, .. }) if suggestion == "America/Los_Angeles"),
        "{e}"
    );
}

#[test]
fn row17_unknown_zone_rejected() {
    // FIX: Chronos silently used UTC.
    let e = Schedule::iso8601("R/2014-10-10T18:32:00Z/PT60M", Some("Foo/Bar"), t(NOW)).unwrap_err();
    assert!(matches!(
        e,
        ScheduleError::Iso8601(Iso8601Error::Zone(ZoneError::Unknown { .. }))
    ));
    assert!(e.to_string().contains("Foo/Bar"));
}

#[test]
fn row18_bst_rejected() {
    // FIX: Java's BST is Bangladesh (+06:00), not British Summer Time.
    let e =
        Iso8601Schedule::parse("R/2014-10-10T18:32:00Z/PT60M", Some("BST"), t(NOW)).unwrap_err();
    assert!(
        matches!(e, Iso8601Error::Zone(ZoneError::Ambiguous { .. })),
        "{e}"
    );
    assert!(
        Iso8601Schedule::parse("R/2014-10-10T18:32:00Z/PT60M", Some("Asia/Dhaka"), t(NOW)).is_ok()
    );
}

#[test]
fn row19_no_offset_means_utc() {
    // Chronos: the JVM's default zone (UTC on a UTC JVM). FIX: always UTC, never the host zone.
    let s = parse("R/2008-03-01T13:00/PT1H", None);
    assert_eq!(s.anchor(), t("2008-03-01T13:00:00Z"));
}

#[test]
fn row20_sub_minute_periods() {
    assert_eq!(
        launch("R/2024-01-15T12:00:00Z/PT30S", None, NOW),
        (true, "R/2024-01-15T12:01:00.000Z/PT30S".into())
    );
}

#[test]
fn row21_rejections_name_the_part() {
    let cases: &[(&str, &str)] = &[
        ("R/2008-03-01T13:00:00Z", "period"),
        ("FOO", "must start with 'R'"),
        ("r/2008-03-01T13:00:00Z/P1D", "must start with 'R'"),
        ("R-1/2008-03-01T13:00:00Z/P1D", "repetitions 'R-1'"),
        (" R/2008-03-01T13:00:00Z/P1D", "must start with 'R'"),
        ("R/2008-03-01T13:00:00Z/p1d", "must start with 'P'"),
        ("R/2008-03-01T13:00:00Z/P1D ", "period 'P1D '"),
        ("R/2008-03-01T13:00:00Z/PT", "period 'PT'"),
        ("R/2008-03-01T13:00:00Z/P1D2H", "period 'P1D2H'"),
        ("R/2008-03-01T13:00:00Z/P1.5D", "period 'P1.5D'"),
        ("R/20080301T130000Z/P1D", "start '20080301T130000Z'"),
        ("R/2008-02-30T13:00:00Z/P1D", "start '2008-02-30T13:00:00Z'"),
        ("R/2008-03-01T24:00:00Z/P1D", "start '2008-03-01T24:00:00Z'"),
        (
            "R99999999999999999999/2008-03-01T13:00:00Z/P1D",
            "repetitions 'R99999999999999999999'",
        ),
    ];
    for (text, named) in cases {
        let e = Iso8601Schedule::parse(text, None, t(NOW)).expect_err(text);
        assert!(
            e.to_string().contains(named),
            "{text}: '{e}' should name {named}"
        );
    }
}

#[test]
fn row22_before_1970_parses_but_create_refuses() {
    let s = parse("R/1969-12-31T23:59:59Z/P1D", None);
    assert!(matches!(
        s.check_create(),
        Err(Iso8601Error::StartBefore1970 { .. })
    ));
    assert!(parse("R/1970-01-01T00:00:01Z/P1D", None)
        .check_create()
        .is_ok());
}

#[test]
fn catch_up_policy_is_explicit() {
    // FIX (§6): Chronos always did exactly one catch-up; `none` and `all` are choices here.
    let s = Schedule::iso8601("R/2024-01-15T10:00:00Z/PT1H", None, t(NOW)).unwrap();
    let p = ScheduleProgress::new(&s, t(NOW));
    let at = t("2024-01-15T12:30:00Z");
    let run = |c| {
        due(
            &s,
            &MissedRunPolicy {
                catch_up: c,
                ..Default::default()
            },
            &p,
            at,
        )
        .runs
        .len()
    };
    assert_eq!(
        (run(CatchUp::None), run(CatchUp::One), run(CatchUp::All)),
        (0, 1, 3)
    );
}
