//! The master's durable state behind the `Store` trait: apps, jobs and their runs, tasks, agents
//! and metadata.
//! Every API answer that acknowledges a change is sent only after its batch is durable (`apply`
//! returned, or a queued batch's `Durable` answered).

pub mod records;
pub mod sqlite;
pub mod zk;

use records::{AgentRecord, AuditRecord, TaskRecord};
use std::sync::Arc;

pub use sqlite::SqliteStore;
pub use zk::ZkStore;

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
    /// ZooKeeper is unreachable, timed out or refused: the store is unavailable (and a write
    /// whose outcome is unknown is reported as this, never as success).
    #[error("zookeeper: {0}")]
    Zk(String),
    /// A newer leader claimed the store: this master's writes are refused.
    #[error("another master leads now: this master's writes to the store are fenced off")]
    Fenced,
    /// One batch is too big for one ZooKeeper multi even with its big values in blob chunks.
    #[error("a batch of {bytes} bytes does not fit one ZooKeeper multi ({limit} bytes at most)")]
    TooLarge { bytes: usize, limit: usize },
    /// The store was written by a newer build.
    #[error("the store's layout is version {found}; this build reads up to version {supported}")]
    NewerLayout { found: u64, supported: u64 },
}

/// One change; a batch of them is applied atomically.
#[derive(Clone, Debug)]
pub enum Write {
    /// Create or replace an app definition (Marathon JSON).
    PutApp {
        id: String,
        app: serde_json::Value,
    },
    /// Deletes an app and every stored version of it.
    DeleteApp(String),
    /// Keeps one version of an app (Marathon JSON), listed by `/v2/apps/{id}/versions`.
    PutAppVersion {
        id: String,
        version: String,
        app: serde_json::Value,
    },
    /// Create or replace a deployment plan and its progress (the services controller's JSON).
    PutDeployment {
        id: String,
        deployment: serde_json::Value,
    },
    DeleteDeployment(String),
    /// Create or replace a group created on its own (`/v2/groups`; the services' JSON).
    PutGroup {
        id: String,
        group: serde_json::Value,
    },
    DeleteGroup(String),
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
    /// Keeps one event of `/v2/events` under its id (the store keeps the newest [`EVENTS_KEPT`]).
    Event(Box<StoredEvent>),
}

/// One event of the event stream as stored: its id, `eventType` and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub id: u64,
    pub event_type: String,
    pub body: String,
}

/// How many events the store keeps for `Last-Event-ID` replay.
pub const EVENTS_KEPT: u64 = 10_000;

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
    /// Every stored app version: (app id, version, app JSON), by app then version.
    pub app_versions: Vec<(String, String, serde_json::Value)>,
    pub deployments: Vec<(String, serde_json::Value)>,
    /// The newest [`EVENTS_KEPT`] events, oldest first.
    pub events: Vec<StoredEvent>,
    /// The groups created on their own, by id.
    pub groups: Vec<(String, serde_json::Value)>,
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

/// What runs on the store's writer thread right after a queued batch is durable, in commit order:
/// sending the messages that must follow the write (a launch after its run is stored, an
/// acknowledgement after the status it acknowledges).
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// What the master does when a batch whose changes are already in memory cannot be stored:
/// memory is ahead of the store, so by default it stops (as Mesos's registrar aborts) and the
/// restarted master reloads what is durable.
pub type HaltHook = Arc<dyn Fn(&StoreError) + Send + Sync>;

/// A `Store` used from async code. Writes go to one writer thread, which commits every batch
/// waiting when it gets to them in one transaction (group commit: one fsync for all of them, each
/// caller still answered only once its writes are durable), in the order they were handed over.
///
/// Two ways in:
/// - [`AsyncStore::apply`]: memory changes after the write, so a failure fails this batch alone
///   (a failed group is retried batch by batch) and the caller keeps its memory as it was.
/// - [`AsyncStore::queue`]: the caller changes memory at once, under the master's lock, and
///   waits for durability after releasing it, so the lock is never held across an fsync and
///   concurrent changes share one commit. Such a batch must not fail: if it does, the store stops
///   taking writes (every later batch fails, so what is durable is a prefix of what memory
///   saw) and the [`HaltHook`] runs.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<dyn Store>,
    writer: std::sync::mpsc::Sender<Pending>,
}

