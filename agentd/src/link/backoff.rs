//! Exponential reconnection backoff with jitter, as Mesos agents use (doubling, capped).

use rand::Rng;
use std::time::Duration;

/// Doubling delays from `initial` up to `max`, each with ±20% jitter.
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// The next delay; each call doubles the base up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter)
    }

    /// Back to the initial delay (after a successful registration).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let d: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert!((80..=120).contains(&d[0]));
        assert!((160..=240).contains(&d[1]));
        assert!((400..=600).contains(&d[4]), "capped at 500 ± 20%: {d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
