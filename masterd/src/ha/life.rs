//! An HA master's life (`--zk`): it listens at once and serves the standby router; it contends in
//! the election; on winning it opens the store, loads it and builds the leader exactly as the one
//! master does ([`crate::master::lead`]) on the masters' shared ZooKeeper store, then swaps its full
//! API in. Unsure of its leadership
//! (disconnected from ZooKeeper) it refuses changes; once it has lost the leadership (session
//! expired, its znode gone, a store write refused) it refuses changes for good, keeps serving
//! reads from the last state, and when ZooKeeper answers again it starts over as a fresh
//! contender by executing itself again in place (see docs/ha.md for why).

use super::election::{Contender, Election, Role};
use super::gate::{refuse_changes, Gate, Refusal};
use crate::config::{HaSettings, MasterConfig};
use crate::master::{self, MasterError};
use crate::store::records::AuditRecord;
use crate::store::zk::ZkStore;
use crate::store::{AsyncStore, HaltHook, Snapshot, Store, StoreError, Write};
use gantry_daemon::masters::MasterInfo;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A running HA master.
pub struct HaHandle {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// What this master wrote into its znode.
    pub me: MasterInfo,
    pub election: Election,
}

/// Set once the process is stopping: a deposition then no longer starts the master again.
static STOPPING: AtomicBool = AtomicBool::new(false);

impl HaHandle {
    /// Leaves the masters' group before the process stops (SIGTERM), so that another master
    /// leads now rather than when this one's session times out. Waits at most 2 s.
    pub async fn resign(&self) {
        STOPPING.store(true, Ordering::SeqCst);
        let mut role = self.election.role.clone();
        if !matches!(
            *role.borrow_and_update(),
            Role::Leading | Role::Standby | Role::Unsure
        ) {
            return;
        }
        self.election.resign();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while role.changed().await.is_ok() {
                if !matches!(*role.borrow_and_update(), Role::Leading | Role::Unsure) {
                    return;
                }
            }
        })
        .await;
    }
}

/// The router served now, swapped atomically (the standby's, then the leader's).
#[derive(Clone)]
struct Dispatch(Arc<RwLock<axum::Router>>);

impl Dispatch {
    fn swap(&self, to: axum::Router) {
        match self.0.write() {
            Ok(mut r) => *r = to,
            Err(poisoned) => *poisoned.into_inner() = to,
        }
    }

    fn current(&self) -> axum::Router {
        match self.0.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The service the listener serves: each request goes to the router current when it came.
    fn service(&self) -> axum::Router {
        let d = self.clone();
        axum::Router::new().fallback_service(tower::service_fn(
            move |req: axum::extract::Request| {
                let r = d.current();
                async move { tower::ServiceExt::oneshot(r, req).await }
            },
        ))
    }
}

/// This master's `MasterInfo`: a fresh id (a master's id is per run, as in Mesos) and the address
/// it advertises (as `/master/state` does).
fn master_info(addr: SocketAddr, tls: bool) -> MasterInfo {
    let adv = crate::api::mesos::advertised_addr(addr);
    let ip = match adv.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::LOCALHOST),
    };
    MasterInfo::new(
        &uuid::Uuid::new_v4().to_string(),
        &adv.ip().to_string(),
        ip,
        adv.port(),
        crate::api::mesos::MESOS_VERSION,
        tls,
    )
}

/// Starts an HA master: listens, joins the election, and returns.
pub async fn start(cfg: MasterConfig, ha: HaSettings) -> Result<HaHandle, MasterError> {
    let mut cfg = cfg;
    let bound = master::bind(&cfg).await?;
    cfg.listen = bound.addr;
    let me = master_info(bound.addr, bound.tls);
    let election = Contender {
        zk: ha.zk.clone(),
        session_timeout: ha.session_timeout,
        quorum: ha.quorum,
        me: me.clone(),
    }
    .start();
    let resigner = election.clone();
    super::on_abdicate(move || resigner.resign());
    let standby = super::standby::router_with(
        election.leader.clone(),
        me.clone(),
        super::standby::Options {
            max_body_bytes: cfg.limits.max_body_bytes,
            auth: Some(Arc::new(master::authenticator(&cfg)?)),
            ..Default::default()
        },
    );
    let dispatch = Dispatch(Arc::new(RwLock::new(standby)));
    master::serve(bound.listener, dispatch.service());
    tracing::info!(
        addr = %bound.addr,
        zk = %ha.zk,
        quorum = ha.quorum,
        session_timeout = ?ha.session_timeout,
        id = %me.id,
        "master listening as a contender"
    );
    tokio::spawn(live(cfg, ha, election.clone(), dispatch));
    Ok(HaHandle {
        addr: bound.addr,
        me,
        election,
    })
}