/// One caller's batch, waiting for the writer.
struct Pending {
    writes: Vec<Write>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    after: Option<AfterCommit>,
    /// Memory already holds these changes ([`AsyncStore::queue`]).
    ahead: bool,
}

/// The answer to a queued batch: `Ok` once it is durable.
#[must_use = "a queued batch is durable only when its answer says so"]
pub struct Durable(tokio::sync::oneshot::Receiver<Result<(), StoreError>>);

impl Durable {
    /// Waits until the batch is durable (or the store failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        self.0.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Worker("the store's writer thread stopped".into())
}

/// The most batches one group commit takes.
const MAX_GROUP: usize = 256;

/// The writer thread's loop: group, commit, run the after-commit hooks, answer.
struct Writer {
    store: Arc<dyn Store>,
    halt: HaltHook,
    /// Set once a queued (memory-ahead) batch failed: nothing more is written.
    halted: Option<String>,
}

impl Writer {
    fn run(mut self, queue: std::sync::mpsc::Receiver<Pending>) {
        while let Ok(first) = queue.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Pending>) {
        if self.halted.is_some() {
            return group.into_iter().for_each(|p| self.refuse(p));
        }
        let started = std::time::Instant::now();
        let result = match group.as_slice() {
            [one] => self.apply_some(&one.writes),
            _ => self.apply_some(
                &group
                    .iter()
                    .flat_map(|p| p.writes.iter().cloned())
                    .collect::<Vec<_>>(),
            ),
        };
        match result {
            Ok(()) => {
                // Only real transactions count (a controller pass that changed nothing queues an
                // empty batch to keep its place in the order).
                if group.iter().any(|p| !p.writes.is_empty()) {
                    crate::metrics::STORE_APPLY.observe(started.elapsed());
                }
                group.into_iter().for_each(finish_ok);
            }
            Err(e) if group.len() == 1 => {
                if let Some(p) = group.into_iter().next() {
                    self.fail(p, e);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batches = group.len(), "a group commit failed; applying its batches one by one");
                for p in group {
                    if self.halted.is_some() {
                        self.refuse(p);
                        continue;
                    }
                    match self.apply_some(&p.writes) {
                        Ok(()) => finish_ok(p),
                        Err(e) => self.fail(p, e),
                    }
                }
            }
        }
    }

    /// Applies `writes` in one transaction; nothing to apply is no transaction.
    fn apply_some(&self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.store.apply(writes)
    }

    /// A batch failed: its caller hears why; a memory-ahead batch halts the store.
    fn fail(&mut self, p: Pending, e: StoreError) {
        if p.ahead {
            tracing::error!(error = %e, "a write whose change is already in memory failed; the store takes no more writes");
            self.halted = Some(e.to_string());
            (self.halt)(&e);
        }
        let _ = p.done.send(Err(e));
    }

    fn refuse(&self, p: Pending) {
        let why = self.halted.clone().unwrap_or_default();
        let _ = p.done.send(Err(StoreError::Worker(format!(
            "the store stopped after a failed write: {why}"
        ))));
    }
}

/// A batch is durable: its hook runs, then its waiter is answered. In that order, whoever waited
/// on `Durable` sees what the hook did (the messages it sent), and a caller that waits for its
/// last batch has every earlier hook behind it too.
fn finish_ok(p: Pending) {
    if let Some(after) = p.after {
        after();
    }
    let _ = p.done.send(Ok(()));
}

