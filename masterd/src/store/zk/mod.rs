//! The ZooKeeper store: the same records as SQLite, one znode each, for masters that share their
//! state (high availability; docs/ha.md, "The ZooKeeper store"). One `apply` is one ZooKeeper
//! multi (plus blob chunks written before it for big values), fenced by the leader's epoch.
//!
//! The trait is synchronous: the store runs the async client on its own small tokio runtime and
//! waits for each answer on a channel (at most a bounded time), blocking only its caller: call it
//! off the master's async worker threads, as `AsyncStore` does (its writer thread,
//! `spawn_blocking`).

pub mod batch;
pub mod codec;
pub mod fence;
pub mod layout;
mod scan;

use super::records::AuditRecord;
use super::{Snapshot, Store, StoreError, Write, AUDIT_KEPT};
use batch::{Index, Plan};
use fence::{zk, Fence};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use zookeeper_client::{Acls, CheckWriteError, Client, CreateMode, Error, SessionState};

/// How a store connects.
#[derive(Clone, Debug)]
struct Config {
    servers: String,
    root: String,
    session_timeout: Duration,
    /// `user:password` for the digest scheme.
    digest: Option<String>,
}

/// A store in ZooKeeper under one root path.
pub struct ZkStore {
    rt: Option<tokio::runtime::Runtime>,
    config: Config,
    inner: Mutex<Inner>,
}

struct Inner {
    client: Client,
    fence: Fence,
    /// `None` after a multi whose outcome is unknown (or that found the index wrong): the next
    /// call reads the store again first.
    index: Option<Index>,
}

fn acls(digest: bool) -> Acls<'static> {
    if digest {
        Acls::creator_all()
    } else {
        Acls::anyone_all()
    }
}

impl ZkStore {
    /// Connects to `servers` (ZooKeeper's connect string), creates the layout under `root` if
    /// needed, refuses a layout newer than this build's, and claims the next epoch: from now on
    /// every store opened earlier on `root` fails its writes with [`StoreError::Fenced`].
    pub fn open(
        servers: &str,
        root: &str,
        session_timeout: Duration,
    ) -> Result<ZkStore, StoreError> {
        Self::open_with_auth(servers, root, session_timeout, None)
    }

    /// [`ZkStore::open`], authenticated with ZooKeeper's digest scheme (`user:password`, as
    /// `ZkUrl::digest` holds it); the nodes it creates are then readable and writable by that
    /// identity only.
    pub fn open_with_auth(
        servers: &str,
        root: &str,
        session_timeout: Duration,
        digest: Option<&str>,
    ) -> Result<ZkStore, StoreError> {
        let root = root.trim_end_matches('/').to_owned();
        if !root.starts_with('/') || root.is_empty() {
            return Err(StoreError::Zk(format!(
                "the store's root must be an absolute znode path other than /, not '{root}'"
            )));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gantry-zk-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Worker(format!("cannot start the ZooKeeper runtime: {e}")))?;
        let config = Config {
            servers: servers.to_owned(),
            root,
            session_timeout,
            digest: digest.map(str::to_owned),
        };
        let c = config.clone();
        let (client, fence, index, referenced) = run(&rt, session_timeout * 2, async move {
            let client = connect(&c).await?;
            prepare(&client, &c).await?;
            let fence = fence::claim(&client, &format!("{}/epoch", c.root)).await?;
            let scanned = scan::scan(&client, &c.root).await?;
            Ok((client, fence, scanned.index, scanned.referenced))
        })?;
        let store = ZkStore {
            rt: Some(rt),
            config,
            inner: Mutex::new(Inner {
                client,
                fence,
                index: Some(index),
            }),
        };
        store.collect_garbage(&referenced);
        tracing::info!(root = %store.config.root, epoch = store.epoch(), "ZooKeeper store opened; this master leads its writes");
        Ok(store)
    }

    /// The epoch this store claimed when it opened (1 for the first, increasing).
    pub fn epoch(&self) -> u64 {
        self.lock().fence.epoch
    }

    /// The names of the blob chunks stored now, referenced or not (diagnostics and tests).
    pub fn blobs(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client(&mut self.lock())?;
        let path = format!("{}/blobs", self.config.root);
        self.run(self.config.session_timeout, async move {
            client
                .list_children(&path)
                .await
                .map_err(zk("list the blobs"))
        })
    }

    /// The store's root path.
    pub fn root(&self) -> &str {
        &self.config.root
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change to `Inner` is a plain assignment: a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.rt {
            Some(rt) => run(rt, limit, f),
            None => Err(StoreError::Worker("the ZooKeeper store is closed".into())),
        }
    }

