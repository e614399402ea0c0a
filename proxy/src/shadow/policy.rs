//! The checked shadow policy of a route, and deterministic cohort sampling.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{COOKIE, HeaderName};
use shadow_compare::{Comparator, NoiseRules, NoiseRulesFile};
use tokio::sync::Semaphore;

use crate::config::file::{ShadowFile, Writes};
use crate::metrics::{Metrics, ShadowMetrics};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
pub const DEFAULT_ROUTE_CONCURRENCY: usize = 64;
pub const DEFAULT_LEARN_SAMPLE: f64 = 0.05;

/// What identifies a user for sampling, so the same users stay in (or out of) the sample
/// across requests and across proxy instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cohort {
    /// The verified subject (`X-Ficus-Subject`), else the client address.
    Subject,
    Header(HeaderName),
    Cookie(String),
    ClientIp,
}

impl Cohort {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "client_ip" {
            return Ok(Cohort::ClientIp);
        }
        if s == "subject" {
            return Ok(Cohort::Subject);
        }
        if let Some(name) = s.strip_prefix("header:") {
            return HeaderName::from_bytes(name.as_bytes())
                .map(Cohort::Header)
                .map_err(|_| format!("cohort {s:?}: {name:?} is not a header name"));
        }
        if let Some(name) = s.strip_prefix("cookie:") {
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"=;,".contains(&b))
            {
                return Ok(Cohort::Cookie(name.to_owned()));
            }
            return Err(format!("cohort {s:?}: {name:?} is not a cookie name"));
        }
        Err(format!(
            "cohort {s:?} must be \"subject\", \"client_ip\", \"header:NAME\" or \"cookie:NAME\""
        ))
    }

    /// The cohort key of a request; falls back to the client address when the header or
    /// cookie is absent.
    pub fn key<'a>(&self, headers: &'a HeaderMap, client_ip: &'a [u8]) -> &'a [u8] {
        let found = match self {
            Cohort::ClientIp => None,
            Cohort::Subject => headers
                .get(&crate::auth::SUBJECT_HEADER)
                .map(|v| v.as_bytes()),
            Cohort::Header(name) => headers.get(name).map(|v| v.as_bytes()),
            Cohort::Cookie(name) => headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_bytes()),
        };
        found.unwrap_or(client_ip)
    }
}

/// What a cohort hash decides. Each purpose salts the hash differently, so the cohorts of
/// a 10% canary are not also the cohorts of a 10% comparison sample (with one hash, a
/// canary compare sample at or below the canary percent would only ever pick users the
/// canary sends to the extracted side, and never compare the legacy side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `[routes.canary] percent`: which cohorts the extracted side serves.
    Canary,
    /// `[routes.shadow] sample` and `[routes.verify] sample`: which cohorts are mirrored.
    Shadow,
    /// `learn_sample`: which requests legacy is asked twice (keyed by request id).
    Learn,
}

impl Purpose {
    fn salt(self) -> &'static [u8] {
        match self {
            Purpose::Canary => b"ficus/canary\0",
            Purpose::Shadow => b"ficus/shadow\0",
            Purpose::Learn => b"ficus/learn\0",
        }
    }
}

