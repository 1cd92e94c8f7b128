//! The event bus: every event gets the next id (monotonic, never reused), is kept in a bounded
//! history ring for `Last-Event-ID` replay, and is sent to live readers over a broadcast channel.
//! A reader subscribes before it reads the history and skips ids it already sent, so replay then
//! live has no gap and no duplicate.

use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many events the history keeps.
pub const HISTORY: usize = 10_000;

/// One numbered event: its id, its `eventType` and its JSON body (one line).
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    pub id: u64,
    pub event_type: String,
    pub body: String,
}

struct Inner {
    next: u64,
    ring: VecDeque<Numbered>,
}

/// The bus.
pub struct EventBus {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Numbered>,
    cap: usize,
}

/// What the history holds after an id.
pub struct Replay {
    /// The events after the id (oldest first).
    pub events: Vec<Numbered>,
    /// The asked id is older than the history: events between were dropped.
    pub truncated: bool,
}

impl EventBus {
    /// A bus keeping `cap` events, continuing after `restored` (events loaded from the store).
    pub fn new(cap: usize, restored: Vec<Numbered>) -> Self {
        let next = restored.last().map_or(1, |e| e.id + 1);
        let skip = restored.len().saturating_sub(cap);
        let ring = restored.into_iter().skip(skip).collect();
        let (live, _) = broadcast::channel(1024);
        Self {
            inner: Mutex::new(Inner { next, ring }),
            live,
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers, keeps and sends an event; returns it (for the store).
    pub fn publish(&self, event_type: &str, body: String) -> Numbered {
        let mut g = self.lock();
        let ev = Numbered {
            id: g.next,
            event_type: event_type.to_owned(),
            body,
        };
        g.next += 1;
        g.ring.push_back(ev.clone());
        while g.ring.len() > self.cap {
            g.ring.pop_front();
        }
        // Sent under the lock, so live readers see ids in order.
        let _ = self.live.send(ev.clone());
        ev
    }

    /// A live receiver; take it before [`EventBus::after`].
    pub fn subscribe(&self) -> broadcast::Receiver<Numbered> {
        self.live.subscribe()
    }

    /// The kept events with ids above `after`.
    pub fn after(&self, after: u64) -> Replay {
        let g = self.lock();
        let oldest = g.ring.front().map_or(g.next, |e| e.id);
        Replay {
            events: g.ring.iter().filter(|e| e.id > after).cloned().collect(),
            truncated: after + 1 < oldest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_continue_after_a_restore() {
        let bus = EventBus::new(3, vec![]);
        for i in 0..5 {
            assert_eq!(bus.publish("x", i.to_string()).id, i + 1);
        }
        let r = bus.after(0);
        assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(r.truncated);
        assert!(!bus.after(3).truncated);
        assert_eq!(bus.after(4).events.len(), 1);
        let again = EventBus::new(3, r.events);
        assert_eq!(again.publish("x", String::new()).id, 6);
    }

    #[test]
    fn a_slow_reader_lags_instead_of_skipping_silently() {
        let bus = EventBus::new(10, vec![]);
        let mut rx = bus.subscribe();
        for _ in 0..2000 {
            bus.publish("x", String::new());
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
