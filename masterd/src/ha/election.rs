//! Leader election on ZooKeeper in Mesos's layout (mesos-internals.md §1.4): each master creates
//! an ephemeral sequential `json.info_<seq>` znode under the `--zk` path holding its `MasterInfo`
//! JSON; the lowest sequence is the leader. Every master watches the children and publishes the
//! leader's `MasterInfo` and its own [`Role`] on `watch` channels.
//!
//! A master leads only while its session is connected. The client library tells of an expired
//! session only once it reconnects, so, as Mesos does, the election enforces the session timeout
//! itself: disconnected for longer than that, the session counts as lost (the servers have expired
//! it by then, or will the moment they hear of it, and another master may lead).

use gantry_daemon::masters::{leader_child, sequence_of, MasterInfo, ZkUrl, ZNODE_PREFIX};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use zookeeper_client as zk;

/// Why the election ended when the master left the group itself.
const RESIGNED: &str = "resigned";

/// This master's place in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not (yet) in the group: connecting to ZooKeeper, or joining again after a standby's
    /// session ended.
    Joining,
    /// In the group, not the leader (or the group is smaller than `--quorum`).
    Standby,
    /// Its znode is the lowest and the group has `--quorum` masters.
    Leading,
    /// Leading, but disconnected from ZooKeeper for less than the session timeout: it may still
    /// lead, or may not; it changes nothing until it knows.
    Unsure,
    /// It led and no longer does (session expired or disconnected past its timeout, its znode
    /// gone): why. Terminal: the election has ended.
    Deposed(String),
}

/// When this master last heard from ZooKeeper that its session and znode stand: a leader accepts
/// changes only while that is recent (two thirds of the session timeout), so that one that was
/// stopped (SIGSTOP, a paused VM) refuses them the moment it runs again, before its client has
/// even noticed that the session expired meanwhile.
pub struct Lease {
    base: std::time::Instant,
    /// Milliseconds after `base` of the last confirmation; 0: none yet.
    last_ok: AtomicU64,
    /// How old a confirmation may be.
    pub max_age: Duration,
}

impl Lease {
    fn new(session_timeout: Duration) -> Self {
        Lease {
            base: std::time::Instant::now(),
            last_ok: AtomicU64::new(0),
            max_age: session_timeout * 2 / 3,
        }
    }

    fn renew(&self) {
        let ms = self.base.elapsed().as_millis().max(1);
        self.last_ok
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Whether the last confirmation is recent enough.
    pub fn valid(&self) -> bool {
        let last = self.last_ok.load(Ordering::SeqCst);
        last > 0
            && self
                .base
                .elapsed()
                .saturating_sub(Duration::from_millis(last))
                < self.max_age
    }
}

/// What the election publishes.
#[derive(Clone)]
pub struct Election {
    /// The current leader's `MasterInfo` (`None` while no leader is known).
    pub leader: watch::Receiver<Option<MasterInfo>>,
    /// This master's role.
    pub role: watch::Receiver<Role>,
    /// How fresh our standing in ZooKeeper is.
    pub lease: Arc<Lease>,
    resign: Arc<Notify>,
}

impl Election {
    /// Leaves the group at once (deletes our znode): a leader whose store refused it calls this so
    /// that the next master takes over now rather than after our session times out.
    pub fn resign(&self) {
        self.resign.notify_one();
    }
}

/// The election's settings.
#[derive(Clone, Debug)]
pub struct Contender {
    pub zk: ZkUrl,
    pub session_timeout: Duration,
    /// Masters in the group before one leads.
    pub quorum: usize,
    /// What this master writes into its znode.
    pub me: MasterInfo,
}

/// Why one session's part in the election ended.
enum Ended {
    /// The session is gone (expired, closed, disconnected past its timeout) or our znode is.
    Lost(String),
}

impl Contender {
    /// Starts contending on the current runtime.
    pub fn start(self) -> Election {
        let (leader_tx, leader) = watch::channel(None);
        let (role_tx, role) = watch::channel(Role::Joining);
        let resign = Arc::new(Notify::new());
        let lease = Arc::new(Lease::new(self.session_timeout));
        tokio::spawn(self.run(leader_tx, role_tx, resign.clone(), lease.clone()));
        Election {
            leader,
            role,
            lease,
            resign,
        }
    }