    /// A client whose session is alive: a new session if the old one expired or closed (the
    /// fence is the epoch znode's version, not the session, so it carries over).
    fn client(&self, inner: &mut Inner) -> Result<Client, StoreError> {
        if matches!(
            inner.client.state(),
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
        ) {
            tracing::warn!("the ZooKeeper session ended; opening a new one");
            let c = self.config.clone();
            inner.client = self.run(
                self.config.session_timeout,
                async move { connect(&c).await },
            )?;
        }
        Ok(inner.client.clone())
    }

    /// The index, read again from ZooKeeper if it is not known.
    fn index<'a>(&self, inner: &'a mut Inner) -> Result<&'a mut Index, StoreError> {
        if inner.index.is_none() {
            let client = self.client(inner)?;
            let root = self.config.root.clone();
            let scanned = self.run(self.config.session_timeout, async move {
                scan::scan(&client, &root).await
            })?;
            inner.index = Some(scanned.index);
        }
        inner
            .index
            .as_mut()
            .ok_or_else(|| StoreError::Worker("the store's index is missing".into()))
    }

    /// Deletes, in the background, the blob chunks no record points at (left by a failed multi,
    /// or by a master that died between writing them and its multi).
    fn collect_garbage(&self, referenced: &std::collections::BTreeSet<String>) {
        let inner = self.lock();
        let client = inner.client.clone();
        drop(inner);
        let root = self.config.root.clone();
        let referenced = referenced.clone();
        if let Some(rt) = &self.rt {
            rt.spawn(async move {
                if let Ok(blobs) = client.list_children(&format!("{root}/blobs")).await {
                    let doomed: Vec<String> = blobs
                        .into_iter()
                        .filter(|b| !referenced.contains(b))
                        .collect();
                    delete_blobs(&client, &root, doomed).await;
                }
            });
        }
    }

    /// The multi for `plan`: every change (the fence's check is added when it is sent); big
    /// values go to blob chunks first (values stay inline while the multi fits
    /// [`codec::MULTI_BUDGET`]).
    fn build(&self, index: &Index, plan: &Plan) -> Result<Prepared, StoreError> {
        let root = &self.config.root;
        let mut ops: Vec<Op> = Vec::new();
        for (path, r) in &plan.records {
            let full = format!("{root}/state/{path}");
            let existed = index.nodes.contains_key(path);
            match r {
                Some(r) => ops.push(Op::Put {
                    record: Some(path.clone()),
                    path: full,
                    data: r.body.clone(),
                    create: !existed,
                }),
                None if existed => ops.push(Op::Delete(full)),
                None => {}
            }
        }
        for (page, entries) in &plan.audit_put {
            ops.push(Op::Put {
                record: None,
                path: format!("{root}/state/{}", layout::audit_page_path(*page)),
                // Serializing audit records always succeeds.
                data: serde_json::to_vec(entries).unwrap_or_default(),
                create: !Plan::audit_page_existed(index, *page),
            });
        }
        for page in &plan.audit_delete {
            ops.push(Op::Delete(format!(
                "{root}/state/{}",
                layout::audit_page_path(*page)
            )));
        }
        let cost = |op: &Op| -> usize {
            codec::OP_OVERHEAD
                + match op {
                    Op::Put { path, data, .. } => path.len() + data.len() + 1,
                    Op::Delete(path) => path.len(),
                }
        };
        let mut total: usize = ops.iter().map(cost).sum::<usize>() + codec::OP_OVERHEAD;
        // Record values over a chunk always go to blobs; then the biggest go until it fits.
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_by_key(|&i| match &ops[i] {
            Op::Put { data, .. } => std::cmp::Reverse(data.len()),
            Op::Delete(_) => std::cmp::Reverse(0),
        });
        let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
        let mut pointers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in order {
            if let Op::Put {
                data,
                record: Some(record),
                ..
            } = &mut ops[i]
            {
                let big = data.len() > codec::CHUNK;
                if big || (total > codec::MULTI_BUDGET && data.len() > 1024) {
                    let (pointer, parts) = codec::chunks(data);
                    let encoded = codec::pointer(&pointer);
                    total = total + encoded.len() - (data.len() + 1);
                    pointers.insert(record.clone(), pointer.chunks);
                    blobs.extend(parts);
                    *data = encoded;
                } else {
                    *data = codec::inline(data);
                }
            }
        }
        if total > codec::MULTI_BUDGET {
            return Err(StoreError::TooLarge {
                bytes: total,
                limit: codec::MULTI_BUDGET,
            });
        }
        Ok(Prepared {
            ops,
            blobs,
            pointers,
        })
    }
}