/// Opens the store a leader writes: the masters' shared ZooKeeper store under `<zk path>/store`,
/// which fences every earlier leader off as it opens. A write it refuses as fenced (another master
/// leads), or a change already in memory that cannot be stored, deposes this master (the gate)
/// instead of stopping the process.
async fn open_store(ha: &HaSettings, gate: &Gate) -> Result<AsyncStore, MasterError> {
    let (servers, root, timeout) = (
        ha.zk.servers.clone(),
        ha.zk.child("store"),
        ha.session_timeout,
    );
    let digest = ha.zk.digest.clone();
    let zk = tokio::task::spawn_blocking(move || {
        ZkStore::open_with_auth(&servers, &root, timeout, digest.as_deref())
    })
    .await
    .map_err(|e| StoreError::Worker(e.to_string()))??;
    tracing::info!(epoch = zk.epoch(), root = %zk.root(), "the masters' store is open");
    let g = gate.clone();
    let halt: HaltHook = Arc::new(move |e| {
        tracing::error!(error = %e, "the store refused a change already made in memory: this master stops leading");
        g.depose(&format!("the store refused a write: {e}"));
    });
    let fenced = Fencing {
        inner: zk,
        gate: gate.clone(),
    };
    Ok(AsyncStore::with_halt(Arc::new(fenced), halt))
}

/// The ZooKeeper store, deposing the master on the first write refused as fenced.
struct Fencing {
    inner: ZkStore,
    gate: Gate,
}

impl Fencing {
    fn watch<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Fenced) = &r {
            tracing::error!("the store is fenced: another master leads");
            self.gate
                .depose("another master leads now: the store refused this master's write");
        }
        r
    }
}

impl Store for Fencing {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.watch(self.inner.apply(writes))
    }
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.watch(self.inner.load())
    }
    fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.watch(self.inner.audit_log(after, limit))
    }
}

/// Waits to lead, leads, and follows the leadership until it is lost; then starts over.
async fn live(cfg: MasterConfig, ha: HaSettings, election: Election, dispatch: Dispatch) {
    let mut role = election.role.clone();
    loop {
        let now = role.borrow_and_update().clone();
        if now == Role::Leading {
            break;
        }
        if let Role::Deposed(why) = now {
            tracing::error!(reason = %why, "the election ended before this master led");
            return restart(&ha).await;
        }
        if role.changed().await.is_err() {
            return restart(&ha).await;
        }
    }
    tracing::info!("elected leader: loading the store");
    let gate = Gate::with_lease(election.lease.clone());
    let led = match open_store(&ha, &gate).await {
        Ok(store) => master::lead(cfg, store).await,
        Err(e) => Err(e),
    };
    let led = match led {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot lead: the store does not load; leaving the group");
            election.resign();
            return restart(&ha).await;
        }
    };
    let router = led.router.layer(axum::middleware::from_fn_with_state(
        gate.clone(),
        refuse_changes,
    ));
    dispatch.swap(router);
    let apps = led.core.state().await.services.apps.len();
    tracing::info!(apps, "leading: serving the API");
    let mut refusals = gate.subscribe();
    loop {
        tokio::select! {
            r = role.changed() => {
                if r.is_err() {
                    gate.depose("the election stopped");
                    break;
                }
                match role.borrow_and_update().clone() {
                    Role::Leading => gate.resume(),
                    Role::Unsure => gate.pause("disconnected"),
                    Role::Deposed(why) => {
                        gate.depose(&why);
                        break;
                    }
                    other => {
                        gate.depose(&format!("now {other:?}"));
                        break;
                    }
                }
            }
            r = refusals.changed() => {
                if r.is_err() {
                    break;
                }
                if let Some(Refusal::Deposed(why)) = refusals.borrow_and_update().clone() {
                    tracing::error!(reason = %why, "deposed: leaving the masters' group");
                    election.resign();
                    break;
                }
            }
        }
    }
    restart(&ha).await
}

/// After leadership is lost: waits until ZooKeeper answers (reads are served meanwhile), then
/// executes this program again with the same arguments and environment, so that it joins as a
/// fresh contender with nothing of the old leader's memory (as Mesos's abort and a supervisor's
/// restart would, without depending on the supervisor).
async fn restart(ha: &HaSettings) {
    if STOPPING.load(Ordering::SeqCst) {
        // Resigned because the process stops: it ends without starting again.
        return std::future::pending().await;
    }
    let mut announced = false;
    loop {
        let mut c = zookeeper_client::Client::connector()
            .with_session_timeout(ha.session_timeout)
            .with_fail_eagerly();
        if let Some(d) = &ha.zk.digest {
            c = c.with_auth("digest", d.as_bytes());
        }
        let probe = tokio::time::timeout(Duration::from_secs(5), c.connect(&ha.zk.servers)).await;
        if let Ok(Ok(client)) = probe {
            drop(client);
            break;
        }
        if !announced {
            tracing::warn!(zk = %ha.zk, "waiting for ZooKeeper to answer before contending again; reads are served from the last state");
            announced = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!("ZooKeeper answers: starting again as a contender");
    reexec();
}

/// Replaces this process with a fresh run of the same program (`/proc/self/exe`, same argv and
/// environment; the listening socket is close-on-exec, so the new run binds the port again).
fn reexec() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "gantry-masterd".into());
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .exec();
    tracing::error!(error = %err, "cannot execute the master again; exiting for the supervisor to restart it");
    eprintln!("gantry-masterd: cannot execute itself again ({err}); stopping");
    std::process::exit(70);
}
