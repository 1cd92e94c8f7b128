//! Per-principal rate limits: a token bucket for each principal (anonymous callers count per client
//! address), refilled at the principal's rate with bursts of twice that. Pure bookkeeping under a
//! short lock; the clock is passed in, so the arithmetic is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One caller's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets of every caller seen recently.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Callers idle this long are forgotten (their bucket would be full again anyway).
const FORGET_AFTER: Duration = Duration::from_secs(300);

impl RateLimiter {
    /// Takes one request from `who`'s bucket at `rate` per second; `Err(wait)` when it is empty,
    /// with how long until the next request would be allowed.
    pub fn take(&self, who: &str, rate: f64, now: Instant) -> Result<(), Duration> {
        let burst = (rate * 2.0).max(1.0);
        let mut all = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() > 10_000 {
            all.retain(|_, b| now.duration_since(b.last) < FORGET_AFTER);
        }
        let b = all.entry(who.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_the_rate() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(
                r.take("a", 10.0, t0).is_ok(),
                "request {i} of the burst of 20"
            );
        }
        let wait = r.take("a", 10.0, t0).expect_err("the bucket is empty");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(r.take("b", 10.0, t0).is_ok(), "callers are apart");
        assert!(
            r.take("a", 10.0, t0 + Duration::from_millis(100)).is_ok(),
            "refilled"
        );
        assert!(r.take("a", 10.0, t0 + Duration::from_millis(100)).is_err());
    }
}
