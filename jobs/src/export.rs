//! The job graph in Chronos's export formats (spec §4.8): DOT for `/graph/dot` and the headerless
//! CSV of `/graph/csv` that chronos-python's `scheduler_graph()` reads.

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use crate::dag::JobGraph;

/// A job's last outcome as the CSV shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastState {
    Fresh,
    Success,
    Failure,
}

impl LastState {
    /// Chronos's `getLastState`: fresh if never ran; success if there is no error or the last
    /// success is strictly later than the last error; failure otherwise.
    pub fn from_times(
        last_success: Option<DateTime<Utc>>,
        last_error: Option<DateTime<Utc>>,
    ) -> Self {
        match (last_success, last_error) {
            (None, None) => LastState::Fresh,
            (None, Some(_)) => LastState::Failure,
            (Some(_), None) => LastState::Success,
            (Some(s), Some(e)) if s > e => LastState::Success,
            (Some(_), Some(_)) => LastState::Failure,
        }
    }
}

impl fmt::Display for LastState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LastState::Fresh => "fresh",
            LastState::Success => "success",
            LastState::Failure => "failure",
        })
    }
}

/// A job's current state as the CSV and `/jobs/summary` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentState {
    Idle,
    Queued,
    /// `n` tasks running, shown `"<n> running"` as Chronos 3.x does.
    Running(u32),
}

impl fmt::Display for CurrentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrentState::Idle => f.write_str("idle"),
            CurrentState::Queued => f.write_str("queued"),
            CurrentState::Running(n) => write!(f, "{n} running"),
        }
    }
}

/// JGraphT's `DOTExporter` output: vertices numbered 1..n in submission order, labelled with the
/// job name, one `a -> b;` per edge, two-space indent, trailing newline.
pub fn graph_dot(graph: &JobGraph) -> String {
    let mut out = String::from("digraph G {\n");
    let ids: std::collections::HashMap<&str, usize> = graph
        .jobs()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i + 1))
        .collect();
    for job in graph.jobs() {
        let _ = writeln!(
            out,
            "  {} [ label=\"{}\" ];",
            ids[job.name.as_str()],
            job.name
        );
    }
    for (parent, child) in graph.edges() {
        let _ = writeln!(out, "  {} -> {};", ids[parent], ids[child]);
    }
    out.push_str("}\n");
    out
}

/// Chronos's CSV: `node,<name>,<lastState>,<currentState>` for every job, then
/// `link,<parent>,<child>` for every edge; no header. `state` gives each job's two states.
pub fn graph_csv(graph: &JobGraph, state: impl Fn(&str) -> (LastState, CurrentState)) -> String {
    let mut out = String::new();
    for job in graph.jobs() {
        let (last, current) = state(&job.name);
        let _ = writeln!(out, "node,{},{last},{current}", job.name);
    }
    for (parent, child) in graph.edges() {
        let _ = writeln!(out, "link,{parent},{child}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::JobSpec;

    fn example() -> JobGraph {
        JobGraph::new([
            JobSpec::root("parent_job"),
            JobSpec::dependent("child_job", &["parent_job"]),
        ])
        .unwrap()
    }

    #[test]
    fn dot_matches_chronos() {
        assert_eq!(
            graph_dot(&example()),
            "digraph G {\n  1 [ label=\"parent_job\" ];\n  2 [ label=\"child_job\" ];\n  1 -> 2;\n}\n"
        );
    }

    #[test]
    fn csv_matches_chronos() {
        let csv = graph_csv(&example(), |name| match name {
            "parent_job" => (LastState::Success, CurrentState::Idle),
            _ => (LastState::Fresh, CurrentState::Queued),
        });
        assert_eq!(csv, "node,parent_job,success,idle\nnode,child_job,fresh,queued\nlink,parent_job,child_job\n");
        let running = graph_csv(&example(), |_| {
            (LastState::Failure, CurrentState::Running(2))
        });
        assert!(running.starts_with("node,parent_job,failure,2 running\n"));
    }

    #[test]
    fn last_state_rules() {
        let a = DateTime::parse_from_rfc3339("2014-03-08T16:57:17.507Z")
            .unwrap()
            .to_utc();
        let b = DateTime::parse_from_rfc3339("2014-03-01T00:10:15.957Z")
            .unwrap()
            .to_utc();
        assert_eq!(LastState::from_times(None, None), LastState::Fresh);
        assert_eq!(LastState::from_times(Some(a), Some(b)), LastState::Success);
        assert_eq!(LastState::from_times(Some(b), Some(a)), LastState::Failure);
        assert_eq!(LastState::from_times(Some(a), Some(a)), LastState::Failure);
        assert_eq!(LastState::from_times(None, Some(a)), LastState::Failure);
    }
}
