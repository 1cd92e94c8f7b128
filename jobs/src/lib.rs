//! Schedules (ISO 8601 repeating intervals, cron, time zones), missed runs, dependency DAGs, retry
//! policy and graph export: the pure library behind Gantry's Chronos-style batch controller.

pub mod dag;
pub mod export;
pub mod missed;
pub mod occurrences;
pub mod readiness;
pub mod retry;
pub mod schedule;

pub use dag::{DagError, Dependency, DependencyKind, DependencyMode, JobGraph, JobSpec};
pub use export::{graph_csv, graph_dot, CurrentState, LastState};
pub use missed::{due, CatchUp, DueRuns, MissedRunPolicy, ScheduleProgress};
pub use readiness::{
    readiness, ready_children, ready_jobs, DagProgress, JobRecord, Readiness, ReadinessRule,
    RunOutcome,
};
pub use retry::{RetryDecision, RetryError, RetryPolicy, TaskEnd};
pub use schedule::{
    next_after, parse_zone, CronError, CronSchedule, Iso8601Error, Iso8601Schedule, Period,
    Repetitions, Schedule, ScheduleError, Zone, ZoneError,
};
