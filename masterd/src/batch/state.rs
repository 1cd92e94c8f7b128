//! What the batch controller holds in memory beside the core's tasks: the jobs (definition,
//! parsed schedule, schedule progress), the dependency graph and its durable progress, the active
//! runs and a bounded history of ended ones. Rebuilt from the store at start-up.

use super::active::ActiveRuns;
use super::job::{
    job_json, read_job, Endpoint, JobDefinition, JobError, Mode, ReadContext, RenderOptions,
};
use super::run::RunRecord;
use chrono::{DateTime, Utc};
use gantry_jobs::{DagProgress, JobGraph, JobRecord, Schedule, ScheduleProgress};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many ended runs are kept per job by default (`--job-history`).
pub const DEFAULT_HISTORY: usize = 100;

/// The meta key of the next run id.
pub const NEXT_RUN_KEY: &str = "batch:next_run";
/// The meta key of the dependency graph's event counter.
pub const DAG_SEQ_KEY: &str = "batch:dag_seq";

/// One job.
#[derive(Clone, Debug)]
pub struct JobEntry {
    pub def: JobDefinition,
    /// The parsed schedule of a scheduled job.
    pub schedule: Option<Schedule>,
    /// Which slots have been handled (stored with every change, before any run starts).
    pub progress: Option<ScheduleProgress>,
    /// When it was submitted (or last replaced), seconds since the epoch.
    pub submitted_at: f64,
    /// The job's runs have started at least once since it was submitted (Chronos shows the
    /// submitted schedule string until then).
    pub launched_once: bool,
    /// When its next slot is due, once computed (memory only; `None`: look now).
    pub next_due: Option<DateTime<Utc>>,
}

/// A job as stored: the Chronos JSON of its definition and the controller's progress.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredJob {
    definition: Value,
    #[serde(default)]
    progress: Option<ScheduleProgress>,
    submitted_at: f64,
    #[serde(default)]
    launched_once: bool,
    /// The job's place in the dependency graph's progress.
    #[serde(default)]
    dag: Option<JobRecord>,
}

impl JobEntry {
    /// The stored JSON of this job, with its dependency progress `dag`.
    pub fn to_store(&self, dag: Option<&JobRecord>) -> Value {
        let definition =
            serde_json::to_value(job_json(&self.def, RenderOptions::default())).unwrap_or_default();
        serde_json::to_value(StoredJob {
            definition,
            progress: self.progress,
            submitted_at: self.submitted_at,
            launched_once: self.launched_once,
            dag: dag.copied(),
        })
        .unwrap_or_default()
    }

    /// A job read back from the store, with its dependency progress.
    pub fn from_store(v: Value) -> Result<(JobEntry, Option<JobRecord>), JobError> {
        let s: StoredJob =
            serde_json::from_value(v).map_err(|e| JobError::new("stored job", e.to_string()))?;
        let submitted = DateTime::<Utc>::from_timestamp_millis((s.submitted_at * 1000.0) as i64)
            .unwrap_or_default();
        let ctx = ReadContext {
            endpoint: Endpoint::Any,
            mode: Mode::Update,
            now: submitted,
            default_user: super::job::AGENT_DEFAULT_USER,
        };
        let def = read_job(&s.definition, &ctx)?;
        let schedule = def
            .schedule(submitted)
            .transpose()
            .map_err(|e| JobError::new("schedule", e.to_string()))?;
        Ok((
            JobEntry {
                def,
                schedule,
                progress: s.progress,
                submitted_at: s.submitted_at,
                launched_once: s.launched_once,
                next_due: None,
            },
            s.dag,
        ))
    }
}

/// The batch controller's state.
#[derive(Debug)]
pub struct BatchState {
    pub jobs: BTreeMap<String, JobEntry>,
    pub graph: JobGraph,
    pub dag: DagProgress,
    /// Runs that are queued, launched or running, by id.
    pub active: ActiveRuns,
    /// Ended runs of each job, oldest first, at most `retention`.
    pub history: HashMap<String, VecDeque<RunRecord>>,
    pub next_run_id: u64,
    pub retention: usize,
    /// When the controller must look at the schedules again.
    pub next_wakeup: Option<DateTime<Utc>>,
}

