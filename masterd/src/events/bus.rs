//! The event bus: every event gets the next id (monotonic, never reused), is kept in a bounded
//! history ring for `Last-Event-ID` replay, and is sent to live readers over a broadcast channel.
//!
//! An event is numbered when it is published but delivered (kept and sent) only once it is
//! durable: [`EventBus::publish_with`] hands the numbered event and its delivery to the caller's
//! persistence (the store's after-commit hook), under the numbering lock so commit order is id
//! order. No reader ever sees an id that a crash could hand out again.
//! A reader subscribes before it reads the history and skips ids it already sent, so replay then
//! live has no gap and no duplicate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// How many events the history keeps (and the store keeps).
pub const HISTORY: usize = 10_000;

/// One numbered event: its id, its `eventType` and its JSON body (one line).
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    pub id: u64,
    pub event_type: String,
    pub body: String,
}

/// What delivered events share: the history ring and the live channel.
struct Delivered {
    ring: Mutex<VecDeque<Numbered>>,
    live: broadcast::Sender<Numbered>,
    cap: usize,
}

impl Delivered {
    fn ring(&self) -> MutexGuard<'_, VecDeque<Numbered>> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, ev: Numbered) {
        let mut ring = self.ring();
        ring.push_back(ev.clone());
        while ring.len() > self.cap {
            ring.pop_front();
        }
        // Sent under the ring's lock, so a reader's history and live feed meet without a gap.
        let _ = self.live.send(ev);
    }
}

/// The bus.
pub struct EventBus {
    next: Mutex<u64>,
    delivered: Arc<Delivered>,
}

/// What the history holds after an id.
pub struct Replay {
    /// The events after the id (oldest first).
    pub events: Vec<Numbered>,
    /// The asked id is older than the history: events between were dropped.
    pub truncated: bool,
}

/// Makes an event durable, then runs the delivery it is given (the store's after-commit hook).
pub type Deliver = Box<dyn FnOnce() + Send>;

impl EventBus {
    /// A bus keeping `cap` events, continuing after `restored` (events loaded from the store),
    /// whose live readers may fall `outstanding` events behind before they lag.
    pub fn new(cap: usize, outstanding: usize, restored: Vec<Numbered>) -> Self {
        let next = restored.last().map_or(1, |e| e.id + 1);
        let skip = restored.len().saturating_sub(cap);
        let ring = restored.into_iter().skip(skip).collect();
        let (live, _) = broadcast::channel(outstanding.max(1));
        Self {
            next: Mutex::new(next),
            delivered: Arc::new(Delivered {
                ring: Mutex::new(ring),
                live,
                cap,
            }),
        }
    }

    /// Numbers an event and delivers it at once (no store: tests).
    pub fn publish(&self, event_type: &str, body: String) -> u64 {
        self.publish_with(event_type, body, |_, deliver| deliver())
    }

    /// Numbers an event and hands it to `persist` with its delivery, which `persist` runs once
    /// the event is durable. Returns the id.
    pub fn publish_with(
        &self,
        event_type: &str,
        body: String,
        persist: impl FnOnce(&Numbered, Deliver),
    ) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let ev = Numbered {
            id: *next,
            event_type: event_type.to_owned(),
            body,
        };
        *next += 1;
        let delivered = self.delivered.clone();
        let id = ev.id;
        let copy = ev.clone();
        persist(&ev, Box::new(move || delivered.deliver(copy)));
        id
    }

    /// A live receiver; take it before [`EventBus::after`].
    pub fn subscribe(&self) -> broadcast::Receiver<Numbered> {
        self.delivered.live.subscribe()
    }

    /// The kept events with ids above `after`.
    pub fn after(&self, after: u64) -> Replay {
        let ring = self.delivered.ring();
        let oldest = ring.front().map(|e| e.id);
        Replay {
            events: ring.iter().filter(|e| e.id > after).cloned().collect(),
            truncated: oldest.is_some_and(|o| after + 1 < o),
        }
    }

    /// The newest delivered id (0 when none).
    pub fn last_id(&self) -> u64 {
        self.delivered.ring().back().map_or(0, |e| e.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_continue_after_a_restore() {
        let bus = EventBus::new(3, 16, vec![]);
        for i in 0..5 {
            assert_eq!(bus.publish("x", i.to_string()), i + 1);
        }
        let r = bus.after(0);
        assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(r.truncated);
        assert!(!bus.after(3).truncated);
        assert_eq!(bus.after(4).events.len(), 1);
        let again = EventBus::new(3, 16, r.events);
        assert_eq!(again.publish("x", String::new()), 6);
    }

    #[test]
    fn an_event_is_seen_only_once_delivered() {
        let bus = EventBus::new(10, 16, vec![]);
        let mut rx = bus.subscribe();
        let mut held = Vec::new();
        let id = bus.publish_with("x", "{}".into(), |ev, deliver| {
            assert_eq!(ev.id, 1);
            held.push(deliver);
        });
        assert_eq!(id, 1);
        assert!(bus.after(0).events.is_empty());
        assert!(rx.try_recv().is_err());
        if let Some(deliver) = held.pop() {
            deliver();
        }
        assert_eq!(bus.after(0).events.len(), 1);
        assert_eq!(rx.try_recv().map(|e| e.id).ok(), Some(1));
        assert_eq!(bus.last_id(), 1);
    }

    #[test]
    fn a_slow_reader_lags_instead_of_skipping_silently() {
        let bus = EventBus::new(10, 16, vec![]);
        let mut rx = bus.subscribe();
        for _ in 0..20 {
            bus.publish("x", String::new());
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
