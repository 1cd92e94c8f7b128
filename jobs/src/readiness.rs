//! When a dependent job is ready: Chronos's rule (every parent succeeded since the child last
//! started) generalised to afterok / afterany / afternotok edges and singleton, over a progress
//! state that is a plain serde value the master stores, so a restart loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dag::{DependencyKind, DependencyMode, JobGraph, JobSpec};

/// How a run ended, after its retries (see [`crate::retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Succeeded,
    Failed,
}

/// What the graph remembers about one job. Times are positions in [`DagProgress`]'s event
/// sequence, not clock readings, so ordering never depends on clock skew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// When the job entered the graph: parent completions before this do not count.
    pub registered: u64,
    pub last_started: Option<u64>,
    pub last_success: Option<u64>,
    /// Last *final* failure (retries exhausted).
    pub last_failure: Option<u64>,
    /// Runs started and not finished.
    pub running: u32,
}

impl JobRecord {
    fn last_finished(&self) -> Option<u64> {
        self.last_success.max(self.last_failure)
    }
}

/// Dependency progress of the whole graph: store it after every event, restore it at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DagProgress {
    /// Event counter; every recorded event takes the next value.
    pub seq: u64,
    pub jobs: BTreeMap<String, JobRecord>,
}

impl DagProgress {
    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn record(&mut self, job: &str) -> &mut JobRecord {
        if !self.jobs.contains_key(job) {
            let registered = self.tick();
            self.jobs.insert(
                job.to_string(),
                JobRecord {
                    registered,
                    ..JobRecord::default()
                },
            );
        }
        self.jobs.entry(job.to_string()).or_default()
    }

    /// A job entered the graph (submit). Parent runs that finished before now do not make it ready.
    pub fn register(&mut self, job: &str) {
        self.record(job);
    }

    /// A run of `job` started (Chronos resets the child's edge counters here).
    pub fn record_started(&mut self, job: &str) {
        let at = self.tick();
        let r = self.record(job);
        r.last_started = Some(at);
        r.running += 1;
    }

    /// A run of `job` ended for good with `outcome` (not called between retries).
    pub fn record_finished(&mut self, job: &str, outcome: RunOutcome) {
        let at = self.tick();
        let r = self.record(job);
        r.running = r.running.saturating_sub(1);
        match outcome {
            RunOutcome::Succeeded => r.last_success = Some(at),
            RunOutcome::Failed => r.last_failure = Some(at),
        }
    }

    /// A run is marked successful by hand (Chronos `PUT /job/success/{name}`).
    pub fn record_marked_success(&mut self, job: &str) {
        let at = self.tick();
        self.record(job).last_success = Some(at);
    }

    /// The job left the graph.
    pub fn forget(&mut self, job: &str) {
        self.jobs.remove(job);
    }
}

/// Where a dependent job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Readiness {
    /// Not a dependent job (no parents): runs by schedule or by hand.
    NotDependent,
    /// Every edge holds (mode `all`) or one does (mode `any`): start it.
    Ready,
    /// Ready by its parents, but a run of this singleton job is still active.
    AlreadyRunning,
    /// Waiting for these parents to finish (again).
    Waiting { parents: Vec<String> },
    /// A parent finished in the state the edge does not accept (e.g. afterok and it failed).
    /// Unlike Slurm this is not final: the edge holds again after the next acceptable finish.
    Blocked {
        failed: Vec<String>,
        waiting: Vec<String>,
    },
}

/// Options for the readiness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessRule {
    /// Gantry's fix for Chronos #543: a parent that is running or itself ready to run again
    /// counts as not finished yet, so in A → {C1, C2} → End, End waits for both C1 and C2 of the
    /// same wave. Off = Chronos's plain rule.
    pub await_pending_parents: bool,
}

enum Edge {
    Holds,
    Pending,
    Blocked,
}

fn edge(kind: DependencyKind, parent: &JobSpec, p: Option<&JobRecord>, base: u64) -> Edge {
    let Some(p) = p else { return Edge::Pending };
    let since = |at: Option<u64>| at.is_some_and(|a| a > base);
    let success = since(p.last_success) || (parent.soft_error && since(p.last_failure));
    let failure = since(p.last_failure);
    let holds = match kind {
        DependencyKind::AfterOk => success,
        DependencyKind::AfterAny => since(p.last_finished()),
        DependencyKind::AfterNotOk => failure,
    };
    if holds {
        Edge::Holds
    } else if since(p.last_finished()) {
        Edge::Blocked
    } else {
        Edge::Pending
    }
}