/// Maps a key to [0, 2^64) uniformly and stably for `purpose` (FNV-1a over the purpose's
/// salt and the key, then a splitmix64 finaliser so that similar keys spread over the
/// whole range). Pinned by a golden-value test: a change would move users between sides
/// and make a fleet running mixed versions disagree.
pub fn bucket(purpose: Purpose, key: &[u8]) -> u64 {
    let mut z: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.salt().iter().chain(key) {
        z ^= u64::from(*b);
        z = z.wrapping_mul(0x0100_0000_01b3);
    }
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn threshold(fraction: f64) -> u64 {
    if fraction >= 1.0 {
        u64::MAX
    } else {
        (fraction.max(0.0) * u64::MAX as f64) as u64
    }
}

/// Whether `key` falls in a sample of `fraction`; monotonic in `fraction`.
pub fn sampled(purpose: Purpose, key: &[u8], fraction: f64) -> bool {
    fraction >= 1.0 || (fraction > 0.0 && bucket(purpose, key) < threshold(fraction))
}

/// A route's checked `[routes.shadow]`.
pub struct ShadowPolicy {
    pub sample: f64,
    pub timeout: Duration,
    pub max_body: usize,
    pub writes: Writes,
    pub cohort: Cohort,
    pub learn_noise: bool,
    pub learn_sample: f64,
    pub redact: Vec<String>,
    pub comparator: Arc<Comparator>,
    pub limit: Arc<Semaphore>,
    pub metrics: ShadowMetrics,
}

impl ShadowPolicy {
    /// Validates a `[routes.shadow]` table; returns every problem as a message.
    pub fn build(route: &str, file: &ShadowFile, metrics: &Metrics) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let sample = file.sample.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample) || sample.is_nan() {
            errors.push(format!(
                "route {route:?}: shadow.sample = {sample} must be between 0 and 1"
            ));
        }
        let learn_sample = file.learn_sample.unwrap_or(DEFAULT_LEARN_SAMPLE);
        if !(0.0..=1.0).contains(&learn_sample) || learn_sample.is_nan() {
            errors.push(format!(
                "route {route:?}: shadow.learn_sample = {learn_sample} must be between 0 and 1"
            ));
        }
        if file.timeout_ms == Some(0) {
            errors.push(format!(
                "route {route:?}: shadow.timeout_ms must be at least 1"
            ));
        }
        if file.max_concurrency == Some(0) {
            errors.push(format!(
                "route {route:?}: shadow.max_concurrency must be at least 1"
            ));
        }
        let cohort = match file.cohort.as_deref().map(Cohort::parse).transpose() {
            Ok(c) => c.unwrap_or(Cohort::ClientIp),
            Err(e) => {
                errors.push(format!("route {route:?}: shadow.{e}"));
                Cohort::ClientIp
            }
        };
        for p in &file.redact {
            if let Err(e) = shadow_compare::pointer::parse(p) {
                errors.push(format!("route {route:?}: shadow.redact {p:?}: {e}"));
            }
        }
        let rules = NoiseRulesFile {
            ignore: file.ignore.clone(),
            compare_headers: file.compare_headers.clone(),
            arrays: file.arrays.clone(),
            numbers: file.numbers,
        };
        let rules = match NoiseRules::try_from(rules) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.extend(e.0.iter().map(|e| format!("route {route:?}: shadow: {e}")));
                None
            }
        };
        let Some(rules) = rules else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ShadowPolicy {
            sample,
            timeout: file
                .timeout_ms
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
            max_body: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            writes: file.writes,
            cohort,
            learn_noise: file.learn_noise,
            learn_sample,
            redact: file.redact.clone(),
            comparator: Arc::new(Comparator::new(rules)),
            limit: Arc::new(Semaphore::new(
                file.max_concurrency.unwrap_or(DEFAULT_ROUTE_CONCURRENCY),
            )),
            metrics: metrics.shadow(route),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_monotonic() {
        for i in 0..2000 {
            let key = format!("user-{i}");
            let at = |f| sampled(Purpose::Shadow, key.as_bytes(), f);
            assert_eq!(at(0.3), at(0.3), "same key, same answer");
            if at(0.1) {
                assert!(
                    at(0.25) && at(1.0),
                    "raising the fraction never removes a key"
                );
            }
            assert!(!at(0.0));
        }
    }

    #[test]
    fn sample_fraction_is_respected() {
        let n = 20_000;
        let hits = (0..n)
            .filter(|i| {
                sampled(
                    Purpose::Shadow,
                    format!("10.0.{}.{}", i / 256, i % 256).as_bytes(),
                    0.25,
                )
            })
            .count();
        let rate = hits as f64 / n as f64;
        // Binomial sd at n=20000, p=0.25 is ~0.003: 5 sd either side.
        assert!((rate - 0.25).abs() < 0.016, "rate {rate}");
    }

    /// Computed once (and checked against an independent Python FNV-1a + splitmix64).
    const GOLDEN: [u64; 4] = [
        0xe781_5a9e_1734_3668,
        0xe511_229f_8dfe_a583,
        0xb4ac_2458_e22f_7d32,
        0xf35c_e9c6_bc1a_b1c9,
    ];

    #[test]
    fn buckets_are_pinned() {
        // Golden values: these decide which users are in a canary or a sample on every
        // proxy of a fleet. If this test fails, the change moves users between sides.
        let pinned = [
            (Purpose::Canary, "user-1", GOLDEN[0]),
            (Purpose::Shadow, "user-1", GOLDEN[1]),
            (Purpose::Learn, "user-1", GOLDEN[2]),
            (Purpose::Canary, "10.0.0.7", GOLDEN[3]),
        ];
        for (purpose, key, want) in pinned {
            assert_eq!(bucket(purpose, key.as_bytes()), want, "{purpose:?} {key}");
        }
    }

    #[test]
    fn purposes_are_independent() {
        // A 50% canary and a 50% sample share about a quarter of the keys, not half.
        let n = 20_000;
        let both = (0..n)
            .filter(|i| {
                let key = format!("user-{i}");
                sampled(Purpose::Canary, key.as_bytes(), 0.5)
                    && sampled(Purpose::Shadow, key.as_bytes(), 0.5)
            })
            .count();
        let rate = both as f64 / n as f64;
        // Binomial sd at n=20000, p=0.25 is ~0.003: 5 sd either side.
        assert!((rate - 0.25).abs() < 0.016, "rate {rate}");
    }

    #[test]
    fn cohort_keys() {
        let mut h = HeaderMap::new();
        h.insert("x-user", "u-7".parse().unwrap());
        h.insert("cookie", "a=1; sid=abc; b=2".parse().unwrap());
        assert_eq!(
            Cohort::parse("header:X-User").unwrap().key(&h, b"ip"),
            b"u-7"
        );
        assert_eq!(Cohort::parse("cookie:sid").unwrap().key(&h, b"ip"), b"abc");
        assert_eq!(Cohort::parse("cookie:none").unwrap().key(&h, b"ip"), b"ip");
        assert_eq!(Cohort::parse("client_ip").unwrap().key(&h, b"ip"), b"ip");
        assert_eq!(Cohort::parse("subject").unwrap().key(&h, b"ip"), b"ip");
        h.insert(&crate::auth::SUBJECT_HEADER, "42".parse().unwrap());
        assert_eq!(Cohort::parse("subject").unwrap().key(&h, b"ip"), b"42");
        assert!(Cohort::parse("everyone").is_err());
        assert!(Cohort::parse("header:bad header").is_err());
    }
}