/// One change of a multi.
enum Op {
    Put {
        /// For a record, its path relative to `state/` (an audit page is `None`).
        record: Option<String>,
        path: String,
        /// The znode's data (a record's inline value or blob pointer, encoded).
        data: Vec<u8>,
        create: bool,
    },
    Delete(String),
}

/// A multi ready to send.
struct Prepared {
    ops: Vec<Op>,
    /// Blob chunks to write before it: (name, bytes).
    blobs: Vec<(String, Vec<u8>)>,
    /// The chunks each record path points at.
    pointers: BTreeMap<String, Vec<String>>,
}

/// How a multi ended.
enum Outcome {
    Committed,
    Fenced,
    /// It failed as a whole: nothing changed, but the index was wrong.
    Refused(String),
    /// The answer never came: it may or may not have committed.
    Unknown(String),
}

/// Runs `f` on `rt` and waits for it, at most `limit`.
fn run<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    limit: Duration,
    f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let answer = tokio::time::timeout(limit, f).await;
        let _ = tx.send(answer);
    });
    match rx.recv_timeout(limit + Duration::from_secs(1)) {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(StoreError::Zk(format!(
            "ZooKeeper did not answer within {limit:?}"
        ))),
    }
}

async fn connect(c: &Config) -> Result<Client, StoreError> {
    let mut connector = Client::connector().with_session_timeout(c.session_timeout);
    if let Some(d) = &c.digest {
        connector = connector.with_auth("digest", d.as_bytes());
    }
    connector
        .connect(&c.servers)
        .await
        .map_err(|e| StoreError::Zk(format!("cannot connect to ZooKeeper at {}: {e}", c.servers)))
}

/// Creates the layout if it is missing and checks its version.
async fn prepare(client: &Client, c: &Config) -> Result<(), StoreError> {
    let acl = acls(c.digest.is_some());
    let dir = CreateMode::Persistent.with_acls(acl);
    client
        .mkdir(&c.root, &dir)
        .await
        .map_err(zk("create the store's root"))?;
    let create = |path: String, data: Vec<u8>| {
        let client = client.clone();
        let dir = dir.clone();
        async move {
            match client.create(&path, &data, &dir).await {
                Ok(_) | Err(Error::NodeExists) => Ok(()),
                Err(e) => Err(StoreError::Zk(format!("create {path}: {e}"))),
            }
        }
    };
    let root = &c.root;
    create(
        format!("{root}/version"),
        layout::LAYOUT_VERSION.to_string().into_bytes(),
    )
    .await?;
    let (data, _) = client
        .get_data(&format!("{root}/version"))
        .await
        .map_err(zk("read the store's version"))?;
    let found: u64 = std::str::from_utf8(&data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| StoreError::Zk(format!("{root}/version holds no version number")))?;
    if found > layout::LAYOUT_VERSION {
        return Err(StoreError::NewerLayout {
            found,
            supported: layout::LAYOUT_VERSION,
        });
    }
    // Migrations from older layouts would run here, each in its own fenced multi; version 1 is
    // the first.
    for top in ["epoch", "blobs", "state"] {
        create(format!("{root}/{top}"), b"0".to_vec()).await?;
    }
    let mut dirs = vec![
        format!("{root}/state/events"),
        format!("{root}/state/audit"),
    ];
    for coll in layout::COLLECTIONS {
        dirs.push(format!("{root}/state/{coll}"));
    }
    for r in join_all(dirs.iter().map(|d| create(d.clone(), Vec::new()))).await {
        r?;
    }
    let mut buckets = Vec::new();
    for coll in layout::COLLECTIONS {
        for b in layout::buckets() {
            buckets.push(format!("{root}/state/{coll}/{b}"));
        }
    }
    for r in join_all(buckets.into_iter().map(|d| create(d, Vec::new()))).await {
        r?;
    }
    Ok(())
}

async fn delete_blobs(client: &Client, root: &str, names: Vec<String>) {
    let deletes = names.iter().map(|n| {
        let path = format!("{root}/blobs/{n}");
        let client = client.clone();
        async move { client.delete(&path, None).await }
    });
    for r in join_all(deletes).await {
        if let Err(e) = r {
            if e != Error::NoNode {
                tracing::debug!(error = %e, "a garbage blob chunk could not be deleted (the next open retries)");
            }
        }
    }
}

