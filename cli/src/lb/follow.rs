//! The master follower: fetches `/v2/apps?embed=apps.tasks` from whichever of the masters
//! answers, again shortly (debounced) after each relevant event of the master's `/v2/events`
//! stream, and every poll interval while the stream is unavailable (a master without it answers
//! 404); the stream reconnects with backoff. With `zk://` masters the master is the leader that
//! ZooKeeper names (a detector follows it), and the stream moves when the leader does.

use super::sse::{SseReader, RELEVANT};
use crate::client::Auth;
use gantry_daemon::detector;
use gantry_daemon::masters::{MasterInfo, ZkUrl};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The masters and how to call them.
pub struct Masters {
    urls: Vec<String>,
    http: reqwest::Client,
    auth: Auth,
    /// The index of the master that answered last: asked first next time.
    current: AtomicUsize,
    /// With `zk://`: the leader as ZooKeeper names it (then `urls` is empty).
    detected: Option<watch::Receiver<Option<MasterInfo>>>,
}

/// How often and how fast the follower refetches.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Between fetches while the event stream is down.
    pub poll: Duration,
    /// From an event to the fetch it triggers (events that come meanwhile share the fetch).
    pub debounce: Duration,
    /// Between fetches while the event stream is up (a safety net; events do the work).
    pub resync: Duration,
}

impl Masters {
    pub fn new(urls: Vec<String>, http: reqwest::Client, auth: Auth) -> Self {
        Masters {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            http,
            auth,
            current: AtomicUsize::new(0),
            detected: None,
        }
    }

    /// The leader of `zk`, followed by a detector on the current runtime.
    pub fn with_zk(zk: ZkUrl, http: reqwest::Client, auth: Auth) -> Self {
        Masters {
            urls: Vec::new(),
            http,
            auth,
            current: AtomicUsize::new(0),
            detected: Some(detector::follow(zk, detector::DEFAULT_SESSION_TIMEOUT)),
        }
    }