impl Default for BatchState {
    fn default() -> Self {
        BatchState {
            jobs: BTreeMap::new(),
            graph: JobGraph::default(),
            dag: DagProgress::default(),
            active: ActiveRuns::default(),
            history: HashMap::new(),
            next_run_id: 1,
            retention: DEFAULT_HISTORY,
            next_wakeup: None,
        }
    }
}

/// Why the stored batch state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("stored job '{name}' cannot be read: {source}")]
    Job {
        name: String,
        #[source]
        source: JobError,
    },
    #[error("stored run {id} cannot be read: {source}")]
    Run {
        id: u64,
        #[source]
        source: serde_json::Error,
    },
}

impl BatchState {
    /// Rebuilds the state from the store's jobs, runs and meta.
    pub fn load(
        jobs: Vec<(String, Value)>,
        runs: Vec<(u64, Value)>,
        meta: &[(String, String)],
        retention: usize,
    ) -> Result<BatchState, LoadError> {
        let mut st = BatchState {
            retention,
            ..BatchState::default()
        };
        for (name, v) in jobs {
            let (entry, dag) = JobEntry::from_store(v).map_err(|source| LoadError::Job {
                name: name.clone(),
                source,
            })?;
            if let Some(d) = dag {
                st.dag.jobs.insert(name.clone(), d);
            }
            st.jobs.insert(name, entry);
        }
        st.rebuild_graph();
        for (id, v) in runs {
            let run: RunRecord =
                serde_json::from_value(v).map_err(|source| LoadError::Run { id, source })?;
            st.next_run_id = st.next_run_id.max(id + 1);
            if run.state.is_active() {
                st.active.insert(id, run);
            } else {
                st.history
                    .entry(run.job.clone())
                    .or_default()
                    .push_back(run);
            }
        }
        for (k, v) in meta {
            if k == NEXT_RUN_KEY {
                st.next_run_id = st.next_run_id.max(v.parse().unwrap_or(1));
            } else if k == DAG_SEQ_KEY {
                st.dag.seq = v.parse().unwrap_or(0);
            }
        }
        // The counter must be past every stored event.
        let max_seen = st
            .dag
            .jobs
            .values()
            .flat_map(|r| {
                [
                    Some(r.registered),
                    r.last_started,
                    r.last_success,
                    r.last_failure,
                ]
            })
            .flatten()
            .max()
            .unwrap_or(0);
        st.dag.seq = st.dag.seq.max(max_seen);
        Ok(st)
    }

    /// The graph of every job's dependencies. Jobs whose parents are missing (which the API
    /// never stores) are left out, as Chronos drops them.
    pub fn rebuild_graph(&mut self) {
        let specs: Vec<_> = self.jobs.values().map(|j| j.def.job_spec()).collect();
        self.graph = match JobGraph::new(specs.clone()) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "the stored jobs do not form a graph; keeping those that do");
                let mut g = JobGraph::default();
                for s in specs {
                    if let Ok(next) = g.with_job(s) {
                        g = next;
                    }
                }
                g
            }
        };
    }

    /// Hands out a new run id (stored by the caller with [`NEXT_RUN_KEY`]).
    pub fn take_run_id(&mut self) -> u64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        id
    }

    /// Every job but `name` (a graph without it, before deleting it).
    pub fn clone_jobs_without(&self, name: &str) -> BTreeMap<String, JobEntry> {
        self.jobs
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .map(|(n, j)| (n.clone(), j.clone()))
            .collect()
    }

    /// The active runs of one job.
    pub fn active_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a RunRecord> + 'a {
        self.active.values().filter(move |r| r.job == job)
    }

    /// Every run of a job: history then active, oldest first.
    pub fn runs_of<'a>(&'a self, job: &'a str) -> Vec<&'a RunRecord> {
        let mut out: Vec<&RunRecord> = self.history.get(job).into_iter().flatten().collect();
        out.extend(self.active_of(job));
        out
    }
}
