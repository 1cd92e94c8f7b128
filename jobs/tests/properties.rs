//! Property tests: occurrences strictly increase, `next_after(t) > t` with no slot skipped, the
//! due-set survives crash/restart with serde-restored state under every policy, accepted DAGs are
//! acyclic and refused cycles are real.

use chrono::{DateTime, Duration, Utc};
use gantry_jobs::{
    due, CatchUp, DagError, Iso8601Schedule, JobGraph, JobSpec, MissedRunPolicy, Schedule,
    ScheduleProgress,
};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "UTC",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Lord_Howe", // 30-minute DST shift
    "Asia/Kolkata",
];

const CRONS: &[&str] = &[
    "*/15 * * * *",
    "30 2 * * *",
    "0 1,2,3 * * *",
    "0 9 1-7 * 1",
    "45 23 L * *", // refused (L unsupported): filtered out below
    "0 0 29 2 *",
    "0 */6 * * 1-5",
];

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid timestamp")
}

fn period() -> impl Strategy<Value = String> {
    (
        0u32..2,
        0u32..3,
        0u32..2,
        0u32..3,
        0u32..30,
        0u32..90,
        0u32..2,
    )
        .prop_filter_map("non-zero period", |(y, m, w, d, h, mi, s)| {
            if y + m + w + d + h + mi + s == 0 {
                return None;
            }
            let mut p = String::from("P");
            for (v, u) in [(y, 'Y'), (m, 'M'), (w, 'W'), (d, 'D')] {
                if v > 0 {
                    p.push_str(&format!("{v}{u}"));
                }
            }
            if h + mi + s > 0 {
                p.push('T');
                for (v, u) in [(h, 'H'), (mi, 'M'), (s, 'S')] {
                    if v > 0 {
                        p.push_str(&format!("{v}{u}"));
                    }
                }
            }
            Some(p)
        })
}

fn iso_schedule() -> impl Strategy<Value = Iso8601Schedule> {
    (0i64..1_000_000_000, 0usize..ZONES.len(), period()).prop_map(|(offset, zone, period)| {
        let start = (base() - Duration::seconds(offset)).format("%Y-%m-%dT%H:%M:%S");
        let text = format!("R/{start}/{period}");
        Iso8601Schedule::parse(&text, Some(ZONES[zone]), base()).expect("generated schedule parses")
    })
}

fn cron_schedule() -> impl Strategy<Value = Schedule> {
    (0usize..CRONS.len(), 0usize..ZONES.len()).prop_filter_map("supported cron", |(c, z)| {
        Schedule::cron(CRONS[c], Some(ZONES[z])).ok()
    })
}

