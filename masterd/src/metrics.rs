//! Process-wide figures for `/metrics` that the cluster state does not hold: how long the store
//! takes to apply a batch of writes (a histogram) and the HTTP answers by status class. Lock-free
//! atomics, recorded where the work happens and read by the Prometheus renderer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the store latency histogram's buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS_SECS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative latency histogram with fixed buckets ([`LATENCY_BUCKETS_SECS`]).
#[derive(Debug)]
pub struct LatencyHistogram {
    /// Observations at or below each bound (not cumulative; summed when read).
    buckets: [AtomicU64; LATENCY_BUCKETS_SECS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram as read: cumulative bucket counts, total count, sum in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)`, cumulative, in bound order.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_secs: f64,
}

impl LatencyHistogram {
    pub const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS_SECS.len()],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS_SECS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut acc = 0;
        let buckets = LATENCY_BUCKETS_SECS
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| {
                acc += n.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// HTTP answers counted by status class (1xx..5xx).
#[derive(Debug)]
pub struct HttpAnswers {
    by_class: [AtomicU64; 5],
}

impl HttpAnswers {
    pub const fn new() -> Self {
        Self {
            by_class: [const { AtomicU64::new(0) }; 5],
        }
    }

    /// Counts one answer with `status`.
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100);
        if (1..=5).contains(&class) {
            self.by_class[class - 1].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `("1xx", n) .. ("5xx", n)`.
    pub fn snapshot(&self) -> [(&'static str, u64); 5] {
        let names = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        std::array::from_fn(|i| (names[i], self.by_class[i].load(Ordering::Relaxed)))
    }
}

impl Default for HttpAnswers {
    fn default() -> Self {
        Self::new()
    }
}

/// The store's apply latency in this process (every `AsyncStore::apply` of a non-empty batch).
pub static STORE_APPLY: LatencyHistogram = LatencyHistogram::new();

/// The API's answers in this process.
pub static HTTP_ANSWERS: HttpAnswers = HttpAnswers::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_adds_up() {
        let h = LatencyHistogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.0005, 1));
        assert_eq!(s.buckets[3], (0.005, 2));
        assert_eq!(
            s.buckets.last().map(|b| b.1),
            Some(2),
            "10 s is only in +Inf"
        );
        assert!((s.sum_secs - 10.0033).abs() < 1e-9, "{}", s.sum_secs);
    }

    #[test]
    fn answers_are_counted_by_class() {
        let a = HttpAnswers::new();
        a.record(200);
        a.record(201);
        a.record(401);
        a.record(99);
        a.record(600);
        let s = a.snapshot();
        assert_eq!(s[1], ("2xx", 2));
        assert_eq!(s[3], ("4xx", 1));
        assert_eq!(s.iter().map(|c| c.1).sum::<u64>(), 3);
    }
}
