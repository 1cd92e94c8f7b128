//! Marathon's legacy HTTP callbacks (`/v2/eventSubscriptions`, removed from Marathon in 2017 but
//! still used by marathon-lb's callback mode): every event is POSTed as JSON to every subscribed
//! URL. One worker per URL sends in order, with a bounded queue: a subscriber too slow to keep up
//! loses events, and each loss is logged with a count, never silent. The subscriptions are
//! stored (meta keys `event_subscription:<url>`) and come back after a restart.

use super::bus::{EventBus, Numbered};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// The meta key prefix of a stored subscription.
pub const META_PREFIX: &str = "event_subscription:";

/// Events queued for one subscriber before it starts losing them.
const QUEUE: usize = 1024;

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a failed POST is tried again (with 0.5 s, 1 s between).
const RETRIES: u32 = 2;

/// The subscribed URLs and their workers' queues.
#[derive(Default)]
pub struct Callbacks {
    subscribers: Mutex<BTreeMap<String, mpsc::Sender<Numbered>>>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("urls", &self.urls())
            .finish()
    }
}

/// Is `url` something events can be POSTed to?
pub fn valid_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

impl Callbacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, mpsc::Sender<Numbered>>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subscribed URLs, sorted.
    pub fn urls(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Starts sending to `url` (again a no-op when it is subscribed). Needs a runtime.
    pub fn add(&self, url: &str) {
        let mut subs = self.lock();
        if subs.contains_key(url) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(worker(url.to_owned(), rx));
        subs.insert(url.to_owned(), tx);
    }

    /// Stops sending to `url`; whether it was subscribed.
    pub fn remove(&self, url: &str) -> bool {
        // Dropping the sender ends the worker once it has sent what it holds.
        self.lock().remove(url).is_some()
    }

    /// Hands `ev` to every subscriber's queue.
    fn fan_out(&self, ev: &Numbered) {
        for (url, tx) in self.lock().iter() {
            if tx.try_send(ev.clone()).is_err() {
                tracing::warn!(%url, event = ev.id, "event subscriber too slow: event not sent to it");
            }
        }
    }
}

/// Reads the bus and fans every event out to the subscribers, for as long as the bus lives.
pub async fn run(bus: &EventBus, callbacks: &Callbacks) {
    let mut rx = bus.subscribe();
    loop {
        match rx.recv().await {
            Ok(ev) => callbacks.fan_out(&ev),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event callbacks fell behind the bus: events not sent"
                )
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .build()
                .map_err(|e| tracing::error!(error = %e, "no HTTP client for event callbacks"))
                .ok()
        })
        .as_ref()
}

/// Sends one subscriber's events in order.
async fn worker(url: String, mut rx: mpsc::Receiver<Numbered>) {
    let Some(http) = client() else {
        return;
    };
    while let Some(ev) = rx.recv().await {
        let mut tries = 0;
        loop {
            let sent = http
                .post(&url)
                .header("content-type", "application/json")
                .body(ev.body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if r.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("answered {}", r.status()))
                    }
                });
            match sent {
                Ok(()) => break,
                Err(why) if tries < RETRIES => {
                    tries += 1;
                    tracing::debug!(%url, event = ev.id, %why, "event callback failed; again");
                    tokio::time::sleep(Duration::from_millis(500) * tries).await;
                }
                Err(why) => {
                    tracing::warn!(%url, event = ev.id, %why, "event callback failed: event not sent");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_take_events() {
        assert!(valid_url("http://127.0.0.1:8080/callback"));
        assert!(valid_url("https://lb.example/events"));
        assert!(!valid_url("ftp://x/y"));
        assert!(!valid_url("not a url"));
        assert!(!valid_url("file:///etc/passwd"));
    }
}
