//! Which master the link dials: with `--master zk://...`, the leader that the ZooKeeper detector
//! names (and a change of it ends the current connection); with a list of URLs, each in turn, a
//! standby's `307` naming the leader followed for a few hops.

use gantry_daemon::detector;
use gantry_daemon::masters::{MasterInfo, Masters};
use tokio::sync::watch;

/// At most this many redirects are followed from one master URL.
pub const MAX_REDIRECTS: usize = 3;

/// Where the masters are, as the link follows them.
pub enum LeaderSource {
    /// Tried in order from `next`.
    Urls { urls: Vec<String>, next: usize },
    /// The detector's view of the leader.
    Detected(watch::Receiver<Option<MasterInfo>>),
}

impl LeaderSource {
    /// Starts following `masters` (for `zk://`, a detector task on the current runtime).
    pub fn new(masters: &Masters) -> Self {
        match masters {
            Masters::Urls(urls) => LeaderSource::Urls {
                urls: urls.clone(),
                next: 0,
            },
            Masters::Zk(zk) => LeaderSource::Detected(detector::follow(
                zk.clone(),
                detector::DEFAULT_SESSION_TIMEOUT,
            )),
        }
    }

    /// The base URL to dial now; waits while a detector knows no leader.
    pub async fn target(&mut self) -> String {
        match self {
            LeaderSource::Urls { urls, next } => {
                let url = urls.get(*next % urls.len().max(1)).cloned();
                *next = (*next + 1) % urls.len().max(1);
                url.unwrap_or_default()
            }
            LeaderSource::Detected(rx) => {
                let mut said = false;
                loop {
                    if let Some(l) = rx.borrow_and_update().as_ref() {
                        return l.base_url();
                    }
                    if !said {
                        tracing::info!(
                            "no leading master known; tasks keep running, waiting for a leader"
                        );
                        said = true;
                    }
                    if rx.changed().await.is_err() {
                        // The detector ended (it does not, while the link lives): wait forever.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// After a successful registration with a list's URL, try that one first next time.
    pub fn stay(&mut self) {
        if let LeaderSource::Urls { urls, next } = self {
            *next = (*next + urls.len().max(1) - 1) % urls.len().max(1);
        }
    }

    /// Resolves when the detected leader is no longer `current` (never for a list: there a
    /// change shows as a failed connection).
    pub async fn changed_from(&mut self, current: &str) {
        match self {
            LeaderSource::Urls { .. } => std::future::pending().await,
            LeaderSource::Detected(rx) => loop {
                let now = rx.borrow_and_update().as_ref().map(MasterInfo::base_url);
                if now.as_deref() != Some(current) {
                    match &now {
                        Some(l) => {
                            tracing::info!(old = current, new = %l, "the leading master changed; moving the link")
                        }
                        None => tracing::warn!(
                            old = current,
                            "no leading master known; closing the link until one is"
                        ),
                    }
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            },
        }
    }

    /// Resolves when the detector has news (for a wait between attempts).
    pub async fn news(&mut self) {
        match self {
            LeaderSource::Urls { .. } => std::future::pending().await,
            LeaderSource::Detected(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// The master base URL in a redirect's `Location` (`http://h:p/agent/v1/connect`, `//h:p/...`
/// as Mesos writes it, or a bare base URL), resolved against the URL that answered: the scheme
/// and authority, whatever the path.
pub fn redirect_base(from: &str, location: &str) -> Option<String> {
    let location = location.trim();
    let scheme = from.split_once("://").map_or("http", |(s, _)| s);
    let (scheme, rest) = if let Some(rest) = location.strip_prefix("//") {
        (scheme, rest)
    } else {
        location.split_once("://")?
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    (!authority.is_empty() && !scheme.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_the_leader_base_url() {
        assert_eq!(
            redirect_base("ws://a:1", "http://b:2/agent/v1/connect").as_deref(),
            Some("http://b:2")
        );
        assert_eq!(
            redirect_base("wss://a:1", "//b:2/agent/v1/connect").as_deref(),
            Some("wss://b:2")
        );
        assert_eq!(
            redirect_base("http://a", "https://b:5050/").as_deref(),
            Some("https://b:5050")
        );
        assert_eq!(redirect_base("http://a", "/elsewhere"), None);
        assert_eq!(redirect_base("http://a", "http://"), None);
        assert_eq!(
            redirect_base("http://a", "http://b:3/master/redirect").as_deref(),
            Some("http://b:3")
        );
    }

    #[tokio::test]
    async fn a_list_is_tried_in_turn_and_stays_on_the_one_that_worked() {
        let mut s = LeaderSource::new(&Masters::Urls(vec!["http://a".into(), "http://b".into()]));
        assert_eq!(s.target().await, "http://a");
        assert_eq!(s.target().await, "http://b");
        s.stay();
        assert_eq!(s.target().await, "http://b");
        assert_eq!(s.target().await, "http://a");
    }
}