    /// Resolves when ZooKeeper names another leader (never for a list of masters).
    async fn leader_changed(&self) {
        match &self.detected {
            Some(rx) => {
                let mut rx = rx.clone();
                rx.borrow_and_update();
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    fn get(&self, url: String) -> reqwest::RequestBuilder {
        let r = self.http.get(url);
        match &self.auth {
            Auth::None => r,
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }

    /// The URL of the master that answered last (with `zk://`: the leader, or "" while none
    /// is known).
    pub fn current(&self) -> String {
        if let Some(rx) = &self.detected {
            return rx
                .borrow()
                .as_ref()
                .map(MasterInfo::base_url)
                .unwrap_or_default();
        }
        let i = self.current.load(Ordering::Relaxed) % self.urls.len().max(1);
        self.urls.get(i).cloned().unwrap_or_default()
    }

    /// `GET /v2/apps?embed=apps.tasks` from the last master that answered, else from the others
    /// in turn; the error says what each said.
    pub async fn fetch_apps(&self) -> Result<Value, String> {
        if let Some(rx) = &self.detected {
            // A detector just started has not read ZooKeeper yet: give it a moment.
            let mut rx = rx.clone();
            let leader =
                tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_some))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .and_then(|l| l.as_ref().map(MasterInfo::base_url));
            let Some(url) = leader else {
                return Err("ZooKeeper names no leading master".into());
            };
            return self
                .fetch_one(&format!("{url}/v2/apps?embed=apps.tasks"))
                .await
                .map_err(|e| format!("{url}: {e}"));
        }
        let n = self.urls.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let url = format!("{}/v2/apps?embed=apps.tasks", self.urls[i]);
            match self.fetch_one(&url).await {
                Ok(v) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => errors.push(format!("{}: {e}", self.urls[i])),
            }
        }
        Err(errors.join("; "))
    }

    async fn fetch_one(&self, url: &str) -> Result<Value, String> {
        let r = self
            .get(url.to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !r.status().is_success() {
            return Err(format!("HTTP {}", r.status()));
        }
        let v: Value = r.json().await.map_err(|e| e.without_url().to_string())?;
        if !v["apps"].is_array() {
            return Err("the answer has no \"apps\" list".into());
        }
        Ok(v)
    }
}

/// Fetches on events and timers; see the module doc.
pub struct Follower {
    masters: Arc<Masters>,
    timing: Timing,
    changed: Arc<Notify>,
    stream_up: Arc<AtomicBool>,
    events: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts following; the event stream is read by a task of its own.
    pub fn start(masters: Masters, timing: Timing) -> Self {
        let masters = Arc::new(masters);
        let changed = Arc::new(Notify::new());
        let stream_up = Arc::new(AtomicBool::new(false));
        let events = tokio::spawn(read_events(
            masters.clone(),
            changed.clone(),
            stream_up.clone(),
        ));
        Follower {
            masters,
            timing,
            changed,
            stream_up,
            events,
        }
    }

    /// True while the master's event stream is being read.
    pub fn event_driven(&self) -> bool {
        self.stream_up.load(Ordering::Relaxed)
    }

    /// The master that answered last.
    pub fn master(&self) -> String {
        self.masters.current()
    }

    /// Waits for a reason to look (an event, then the debounce; or the timer), then fetches.
    pub async fn next(&self) -> Result<Value, String> {
        let wait = if self.event_driven() {
            self.timing.resync
        } else {
            self.timing.poll
        };
        tokio::select! {
            _ = self.changed.notified() => tokio::time::sleep(self.timing.debounce).await,
            _ = tokio::time::sleep(wait) => {}
        }
        self.masters.fetch_apps().await
    }

    /// The first fetch, at once.
    pub async fn now(&self) -> Result<Value, String> {
        self.masters.fetch_apps().await
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// Reads `/v2/events` of the current master for as long as it streams, notifying `changed` on
/// each relevant event (and on each new connection: events may have been missed); reconnects
/// with backoff (0.1 s doubling to 5 s; 30 s after a 404, a master without the stream).
async fn read_events(masters: Arc<Masters>, changed: Arc<Notify>, up: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(100);
    let query: String = RELEVANT
        .iter()
        .map(|t| format!("&event_type={t}"))
        .collect();
    loop {
        let master = masters.current();
        let url = format!("{master}/v2/events?plan-format=light{query}");
        let r = masters
            .get(url)
            .header("accept", "text/event-stream")
            .header("cache-control", "no-cache")
            .send()
            .await;
        match r {
            Ok(mut r) if r.status().is_success() => {
                tracing::info!(%master, "following the event stream");
                up.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                changed.notify_one();
                let mut reader = SseReader::default();
                loop {
                    if masters.detected.is_some() && masters.current() != master {
                        break; // the leader changed while the last chunk was read
                    }
                    // Masters send keep-alives; 60 s of silence is a dead connection.
                    let bytes = tokio::select! {
                        c = tokio::time::timeout(Duration::from_secs(60), r.chunk()) => match c {
                            Ok(Ok(Some(bytes))) => bytes,
                            _ => break,
                        },
                        _ = masters.leader_changed() => {
                            tracing::info!("the leading master changed; moving the event stream");
                            break;
                        }
                    };
                    if reader
                        .push(&bytes)
                        .iter()
                        .any(|t| RELEVANT.contains(&t.as_str()))
                    {
                        changed.notify_one();
                    }
                }
                up.store(false, Ordering::Relaxed);
                tracing::warn!("the event stream ended; polling until it is back");
            }
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                tracing::debug!("the master has no event stream (404); polling");
                tokio::time::sleep(Duration::from_secs(30)).await;
                continue;
            }
            Ok(r) => tracing::debug!(status = %r.status(), "the event stream was refused"),
            Err(e) => tracing::debug!(error = %e.without_url(), "no event stream"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
