//! The leader detector for `zk://` masters, as agents and schedulers run it (Mesos's
//! `ZooKeeperMasterDetector`): a ZooKeeper session, the children of the masters' path, the lowest
//! `json.info_<seq>` ([`leader_child`]) and its `MasterInfo` JSON. [`follow`] keeps watching (a
//! children watch, re-read on every change, so a new leader is seen within a round trip) and
//! reconnects by itself; [`read_leader`] reads once (the CLI).
//!
//! While ZooKeeper is unreachable the last leader is kept for one session timeout (the client
//! may reach another server of the ensemble within it, keeping its session); after that, and
//! whenever the session is lost, the detector reports no leader until it reads one again.

use crate::masters::{leader_child, MasterInfo, ZkUrl};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

/// Mesos's `--zk_session_timeout` default.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure to read the leader from ZooKeeper.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot reach ZooKeeper at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: zk::Error,
    },
    #[error("reading {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: zk::Error,
    },
    #[error("no answer from ZooKeeper at {0} in time")]
    Timeout(String),
}

/// Opens a session with the ensemble of `url` (with its digest credentials, if any).
async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<zk::Client, zk::Error> {
    let mut c = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout((session_timeout / 4).max(Duration::from_millis(500)));
    if let Some(d) = &url.digest {
        c = c.with_auth("digest", d.as_bytes());
    }
    c.connect(&url.servers).await
}

/// The leader now, and a watch that fires on the next change of the masters' path (its
/// children, or its creation while it does not exist).
async fn current_leader(
    client: &zk::Client,
    url: &ZkUrl,
) -> Result<(Option<MasterInfo>, zk::OneshotWatcher), zk::Error> {
    loop {
        let (children, _, watcher) = match client.get_and_watch_children(&url.path).await {
            Ok(v) => v,
            Err(zk::Error::NoNode) => {
                let (stat, watcher) = client.check_and_watch_stat(&url.path).await?;
                if stat.is_some() {
                    continue; // created meanwhile
                }
                return Ok((None, watcher));
            }
            Err(e) => return Err(e),
        };
        let Some(child) = leader_child(children.iter().map(String::as_str)) else {
            return Ok((None, watcher));
        };
        match client.get_data(&url.child(child)).await {
            Ok((data, _)) => match serde_json::from_slice::<MasterInfo>(&data) {
                Ok(info) => return Ok((Some(info), watcher)),
                Err(e) => {
                    tracing::warn!(znode = %url.child(child), error = %e, "the leading master's znode is not MasterInfo JSON; no leader");
                    return Ok((None, watcher));
                }
            },
            // The leader's node went away between the two reads: read again.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the leader once: `Ok(None)` when no master is leading.
pub async fn read_leader(
    url: &ZkUrl,
    timeout: Duration,
) -> Result<Option<MasterInfo>, DetectError> {
    let work = async {
        let client = connect(url, timeout)
            .await
            .map_err(|source| DetectError::Connect {
                url: url.to_string(),
                source,
            })?;
        current_leader(&client, url)
            .await
            .map(|(leader, _)| leader)
            .map_err(|source| DetectError::Read {
                url: url.to_string(),
                source,
            })
    };
    tokio::time::timeout(timeout + Duration::from_secs(1), work)
        .await
        .map_err(|_| DetectError::Timeout(url.to_string()))?
}

/// Follows the leader of `url` on a task of its own, for as long as the receiver lives. The
/// value is `None` while no leader is known.
pub fn follow(url: ZkUrl, session_timeout: Duration) -> watch::Receiver<Option<MasterInfo>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(url, session_timeout, tx));
    rx
}

/// Publishes `leader` if it differs from what was said last; logs the change.
fn publish(tx: &watch::Sender<Option<MasterInfo>>, url: &ZkUrl, leader: Option<MasterInfo>) {
    tx.send_if_modified(|cur| {
        if *cur == leader {
            return false;
        }
        match &leader {
            Some(l) => {
                tracing::info!(zk = %url, leader = %l.base_url(), id = %l.id, "detected a new leading master")
            }
            None => tracing::warn!(zk = %url, "no leading master known"),
        }
        *cur = leader;
        true
    });
}

async fn run(url: ZkUrl, session_timeout: Duration, tx: watch::Sender<Option<MasterInfo>>) {
    let mut backoff = Duration::from_millis(200);
    while !tx.is_closed() {
        let client = match connect(&url, session_timeout).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(zk = %url, error = %e, "cannot reach ZooKeeper; retrying");
                publish(&tx, &url, None);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        tracing::info!(zk = %url, "connected to ZooKeeper");
        serve_session(&client, &url, session_timeout, &tx).await;
        // The session is over (expired or closed): whoever led may be gone.
        publish(&tx, &url, None);
    }
}

/// Follows the leader within one session; returns when the session ends (or nobody listens).
async fn serve_session(
    client: &zk::Client,
    url: &ZkUrl,
    session_timeout: Duration,
    tx: &watch::Sender<Option<MasterInfo>>,
) {
    let mut states = client.state_watcher();
    // Since when the client has been without a server, while it is.
    let mut lost_at: Option<Instant> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let watcher = match current_leader(client, url).await {
            Ok((leader, watcher)) => {
                publish(tx, url, leader);
                Some(watcher)
            }
            Err(e) => {
                if client.state().is_terminated() {
                    return;
                }
                tracing::debug!(zk = %url, error = %e, "reading the leader failed; again shortly");
                None
            }
        };
        let changed = async {
            match watcher {
                Some(w) => Some(w.changed().await),
                None => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    None
                }
            }
        };
        tokio::pin!(changed);
        loop {
            let give_up_at = lost_at.map(|t| t + session_timeout);
            tokio::select! {
                ev = &mut changed => {
                    if ev.is_some_and(|e| e.session_state.is_terminated()) {
                        return;
                    }
                    break;
                }
                s = states.changed() => match s {
                    zk::SessionState::Disconnected => {
                        tracing::warn!(zk = %url, "lost ZooKeeper; keeping the last leader for one session timeout");
                        lost_at.get_or_insert_with(Instant::now);
                    }
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                        lost_at = None;
                        break;
                    }
                    _ => return,
                },
                _ = sleep_until(give_up_at), if give_up_at.is_some() => {
                    publish(tx, url, None);
                    lost_at = None;
                }
                _ = tx.closed() => return,
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_ensemble_is_an_error_and_following_it_reports_no_leader() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = ZkUrl::parse(&format!("zk://127.0.0.1:{port}/gantry")).expect("parses");
        let e = read_leader(&url, Duration::from_millis(600))
            .await
            .expect_err("nothing listens there");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        let rx = follow(url, Duration::from_millis(600));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(*rx.borrow(), None);
    }
}
