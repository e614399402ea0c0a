//! A per-upstream circuit breaker for canary routes: after `failures` consecutive
//! failures the extracted side is skipped (its requests go to legacy, when the route has a
//! fallback) for `cooldown`; then it is half-open: one request is let through as a probe
//! (the others still skip it), and its result decides: a success closes the breaker, a
//! failure opens it for another cool-down. A probe whose result never comes (a cancelled
//! request) holds the breaker open for one more cool-down, then the next request probes.
//!
//! Shared by every worker thread (atomics, no lock). A reload builds new upstreams and so
//! starts with closed breakers.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open (0: closed).
    open_until_ms: AtomicU64,
    open_gauge: IntGauge,
    opened: IntCounter,
}

impl Breaker {
    pub fn new(
        threshold: u32,
        cooldown: Duration,
        open_gauge: IntGauge,
        opened: IntCounter,
    ) -> Self {
        open_gauge.set(0);
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            open_gauge,
            opened,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether requests should skip this upstream now.
    pub fn is_open(&self) -> bool {
        self.is_open_at(self.now_ms())
    }

    fn is_open_at(&self, now_ms: u64) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        let open = until != 0 && now_ms < until;
        if !open && until != 0 {
            // Cool-down over: half-open; the next results decide.
            self.open_gauge.set(0);
        }
        open
    }

    /// Whether this request may go to the upstream: always while closed, never while open;
    /// when half-open, only the one request that claims the probe. A caller that is
    /// admitted must report [`Breaker::success`] or [`Breaker::failure`].
    pub fn admit(&self) -> bool {
        self.admit_at(self.now_ms())
    }

    fn admit_at(&self, now_ms: u64) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if now_ms < until {
            return false;
        }
        // Half-open: the request that moves the deadline on is the probe; the others see
        // the breaker open until its result.
        let claimed = self
            .open_until_ms
            .compare_exchange(
                until,
                now_ms + self.cooldown.as_millis() as u64 + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok();
        if claimed {
            self.open_gauge.set(1);
        }
        claimed
    }

    pub fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            self.open_until_ms.store(0, Ordering::Relaxed);
            self.open_gauge.set(0);
        }
    }

    pub fn failure(&self) {
        self.failure_at(self.now_ms());
    }

    fn failure_at(&self, now_ms: u64) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let half_open = self.open_until_ms.load(Ordering::Relaxed) != 0;
        if n >= self.threshold || half_open {
            self.failures.store(0, Ordering::Relaxed);
            self.open_until_ms.store(
                now_ms + self.cooldown.as_millis() as u64 + 1,
                Ordering::Relaxed,
            );
            self.open_gauge.set(1);
            self.opened.inc();
            tracing::warn!(target: "ficus::breaker", cooldown = ?self.cooldown, "circuit opened");
        }
    }

    pub fn state(&self) -> &'static str {
        self.state_at(self.now_ms())
    }

    fn state_at(&self, now_ms: u64) -> &'static str {
        if self.is_open_at(now_ms) {
            "open"
        } else if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            "half_open"
        } else {
            "closed"
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn breaker(cooldown_ms: u64) -> Breaker {
        let gauge = IntGauge::new("g", "g").unwrap();
        Breaker::new(
            3,
            Duration::from_millis(cooldown_ms),
            gauge,
            IntCounter::new("c", "c").unwrap(),
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_closes_on_success() {
        let b = breaker(60_000);
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert_eq!(b.state(), "closed", "failures must be consecutive");
        b.failure();
        assert_eq!(b.state(), "open");
        assert!(b.is_open());
    }

    #[test]
    fn half_open_after_cooldown_then_one_result_decides() {
        let b = breaker(1_000);
        for _ in 0..3 {
            b.failure_at(5_000);
        }
        assert_eq!(b.state_at(5_500), "open");
        assert_eq!(
            b.state_at(6_001),
            "half_open",
            "cool-down over: requests go through again"
        );
        b.failure_at(6_001);
        assert_eq!(
            b.state_at(6_500),
            "open",
            "one failure while half-open re-opens"
        );
        assert_eq!(b.state_at(7_002), "half_open");
        b.success();
        assert_eq!(b.state_at(7_002), "closed");
    }

    #[test]
    fn half_open_admits_one_probe_at_a_time() {
        let b = breaker(1_000);
        assert!(b.admit_at(0), "closed: everyone goes through");
        for _ in 0..3 {
            b.failure_at(5_000);
        }
        assert!(!b.admit_at(5_500), "open: nobody");
        assert!(b.admit_at(6_001), "half-open: the first request probes");
        assert!(!b.admit_at(6_001), "the others wait for its result");
        assert!(!b.admit_at(6_900));
        // The probe never reported: after another cool-down the next request probes.
        assert!(b.admit_at(7_002));
        b.success();
        assert!(b.admit_at(7_003), "closed again");
        assert!(b.admit_at(7_003));
    }
}
