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

/// A `Store` used from async code. Writes go to one writer thread, which commits every batch
/// waiting when it gets to them in one transaction (group commit: one fsync for all of them, each
/// caller still answered only once its writes are durable). Each batch stays atomic; if a group
/// fails, its batches are applied one by one so that one bad batch fails alone.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<dyn Store>,
    writer: std::sync::mpsc::Sender<Pending>,
}

/// One caller's batch, waiting for the writer.
struct Pending {
    writes: Vec<Write>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The most batches one group commit takes.
const MAX_GROUP: usize = 256;

fn write_loop(store: Arc<dyn Store>, queue: std::sync::mpsc::Receiver<Pending>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        if group.len() == 1 {
            let p = group.remove(0);
            let r = store.apply(&p.writes);
            crate::metrics::STORE_APPLY.observe(started.elapsed());
            let _ = p.done.send(r);
            continue;
        }
        let all: Vec<Write> = group
            .iter()
            .flat_map(|p| p.writes.iter().cloned())
            .collect();
        match store.apply(&all) {
            Ok(()) => {
                crate::metrics::STORE_APPLY.observe(started.elapsed());
                for p in group {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batches = group.len(), "a group commit failed; applying its batches one by one");
                for p in group {
                    let r = store.apply(&p.writes);
                    let _ = p.done.send(r);
                }
            }
        }
    }
}

impl AsyncStore {
    /// Starts the writer thread over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        let (writer, queue) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::Builder::new()
            .name("gantry-store".into())
            .spawn(move || write_loop(s, queue))
            .unwrap_or_else(|e| panic!("cannot start the store's writer thread: {e}"));
        Self { store, writer }
    }

    /// See [`Store::apply`]: durable when this returns `Ok`.
    pub async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let (done, answer) = tokio::sync::oneshot::channel();
        self.writer
            .send(Pending { writes, done })
            .map_err(|_| StoreError::Worker("the store's writer thread stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Worker("the store's writer thread stopped".into()))?
    }

    /// See [`Store::audit_log`].
    pub async fn audit_log(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.audit_log(after, limit))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// See [`Store::load`].
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite, except that a batch holding the meta key `poison` fails (as a full disk would).
    struct Poisonable(SqliteStore);

    impl Store for Poisonable {
        fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
            if writes
                .iter()
                .any(|w| matches!(w, Write::PutMeta { key, .. } if key == "poison"))
            {
                return Err(StoreError::Worker("poisoned".into()));
            }
            self.0.apply(writes)
        }
        fn load(&self) -> Result<Snapshot, StoreError> {
            self.0.load()
        }
        fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
            self.0.audit_log(after, limit)
        }
    }

    fn meta(key: &str) -> Vec<Write> {
        vec![Write::PutMeta {
            key: key.into(),
            value: "v".into(),
        }]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_are_all_stored_and_a_bad_one_fails_alone() {
        let sqlite = SqliteStore::in_memory().expect("sqlite");
        let store = AsyncStore::new(Arc::new(Poisonable(sqlite)));
        let mut handles = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            let key = if i == 77 {
                "poison".to_string()
            } else {
                format!("k{i}")
            };
            handles.push(tokio::spawn(async move { (i, s.apply(meta(&key)).await) }));
        }
        for h in handles {
            let (i, r) = h.await.expect("task");
            assert_eq!(r.is_err(), i == 77, "batch {i}: {r:?}");
        }
        let snap = store.load().await.expect("load");
        assert_eq!(
            snap.meta.len(),
            199,
            "every good batch stored, the bad one not"
        );
    }
}