fn any_schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![iso_schedule().prop_map(Schedule::Iso8601), cron_schedule()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn iso_occurrences_strictly_increase(s in iso_schedule(), k0 in 0u64..5_000) {
        let mut prev = s.occurrence(k0).expect("in range");
        for k in k0 + 1..k0 + 12 {
            let next = s.occurrence(k).expect("in range");
            prop_assert!(next > prev, "slot {k} {next} not after {prev}");
            prev = next;
        }
    }

    #[test]
    fn next_after_is_later_and_skips_nothing(s in any_schedule(), secs in -400_000_000i64..400_000_000) {
        let t = base() + Duration::seconds(secs) + Duration::milliseconds(secs % 1000);
        let next = s.next_after(t).expect("a next slot");
        prop_assert!(next > t);
        // No slot lies in (t, next): the last slot at or before next − 1 ms is at or before t.
        if let Some(prev) = s.last_at_or_before(next - Duration::milliseconds(1)) {
            prop_assert!(prev <= t, "slot {prev} between {t} and {next}");
            prop_assert_eq!(s.next_after(prev), Some(next));
        }
        // Walking on keeps increasing.
        let mut at = next;
        for _ in 0..6 {
            let n = s.next_after(at).expect("a next slot");
            prop_assert!(n > at);
            at = n;
        }
    }

    #[test]
    fn due_set_survives_crashes_and_restarts(
        s in any_schedule(),
        catch_up in prop_oneof![Just(CatchUp::None), Just(CatchUp::One), Just(CatchUp::All)],
        limit in 1u32..6,
        deadline in prop::option::of(60u64..20_000),
        steps in prop::collection::vec((1i64..20_000, any::<bool>()), 1..25),
    ) {
        let policy = MissedRunPolicy { catch_up, all_limit: limit, starting_deadline_seconds: deadline };
        let start = base();
        let initial = ScheduleProgress::new(&s, start);

        // Uninterrupted: one scheduler evaluating at every tick, state in memory.
        let mut progress = initial;
        let mut runs = Vec::new();
        let mut skipped = 0;
        // Crashing: the state is stored as JSON after each tick; at a crash the process dies and
        // the restarted one loads the JSON and re-evaluates at the same instant before going on.
        let mut stored = serde_json::to_string(&initial).expect("serialize");
        let mut crash_runs = Vec::new();
        let mut now = start;
        for (advance, crash) in &steps {
            now += Duration::seconds(*advance);
            let d = due(&s, &policy, &progress, now);
            runs.extend(d.runs.iter().copied());
            skipped += d.skipped;
            progress = d.progress;

            let restored: ScheduleProgress = serde_json::from_str(&stored).expect("deserialize");
            let c = due(&s, &policy, &restored, now);
            crash_runs.extend(c.runs.iter().copied());
            stored = serde_json::to_string(&c.progress).expect("serialize");
            if *crash {
                let reloaded: ScheduleProgress = serde_json::from_str(&stored).expect("deserialize");
                let again = due(&s, &policy, &reloaded, now);
                prop_assert!(again.runs.is_empty(), "restart repeated {:?}", again.runs);
                prop_assert_eq!(again.progress, reloaded);
            }
        }
        prop_assert_eq!(&crash_runs, &runs);
        // Every slot in the window was handled exactly once: run or skipped, never both.
        prop_assert!(runs.windows(2).all(|w| w[0] < w[1]), "runs not strictly increasing");
        let after = initial.last_handled;
        let slots = s.count_between(after, now, 1_000_000);
        prop_assert_eq!(runs.len() as u64 + skipped, slots);
    }

    #[test]
    fn catch_up_all_loses_nothing_to_downtime(
        s in any_schedule(),
        steps in prop::collection::vec((1i64..20_000, any::<bool>()), 1..25),
    ) {
        // With no limit and no deadline, a scheduler that is down for some ticks starts the same
        // runs as one that never stopped.
        let policy = MissedRunPolicy { catch_up: CatchUp::All, all_limit: u32::MAX, starting_deadline_seconds: None };
        let initial = ScheduleProgress::new(&s, base());
        let (mut up, mut flaky) = (initial, initial);
        let (mut up_runs, mut flaky_runs) = (Vec::new(), Vec::new());
        let mut now = base();
        for (advance, down) in &steps {
            now += Duration::seconds(*advance);
            let d = due(&s, &policy, &up, now);
            up_runs.extend(d.runs);
            up = d.progress;
            if !down {
                let d = due(&s, &policy, &flaky, now);
                flaky_runs.extend(d.runs);
                flaky = d.progress;
            }
        }
        let d = due(&s, &policy, &flaky, now);
        flaky_runs.extend(d.runs);
        prop_assert_eq!(flaky_runs, up_runs);
    }

    #[test]
    fn accepted_dags_are_acyclic_and_refused_cycles_are_real(
        n in 2usize..30,
        edges in prop::collection::vec((0usize..30, 0usize..30), 0..60),
    ) {
        let edges: Vec<(usize, usize)> =
            edges.into_iter().map(|(a, b)| (a % n, b % n)).filter(|(a, b)| a != b).collect();
        let jobs: Vec<JobSpec> = (0..n)
            .map(|c| {
                let parents: Vec<String> =
                    edges.iter().filter(|e| e.1 == c).map(|e| format!("j{}", e.0)).collect();
                let refs: Vec<&str> = parents.iter().map(String::as_str).collect();
                JobSpec::dependent(&format!("j{c}"), &refs)
            })
            .collect();
        match JobGraph::new(jobs) {
            Ok(g) => {
                let order = g.topological_order();
                prop_assert_eq!(order.len(), n, "a cycle hid from topological order");
                let pos = |name: &str| order.iter().position(|o| *o == name);
                for (p, c) in g.edges() {
                    prop_assert!(pos(p) < pos(c), "{p} -> {c} goes backwards");
                }
            }
            Err(DagError::Cycle { cycle }) => {
                prop_assert!(cycle.len() >= 3);
                prop_assert_eq!(cycle.first(), cycle.last());
                for pair in cycle.windows(2) {
                    let p: usize = pair[0][1..].parse().expect("job index");
                    let c: usize = pair[1][1..].parse().expect("job index");
                    prop_assert!(edges.contains(&(p, c)), "{p} -> {c} is not an edge");
                }
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn hostile_schedule_text_is_refused_or_evaluated_without_panic(
        text in "R[0-9]{0,3}/[0-9T:.WZ+-]{0,24}/P[0-9TYMWDHS.-]{0,16}",
        cron in "[0-9*/,LW#?a-zA-Z -]{0,30}",
        secs in -2_000_000_000i64..2_000_000_000,
    ) {
        let t = base() + Duration::seconds(secs);
        if let Ok(s) = Schedule::iso8601(&text, Some("Europe/Berlin"), t) {
            if let Some(n) = s.next_after(t) {
                prop_assert!(n > t);
            }
            let _ = s.last_at_or_before(t);
        }
        if let Ok(s) = Schedule::cron(&cron, None) {
            if let Some(n) = s.next_after(t) {
                prop_assert!(n > t);
            }
        }
    }
}
