//! Request limits: sizes, timeouts, connection count and rate limits (`[limits]`).
//!
//! Head size and header count are enforced by hyper's parser (431), the URI length and
//! declared body size by the request path before anything is forwarded (414, 413), the
//! streamed body size and the idle time between body frames by
//! [`crate::server::body::ClientBody`] (413, 408). Rate limits are token buckets from the
//! `governor` crate, keyed by client address and by authenticated subject (429 with
//! `Retry-After`). Buckets live in the route table: a reload starts them afresh.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use crate::config::file::{LimitsFile, RateFile};

pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
pub const DEFAULT_MAX_HEADERS: usize = 100;
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

/// A keyed token bucket that forgets idle keys now and then.
pub struct Rate<K: std::hash::Hash + Eq + Clone> {
    limiter: Keyed<K>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Rate<K> {
    fn new(quota: Quota) -> Self {
        Rate {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// `Err(wait)` when `key` is over its rate.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        // Bound memory: drop the state of keys whose bucket is full again.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The checked `[limits]` table.
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
    pub max_body: Option<u64>,
    pub header_read_timeout: Duration,
    /// Bounds an idle keep-alive connection (`guard::idle_watch`).
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub per_client: Option<Rate<IpAddr>>,
    pub per_subject: Option<Rate<String>>,
}

fn quota(name: &str, r: &RateFile, errors: &mut Vec<String>) -> Option<Quota> {
    if !(r.requests_per_second.is_finite() && r.requests_per_second > 0.0) {
        errors.push(format!(
            "limits.{name}.requests_per_second must be a positive number"
        ));
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / r.requests_per_second);
    let burst = r
        .burst
        .unwrap_or_else(|| r.requests_per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
    let Some(burst) = NonZeroU32::new(burst) else {
        errors.push(format!("limits.{name}.burst must be at least 1"));
        return None;
    };
    Quota::with_period(period)
        .map(|q| q.allow_burst(burst))
        .or_else(|| {
            errors.push(format!("limits.{name}.requests_per_second is too large"));
            None
        })
}

impl Limits {
    pub fn build(file: &LimitsFile) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        let max_header_bytes = file.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
        if max_header_bytes < 1024 {
            errors.push("limits.max_header_bytes must be at least 1024".into());
        }
        let max_headers = file.max_headers.unwrap_or(DEFAULT_MAX_HEADERS);
        if max_headers == 0 {
            errors.push("limits.max_headers must be at least 1".into());
        }
        let max_uri_bytes = file.max_uri_bytes.unwrap_or(DEFAULT_MAX_URI_BYTES);
        if max_uri_bytes < 16 {
            errors.push("limits.max_uri_bytes must be at least 16".into());
        }
        for (key, v) in [
            ("header_read_timeout_ms", file.header_read_timeout_ms),
            ("body_read_timeout_ms", file.body_read_timeout_ms),
            ("idle_timeout_ms", file.idle_timeout_ms),
        ] {
            if v == Some(0) {
                errors.push(format!("limits.{key} must be at least 1"));
            }
        }
        if let (Some(idle), Some(head)) = (file.idle_timeout_ms, file.header_read_timeout_ms) {
            if idle < head {
                errors.push(format!(
                    "limits.idle_timeout_ms ({idle}) must be at least limits.header_read_timeout_ms ({head}): a slow head would be closed before it could be answered 408"
                ));
            }
        }
        if file.max_connections == Some(0) {
            errors.push("limits.max_connections must be at least 1".into());
        }
        let per_client = file
            .per_client
            .as_ref()
            .and_then(|r| quota("per_client", r, &mut errors))
            .map(Rate::new);
        let per_subject = file
            .per_subject
            .as_ref()
            .and_then(|r| quota("per_subject", r, &mut errors))
            .map(Rate::new);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Limits {
            max_header_bytes,
            max_headers,
            max_uri_bytes,
            max_body: file.max_body_bytes,
            header_read_timeout: ms(file.header_read_timeout_ms, DEFAULT_HEADER_READ_TIMEOUT),
            idle_timeout: ms(file.idle_timeout_ms, DEFAULT_IDLE_TIMEOUT)
                .max(ms(file.header_read_timeout_ms, DEFAULT_HEADER_READ_TIMEOUT)),
            body_read_timeout: ms(file.body_read_timeout_ms, DEFAULT_BODY_READ_TIMEOUT),
            max_connections: file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            per_client,
            per_subject,
        })
    }
}

/// `Retry-After` seconds for a wait (at least 1).
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let mut errors = Vec::new();
        let q = quota(
            "per_client",
            &RateFile {
                requests_per_second: 1.0,
                burst: Some(3),
            },
            &mut errors,
        )
        .expect("quota");
        let rate = Rate::new(q);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(rate.check(&ip).is_ok());
        }
        let wait = rate.check(&ip).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1));
        assert!(
            rate.check(&[127, 0, 0, 2].into()).is_ok(),
            "keys are separate"
        );
    }

    #[test]
    fn bad_values_are_reported() {
        let file = LimitsFile {
            max_headers: Some(0),
            per_subject: Some(RateFile {
                requests_per_second: -1.0,
                burst: None,
            }),
            ..Default::default()
        };
        let errors = Limits::build(&file).err().expect("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(10)), 1);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::ZERO), 1);
    }
}