/// Writes the blob chunks, then sends the multi.
async fn commit(
    client: Client,
    root: String,
    fence: Fence,
    prepared: Prepared,
    acl: Acls<'static>,
) -> Result<Outcome, StoreError> {
    let opts = CreateMode::Persistent.with_acls(acl);
    let writes = prepared.blobs.iter().map(|(name, bytes)| {
        let path = format!("{root}/blobs/{name}");
        let client = client.clone();
        let opts = opts.clone();
        async move { client.create(&path, bytes, &opts).await.map(|_| ()) }
    });
    let results = join_all(writes).await;
    let names: Vec<String> = prepared.blobs.iter().map(|(n, _)| n.clone()).collect();
    if let Some(e) = results.into_iter().find_map(|r| r.err()) {
        delete_blobs(&client, &root, names).await;
        return Err(StoreError::Zk(format!("write a blob chunk: {e}")));
    }
    let mut multi = client
        .new_check_writer(&fence.path, Some(fence.version))
        .map_err(zk("start a multi"))?;
    for op in &prepared.ops {
        let added = match op {
            Op::Put {
                path,
                data,
                create: true,
                ..
            } => multi.add_create(path, data, &opts),
            Op::Put { path, data, .. } => multi.add_set_data(path, data, None),
            Op::Delete(path) => multi.add_delete(path, None),
        };
        added.map_err(zk("build a multi"))?;
    }
    let outcome = match multi.commit().await {
        Ok(_) => Outcome::Committed,
        Err(CheckWriteError::CheckFailed {
            source: Error::BadVersion | Error::NoNode,
        }) => Outcome::Fenced,
        Err(CheckWriteError::OperationFailed { index, source }) => {
            Outcome::Refused(format!("operation {index} of the multi failed: {source}"))
        }
        Err(e) => Outcome::Unknown(e.to_string()),
    };
    if matches!(outcome, Outcome::Fenced | Outcome::Refused(_)) {
        // Nothing references the chunks: the multi did not commit.
        delete_blobs(&client, &root, names).await;
    }
    Ok(outcome)
}

impl Store for ZkStore {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let index = self.index(&mut inner)?;
        let plan = batch::plan(index, writes)?;
        let prepared = self.build(index, &plan)?;
        let pointers = prepared.pointers.clone();
        let garbage = batch::garbage(index, &plan);
        let client = self.client(&mut inner)?;
        let fence = inner.fence.clone();
        let root = self.config.root.clone();
        let acl = acls(self.config.digest.is_some());
        let answer = self.run(self.config.session_timeout, {
            let client = client.clone();
            async move { commit(client, root, fence, prepared, acl).await }
        });
        match answer {
            Ok(Outcome::Committed) => {
                if let Some(index) = inner.index.as_mut() {
                    batch::commit(index, &plan, &pointers);
                }
                if !garbage.is_empty() {
                    let root = self.config.root.clone();
                    if let Some(rt) = &self.rt {
                        rt.spawn(async move { delete_blobs(&client, &root, garbage).await });
                    }
                }
                Ok(())
            }
            Ok(Outcome::Fenced) => Err(StoreError::Fenced),
            Ok(Outcome::Refused(why)) => {
                inner.index = None;
                Err(StoreError::Zk(format!(
                    "the store changed under this master ({why}); nothing was written"
                )))
            }
            Ok(Outcome::Unknown(why)) => {
                inner.index = None;
                Err(StoreError::Zk(format!(
                    "the write's outcome is unknown ({why})"
                )))
            }
            Err(e) => {
                inner.index = None;
                Err(e)
            }
        }
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut inner = self.lock();
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500));
            }
            let client = match self.client(&mut inner) {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let root = self.config.root.clone();
            match self.run(self.config.session_timeout, async move {
                scan::scan(&client, &root).await
            }) {
                Ok(scanned) => {
                    inner.index = Some(scanned.index);
                    return Ok(scanned.snapshot);
                }
                Err(e @ StoreError::Corrupt { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Zk("cannot load the store".into())))
    }

    fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let mut inner = self.lock();
        let cutoff = self.index(&mut inner)?.audit_cutoff();
        let client = self.client(&mut inner)?;
        drop(inner);
        let root = self.config.root.clone();
        self.run(self.config.session_timeout, async move {
            let pages = scan::audit_pages(&client, &root).await?;
            let first = layout::audit_page(after.saturating_add(1));
            let mut out = Vec::new();
            for page in pages.into_iter().filter(|p| *p >= first) {
                if out.len() >= limit {
                    break;
                }
                let entries = scan::read_audit_page(&client, &root, page).await?;
                out.extend(
                    entries
                        .into_iter()
                        .filter(|a| a.seq > after && a.seq > cutoff)
                        .take(limit - out.len()),
                );
            }
            Ok(out)
        })
    }
}

impl Drop for ZkStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

// Keep the constant in the public docs' terms: an audit entry stays until AUDIT_KEPT newer ones.
const _: () = assert!(AUDIT_KEPT > layout::AUDIT_PAGE);