/// Readiness of `job` by its parent edges only (no pending-parent guard).
fn by_parents(
    graph: &JobGraph,
    progress: &DagProgress,
    spec: &JobSpec,
    rule: ReadinessRule,
    depth: u8,
) -> Readiness {
    if spec.dependencies.is_empty() {
        return Readiness::NotDependent;
    }
    let me = progress.jobs.get(&spec.name);
    let base = me.map_or(0, |r| r.last_started.unwrap_or(r.registered));
    let (mut holds, mut failed, mut waiting) = (0usize, Vec::new(), Vec::new());
    let mut total = 0usize;
    for (parent, kind) in graph.parents(&spec.name) {
        total += 1;
        let Some(pspec) = graph.job(parent) else {
            continue;
        };
        let precord = progress.jobs.get(parent);
        let mut state = edge(kind, pspec, precord, base);
        if rule.await_pending_parents && depth == 0 && matches!(state, Edge::Holds) {
            let parent_running = precord.is_some_and(|r| r.running > 0);
            let parent_due = by_parents(graph, progress, pspec, rule, 1) == Readiness::Ready;
            if parent_running || parent_due {
                state = Edge::Pending;
            }
        }
        match state {
            Edge::Holds => holds += 1,
            Edge::Pending => waiting.push(parent.to_string()),
            Edge::Blocked => failed.push(parent.to_string()),
        }
    }
    let ready = match spec.mode {
        DependencyMode::All => holds == total,
        DependencyMode::Any => holds > 0,
    };
    if ready {
        if spec.singleton && me.is_some_and(|r| r.running > 0) {
            Readiness::AlreadyRunning
        } else {
            Readiness::Ready
        }
    } else if !failed.is_empty() && (spec.mode == DependencyMode::All || waiting.is_empty()) {
        Readiness::Blocked { failed, waiting }
    } else {
        Readiness::Waiting { parents: waiting }
    }
}

/// Where `job` stands (`None` if the graph has no such job).
pub fn readiness(
    graph: &JobGraph,
    progress: &DagProgress,
    job: &str,
    rule: ReadinessRule,
) -> Option<Readiness> {
    graph
        .job(job)
        .map(|spec| by_parents(graph, progress, spec, rule, 0))
}

/// The children of `parent` that are ready now: call after recording `parent`'s finish.
pub fn ready_children(
    graph: &JobGraph,
    progress: &DagProgress,
    parent: &str,
    rule: ReadinessRule,
) -> Vec<String> {
    graph
        .children(parent)
        .filter(|c| readiness(graph, progress, c, rule) == Some(Readiness::Ready))
        .map(str::to_string)
        .collect()
}