    async fn run(
        self,
        leader: watch::Sender<Option<MasterInfo>>,
        role: watch::Sender<Role>,
        resign: Arc<Notify>,
        lease: Arc<Lease>,
    ) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let client = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(zk = %self.zk, error = %e, "cannot reach ZooKeeper; retrying");
                    leader.send_replace(None);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let Ended::Lost(why) = self.contend(&client, &leader, &role, &resign, &lease).await;
            leader.send_replace(None);
            if matches!(*role.borrow(), Role::Leading | Role::Unsure) || why == RESIGNED {
                tracing::error!(reason = %why, "leadership lost");
                role.send_replace(Role::Deposed(why));
                return;
            }
            tracing::warn!(reason = %why, "ZooKeeper session lost while standing by; joining again");
            role.send_replace(Role::Joining);
        }
    }

    async fn connect(&self) -> Result<zk::Client, zk::Error> {
        let mut c = zk::Client::connector().with_session_timeout(self.session_timeout);
        if let Some(d) = &self.zk.digest {
            c = c.with_auth("digest", d.as_bytes());
        }
        // The client tries every server until the session timeout; bound it here too.
        match tokio::time::timeout(
            self.session_timeout + Duration::from_secs(1),
            c.connect(&self.zk.servers),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(zk::Error::Timeout),
        }
    }

    /// Joins the group with one session and follows it until the session or our znode is lost.
    async fn contend(
        &self,
        client: &zk::Client,
        leader: &watch::Sender<Option<MasterInfo>>,
        role: &watch::Sender<Role>,
        resign: &Notify,
        lease: &Lease,
    ) -> Ended {
        let mut state = client.state_watcher();
        let data = match serde_json::to_vec(&self.me) {
            Ok(d) => d,
            Err(e) => return Ended::Lost(format!("cannot encode MasterInfo: {e}")),
        };
        // Create the path, then our node; retried while the connection comes and goes.
        let name = loop {
            match self.join(client, &data).await {
                Ok(name) => break name,
                Err(e) => {
                    if let Some(end) = self.after_error(&e, &mut state, role).await {
                        return end;
                    }
                }
            }
        };
        tracing::info!(znode = %self.zk.child(&name), "joined the masters' group");
        loop {
            let (children, watcher) = match client.list_and_watch_children(&self.zk.path).await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(end) = self.after_error(&e, &mut state, role).await {
                        return end;
                    }
                    continue;
                }
            };
            if !children.contains(&name) {
                return Ended::Lost(format!("our znode {name} is gone"));
            }
            lease.renew();
            let members = children.iter().filter(|c| sequence_of(c).is_some()).count();
            let lowest = leader_child(children.iter().map(String::as_str)).map(str::to_owned);
            let quorate = members >= self.quorum;
            let info = match lowest.as_deref() {
                _ if !quorate => None,
                Some(l) if l == name => Some(self.me.clone()),
                Some(l) => self.read_info(client, l).await,
                None => None,
            };
            let now = if quorate && lowest.as_deref() == Some(name.as_str()) {
                Role::Leading
            } else {
                Role::Standby
            };
            if *role.borrow() == Role::Leading && now != Role::Leading {
                // Once a leader, always the lowest until its znode goes; anything else is a bug
                // of the ensemble or the quorum shrank: either way, stop leading.
                return Ended::Lost(format!(
                    "no longer the leader: {members} masters in the group, lowest {lowest:?}"
                ));
            }
            if !quorate {
                tracing::info!(
                    members,
                    quorum = self.quorum,
                    "waiting for a quorum of masters"
                );
            }
            leader.send_if_modified(|l| {
                let changed = *l != info;
                if changed {
                    *l = info.clone();
                }
                changed
            });
            if *role.borrow() != now {
                tracing::info!(role = ?now, leader = ?info.as_ref().map(MasterInfo::host_port), "election");
                role.send_replace(now);
            }
            let mut watcher = std::pin::pin!(watcher.changed());
            let mine = self.zk.child(&name);
            // Between events, confirm our znode every third of the session timeout (the lease).
            let lost = loop {
                tokio::select! {
                    _ = &mut watcher => break None,
                    _ = tokio::time::sleep(self.session_timeout / 3) => {
                        match client.check_stat(&mine).await {
                            Ok(Some(_)) => lease.renew(),
                            Ok(None) => break Some(Ended::Lost(format!("our znode {name} is gone"))),
                            Err(e) => {
                                if let Some(end) = self.after_error(&e, &mut state, role).await {
                                    break Some(end);
                                }
                            }
                        }
                    }
                    _ = resign.notified() => {
                        let gone = tokio::time::timeout(Duration::from_secs(2), client.delete(&mine, None)).await;
                        tracing::info!(znode = %mine, deleted = matches!(gone, Ok(Ok(()))), "resigned from the masters' group");
                        break Some(Ended::Lost(RESIGNED.into()));
                    }
                    s = state.changed() => {
                        if let Some(end) = self.on_state(s, &mut state, role).await {
                            break Some(end);
                        }
                        // Reconnected: list the children again.
                        break None;
                    }
                }
            };
            if let Some(end) = lost {
                return end;
            }
        }
    }
    /// Creates the path (persistent, `mkdir -p`) and our ephemeral sequential node; its name.
    async fn join(&self, client: &zk::Client, data: &[u8]) -> Result<String, zk::Error> {
        let acls = zk::Acls::anyone_all();
        if self.zk.path != "/" {
            client
                .mkdir(&self.zk.path, &zk::CreateMode::Persistent.with_acls(acls))
                .await?;
        }
        let prefix = self.zk.child(ZNODE_PREFIX);
        let (_, seq) = client
            .create(
                &prefix,
                data,
                &zk::CreateMode::EphemeralSequential.with_acls(acls),
            )
            .await?;
        Ok(format!("{ZNODE_PREFIX}{seq}"))
    }

    /// The `MasterInfo` in the leader's znode (`None` when it went meanwhile or does not parse).
    async fn read_info(&self, client: &zk::Client, child: &str) -> Option<MasterInfo> {
        let path = self.zk.child(child);
        match client.get_data(&path).await {
            Ok((data, _)) => match serde_json::from_slice(&data) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(znode = %path, error = %e, "the leader's znode holds no MasterInfo");
                    None
                }
            },
            Err(e) => {
                tracing::debug!(znode = %path, error = %e, "cannot read the leader's znode");
                None
            }
        }
    }

    /// After a failed operation: lost, or retry (once reconnected).
    async fn after_error(
        &self,
        e: &zk::Error,
        state: &mut zk::StateWatcher,
        role: &watch::Sender<Role>,
    ) -> Option<Ended> {
        match e {
            zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed => {
                return Some(Ended::Lost(format!("ZooKeeper: {e}")));
            }
            _ => {}
        }
        let s = state.peek_state();
        if s == zk::SessionState::Disconnected {
            return self.on_state(s, state, role).await;
        }
        tracing::warn!(error = %e, "a ZooKeeper operation failed; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
        None
    }

    /// A change of the session's state: terminal ends it; a disconnection waits (at most the
    /// session timeout) for the connection to come back.
    async fn on_state(
        &self,
        s: zk::SessionState,
        state: &mut zk::StateWatcher,
        role: &watch::Sender<Role>,
    ) -> Option<Ended> {
        match s {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => None,
            zk::SessionState::Disconnected => {
                let was = role.borrow().clone();
                if was == Role::Leading {
                    tracing::warn!(
                        "disconnected from ZooKeeper while leading: no changes until it is back"
                    );
                    role.send_replace(Role::Unsure);
                }
                let back = tokio::time::timeout(self.session_timeout, async {
                    loop {
                        match state.changed().await {
                            zk::SessionState::SyncConnected => return Ok(()),
                            zk::SessionState::Disconnected => continue,
                            other => return Err(format!("ZooKeeper session {other:?}")),
                        }
                    }
                })
                .await;
                match back {
                    Ok(Ok(())) => {
                        if was == Role::Leading {
                            tracing::info!("reconnected to ZooKeeper within the session timeout");
                            role.send_replace(Role::Leading);
                        }
                        None
                    }
                    Ok(Err(why)) => Some(Ended::Lost(why)),
                    Err(_) => Some(Ended::Lost(format!(
                        "disconnected from ZooKeeper for longer than the session timeout ({:?})",
                        self.session_timeout
                    ))),
                }
            }
            other => Some(Ended::Lost(format!("ZooKeeper session {other:?}"))),
        }
    }
}
