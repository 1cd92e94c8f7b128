//! The master's durable state behind the `Store` trait: apps, jobs and their runs, tasks, agents
//! and metadata.
//! Every API answer that acknowledges a change is sent only after `apply` returned.

pub mod records;
pub mod sqlite;

use records::{AgentRecord, AuditRecord, TaskRecord};
use std::sync::Arc;

pub use sqlite::SqliteStore;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored record '{key}' is corrupt: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// One change; a batch of them is applied atomically.
#[derive(Clone, Debug)]
pub enum Write {
    /// Create or replace an app definition (Marathon JSON).
    PutApp {
        id: String,
        app: serde_json::Value,
    },
    DeleteApp(String),
    PutTask(Box<TaskRecord>),
    DeleteTask(String),
    PutAgent(Box<AgentRecord>),
    /// Create or replace a batch job (the batch controller's JSON: definition and progress).
    PutJob {
        name: String,
        job: serde_json::Value,
    },
    /// Delete a job and every run of it.
    DeleteJob(String),
    /// Create or replace one run of a job (the batch controller's JSON).
    PutRun {
        id: u64,
        job: String,
        run: serde_json::Value,
    },
    DeleteRun(u64),
    PutMeta {
        key: String,
        value: String,
    },
    DeleteMeta(String),
    /// Appends to the audit log (the store assigns `seq` and keeps the newest [`AUDIT_KEPT`]).
    Audit(Box<AuditRecord>),
}

/// How many audit entries the store keeps; older ones are dropped as new ones arrive.
pub const AUDIT_KEPT: u64 = 100_000;

/// Everything the store holds, as loaded at start-up.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub apps: Vec<(String, serde_json::Value)>,
    pub tasks: Vec<TaskRecord>,
    pub agents: Vec<AgentRecord>,
    pub meta: Vec<(String, String)>,
    pub jobs: Vec<(String, serde_json::Value)>,
    pub runs: Vec<(u64, serde_json::Value)>,
}

/// Durable master state. Implementations are synchronous; `AsyncStore` runs them off the runtime.
pub trait Store: Send + Sync + 'static {
    /// Applies all writes in one transaction, durably, or none of them.
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// Loads everything.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
}

/// A `Store` used from async code: each call runs on tokio's blocking pool, never on a runtime thread.
#[derive(Clone)]
pub struct AsyncStore(Arc<dyn Store>);

impl AsyncStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// See [`Store::apply`].
    pub async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let r = store.apply(&writes);
            crate::metrics::STORE_APPLY.observe(started.elapsed());
            r
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// See [`Store::audit_log`].
    pub async fn audit_log(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || store.audit_log(after, limit))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// See [`Store::load`].
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}