/// Every dependent job that is ready now (after a restart, or as a periodic sweep).
pub fn ready_jobs(graph: &JobGraph, progress: &DagProgress, rule: ReadinessRule) -> Vec<String> {
    graph
        .jobs()
        .filter(|spec| by_parents(graph, progress, spec, rule, 0) == Readiness::Ready)
        .map(|spec| spec.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::Dependency;
    use RunOutcome::*;

    const CHRONOS: ReadinessRule = ReadinessRule {
        await_pending_parents: false,
    };
    const FIXED: ReadinessRule = ReadinessRule {
        await_pending_parents: true,
    };

    fn graph(jobs: Vec<JobSpec>) -> (JobGraph, DagProgress) {
        let mut p = DagProgress::default();
        for j in &jobs {
            p.register(&j.name);
        }
        (JobGraph::new(jobs).unwrap(), p)
    }

    fn run(p: &mut DagProgress, job: &str, outcome: RunOutcome) {
        p.record_started(job);
        p.record_finished(job, outcome);
    }

    #[test]
    fn child_runs_when_every_parent_succeeded_since_it_last_started() {
        let (g, mut p) = graph(vec![
            JobSpec::root("a"),
            JobSpec::root("b"),
            JobSpec::dependent("c", &["a", "b"]),
        ]);
        run(&mut p, "a", Succeeded);
        assert!(ready_children(&g, &p, "a", CHRONOS).is_empty());
        assert_eq!(
            readiness(&g, &p, "c", CHRONOS),
            Some(Readiness::Waiting {
                parents: vec!["b".into()]
            })
        );
        run(&mut p, "a", Succeeded); // a twice is not banked as two
        run(&mut p, "b", Succeeded);
        assert_eq!(ready_children(&g, &p, "b", CHRONOS), ["c"]);
        p.record_started("c");
        assert!(ready_jobs(&g, &p, CHRONOS).is_empty());
        run(&mut p, "b", Succeeded);
        assert_eq!(
            readiness(&g, &p, "c", CHRONOS),
            Some(Readiness::Waiting {
                parents: vec!["a".into()]
            })
        );
    }

    #[test]
    fn failure_soft_error_and_edge_kinds() {
        let mut soft = JobSpec::root("s");
        soft.soft_error = true;
        let mut on_fail = JobSpec::root("alert");
        on_fail.dependencies = vec![Dependency {
            parent: "a".into(),
            kind: DependencyKind::AfterNotOk,
        }];
        let mut any = JobSpec::root("cleanup");
        any.dependencies = vec![Dependency {
            parent: "a".into(),
            kind: DependencyKind::AfterAny,
        }];
        let (g, mut p) = graph(vec![
            JobSpec::root("a"),
            soft,
            JobSpec::dependent("c", &["a"]),
            JobSpec::dependent("d", &["s"]),
            on_fail,
            any,
        ]);
        run(&mut p, "a", Failed);
        assert_eq!(ready_children(&g, &p, "a", CHRONOS), ["alert", "cleanup"]);
        assert_eq!(
            readiness(&g, &p, "c", CHRONOS),
            Some(Readiness::Blocked {
                failed: vec!["a".into()],
                waiting: vec![]
            })
        );
        run(&mut p, "s", Failed);
        assert_eq!(
            ready_children(&g, &p, "s", CHRONOS),
            ["d"],
            "softError failure triggers"
        );
        run(&mut p, "a", Succeeded);
        assert_eq!(
            ready_children(&g, &p, "a", CHRONOS),
            ["c", "alert", "cleanup"]
        );
    }

    #[test]
    fn singleton_waits_for_its_own_run_and_any_mode() {
        let mut c = JobSpec::dependent("c", &["a", "b"]);
        c.singleton = true;
        c.mode = DependencyMode::Any;
        let (g, mut p) = graph(vec![JobSpec::root("a"), JobSpec::root("b"), c]);
        run(&mut p, "a", Succeeded);
        assert_eq!(readiness(&g, &p, "c", CHRONOS), Some(Readiness::Ready));
        p.record_started("c");
        run(&mut p, "b", Succeeded);
        assert_eq!(
            readiness(&g, &p, "c", CHRONOS),
            Some(Readiness::AlreadyRunning)
        );
        p.record_finished("c", Succeeded);
        assert_eq!(readiness(&g, &p, "c", CHRONOS), Some(Readiness::Ready));
    }

    #[test]
    fn chronos_543_diamond_waits_for_the_same_wave_with_the_fix() {
        let (g, mut p) = graph(vec![
            JobSpec::root("a"),
            JobSpec::dependent("c1", &["a"]),
            JobSpec::dependent("c2", &["a"]),
            JobSpec::dependent("end", &["c1", "c2"]),
        ]);
        // Wave 1: c1 succeeds, c2 fails; end waits.
        run(&mut p, "a", Succeeded);
        run(&mut p, "c1", Succeeded);
        run(&mut p, "c2", Failed);
        // Wave 2: c2 finishes first.
        run(&mut p, "a", Succeeded);
        run(&mut p, "c2", Succeeded);
        assert_eq!(
            ready_children(&g, &p, "c2", CHRONOS),
            ["end"],
            "Chronos: runs with stale c1"
        );
        assert!(
            ready_children(&g, &p, "c2", FIXED).is_empty(),
            "fixed: waits for c1 of wave 2"
        );
        run(&mut p, "c1", Succeeded);
        assert_eq!(ready_children(&g, &p, "c1", FIXED), ["end"]);
    }

    #[test]
    fn progress_survives_a_json_round_trip() {
        let (g, mut p) = graph(vec![
            JobSpec::root("a"),
            JobSpec::root("b"),
            JobSpec::dependent("c", &["a", "b"]),
        ]);
        run(&mut p, "a", Succeeded);
        // Chronos lost this after a restart (#811): here it is stored and restored.
        let restored: DagProgress =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(restored, p);
        let mut restored = restored;
        run(&mut restored, "b", Succeeded);
        assert_eq!(ready_children(&g, &restored, "b", CHRONOS), ["c"]);
    }

    #[test]
    fn parent_success_before_the_child_existed_does_not_count() {
        let mut p = DagProgress::default();
        p.register("a");
        run(&mut p, "a", Succeeded);
        let g = JobGraph::new([JobSpec::root("a"), JobSpec::dependent("c", &["a"])]).unwrap();
        p.register("c");
        assert!(ready_jobs(&g, &p, CHRONOS).is_empty());
        run(&mut p, "a", Succeeded);
        assert_eq!(ready_jobs(&g, &p, CHRONOS), ["c"]);
    }
}