/// The default [`HaltHook`]: log and exit, so that a supervisor restarts the master on what is
/// durable.
fn exit_on_halt(e: &StoreError) {
    tracing::error!(error = %e, "the store failed with changes already made in memory; the master stops (restart it to reload what is stored)");
    eprintln!("gantry-masterd: the store failed ({e}); stopping");
    std::process::exit(70);
}

impl AsyncStore {
    /// Starts the writer thread over `store`; a failed memory-ahead batch stops the process.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_halt(store, Arc::new(exit_on_halt))
    }

    /// Starts the writer thread over `store`, calling `halt` if a memory-ahead batch fails.
    pub fn with_halt(store: Arc<dyn Store>, halt: HaltHook) -> Self {
        let (writer, queue) = std::sync::mpsc::channel();
        let w = Writer {
            store: store.clone(),
            halt,
            halted: None,
        };
        std::thread::Builder::new()
            .name("gantry-store".into())
            .spawn(move || w.run(queue))
            .unwrap_or_else(|e| panic!("cannot start the store's writer thread: {e}"));
        Self { store, writer }
    }

    /// See [`Store::apply`]: durable when this returns `Ok`; memory changes after it.
    pub async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.hand_over(writes, None, false).wait().await
    }

    /// Queues `writes` behind every batch handed over before and returns at once; the caller
    /// has already made (or now makes) the change in memory and awaits the answer after
    /// releasing its lock. `after` runs on the writer thread once the batch is durable, in
    /// commit order, and never if it fails. An empty batch keeps its place in that order.
    pub fn queue(&self, writes: Vec<Write>, after: Option<AfterCommit>) -> Durable {
        self.hand_over(writes, after, true)
    }

    fn hand_over(&self, writes: Vec<Write>, after: Option<AfterCommit>, ahead: bool) -> Durable {
        let (done, answer) = tokio::sync::oneshot::channel();
        let pending = Pending {
            writes,
            done,
            after,
            ahead,
        };
        if let Err(std::sync::mpsc::SendError(p)) = self.writer.send(pending) {
            let _ = p.done.send(Err(stopped()));
        }
        Durable(answer)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queued_batches_commit_in_order_run_their_hooks_after_and_a_failure_halts() {
        let sqlite = SqliteStore::in_memory().expect("sqlite");
        let halts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = halts.clone();
        let store = AsyncStore::with_halt(
            Arc::new(Poisonable(sqlite)),
            Arc::new(move |_| {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut answers = Vec::new();
        for i in 0..100 {
            let o = order.clone();
            let writes = if i % 10 == 3 {
                Vec::new()
            } else {
                meta(&format!("q{i}"))
            };
            let after: AfterCommit = Box::new(move || o.lock().expect("lock").push(i));
            answers.push(store.queue(writes, Some(after)));
        }
        for a in answers {
            a.wait().await.expect("durable");
        }
        assert_eq!(
            *order.lock().expect("lock"),
            (0..100).collect::<Vec<_>>(),
            "every hook ran once, in the order the batches were queued (empty ones too)"
        );
        assert_eq!(store.load().await.expect("load").meta.len(), 90);

        // A memory-ahead batch that fails halts the store: its hook never runs, later batches
        // (queued or applied) fail, and the halt hook ran once.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let bad = store.queue(
            meta("poison"),
            Some(Box::new(move || {
                r.store(true, std::sync::atomic::Ordering::SeqCst)
            })),
        );
        let later = store.queue(meta("after-poison"), None);
        assert!(bad.wait().await.is_err());
        assert!(later.wait().await.is_err());
        assert!(store.apply(meta("applied-after")).await.is_err());
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(halts.load(std::sync::atomic::Ordering::SeqCst), 1);
        let keys: Vec<String> = store
            .load()
            .await
            .expect("load")
            .meta
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys.len(),
            90,
            "nothing after the failure was stored: {keys:?}"
        );
    }
}
