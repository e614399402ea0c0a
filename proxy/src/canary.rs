//! Canary routing: a sticky, monotonic share of cohorts goes to the extracted service.
//!
//! The cohort key is hashed with the stable function of shadow sampling, salted for the
//! canary ([`crate::shadow::policy::bucket`], [`Purpose::Canary`]): the same key lands on
//! the same side in every process and on every machine, raising `percent` only adds
//! cohorts, and the canary's cohorts are independent of a comparison sample's. `deny` beats
//! `allow` beats the hash. The override header is honoured only when the verified caller
//! (its `X-Ficus-Roles`, set by the edge after stripping the client's) has one of
//! `override_roles`; for anyone else it is ignored.

use http::{HeaderMap, HeaderName, Method};

use crate::auth::ROLES_HEADER;
use crate::config::file::CanaryFile;
use crate::shadow::policy::{Cohort, Purpose, sampled};

/// A route's checked `[routes.canary]`.
#[derive(Debug, Clone)]
pub struct CanaryPolicy {
    pub percent: f64,
    pub cohort: Cohort,
    pub fallback: bool,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub override_header: Option<HeaderName>,
    pub override_roles: Vec<String>,
}

/// Which side serves a canary request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Legacy,
    Extracted,
}

impl CanaryPolicy {
    pub fn build(route: &str, file: &CanaryFile) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if !(0.0..=100.0).contains(&file.percent) || file.percent.is_nan() {
            errors.push(format!(
                "route {route:?}: canary.percent = {} must be between 0 and 100",
                file.percent
            ));
        }
        let cohort = match file.cohort.as_deref() {
            None => Cohort::Subject,
            Some(other) => Cohort::parse(other).unwrap_or_else(|e| {
                errors.push(format!("route {route:?}: canary.{e}"));
                Cohort::ClientIp
            }),
        };
        let fallback = match file.fallback.as_deref() {
            None | Some("legacy") => true,
            Some("none") => false,
            Some(other) => {
                errors.push(format!(
                    "route {route:?}: canary.fallback = {other:?} must be \"legacy\" or \"none\""
                ));
                true
            }
        };
        let override_header = match &file.override_header {
            Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    errors.push(format!(
                        "route {route:?}: canary.override_header {h:?} is not a header name"
                    ));
                    None
                }
            },
            None => None,
        };
        if override_header.is_some() && file.override_roles.is_empty() {
            errors.push(format!(
                "route {route:?}: canary.override_header needs override_roles (who may use it)"
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CanaryPolicy {
            percent: file.percent,
            cohort,
            fallback,
            allow: file.allow.clone(),
            deny: file.deny.clone(),
            override_header,
            override_roles: file.override_roles.clone(),
        })
    }

    /// The side for a request with these headers from this client address. `forced` is the
    /// value the client sent in `override_header`, read before identity headers were
    /// stripped (the header is usually an `X-Ficus-*` one).
    pub fn side(
        &self,
        headers: &HeaderMap,
        client_ip: &[u8],
        forced: Option<&http::HeaderValue>,
    ) -> Side {
        if let Some(side) = forced.and_then(|v| self.overridden(headers, v)) {
            return side;
        }
        let key = self.cohort.key(headers, client_ip);
        if self.deny.iter().any(|d| d.as_bytes() == key) {
            return Side::Legacy;
        }
        if self.allow.iter().any(|a| a.as_bytes() == key)
            || sampled(Purpose::Canary, key, self.percent / 100.0)
        {
            return Side::Extracted;
        }
        Side::Legacy
    }
}

impl CanaryPolicy {
    /// The side forced by the override header, for callers with an override role only.
    fn overridden(&self, headers: &HeaderMap, value: &http::HeaderValue) -> Option<Side> {
        let roles = headers.get(&ROLES_HEADER)?.to_str().ok()?;
        if !roles
            .split(',')
            .any(|r| self.override_roles.iter().any(|o| o == r))
        {
            return None;
        }
        match value.as_bytes() {
            b"legacy" => Some(Side::Legacy),
            b"extracted" => Some(Side::Extracted),
            _ => None,
        }
    }
}

/// Requests that may be retried on legacy: safe methods, whose body is empty.
pub fn retryable(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(percent: f64) -> CanaryPolicy {
        let file = CanaryFile {
            percent,
            cohort: Some("header:x-user".into()),
            ..Default::default()
        };
        CanaryPolicy::build("r", &file).unwrap()
    }

    fn side(p: &CanaryPolicy, user: &str) -> Side {
        let mut h = HeaderMap::new();
        h.insert("x-user", user.parse().unwrap());
        p.side(&h, b"ip", None)
    }

    #[test]
    fn sticky_and_monotonic() {
        let steps = [0.0, 1.0, 5.0, 25.0, 50.0, 100.0];
        for i in 0..3000 {
            let user = format!("user-{i}");
            let mut was_extracted = false;
            for pct in steps {
                let p = policy(pct);
                let s = side(&p, &user);
                assert_eq!(s, side(&p, &user), "same key, same side");
                if was_extracted {
                    assert_eq!(
                        s,
                        Side::Extracted,
                        "raising the percent never moves {user} back"
                    );
                }
                was_extracted = s == Side::Extracted;
            }
            assert!(was_extracted, "100% sends everyone");
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        /// The side of an arbitrary cohort key (any header value) under `percent`.
        fn side_of(percent: f64, key: &[u8]) -> Side {
            let mut h = HeaderMap::new();
            h.insert("x-user", http::HeaderValue::from_bytes(key).unwrap());
            policy(percent).side(&h, b"ip", None)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            // Any key, any two percents: the same policy built twice (as by two proxies)
            // agrees, and the higher percent keeps every cohort the lower one sent.
            #[test]
            fn any_key_is_sticky_and_only_ever_moves_forward(
                key in prop::collection::vec(0x20u8..0x7f, 1..40),
                a in 0.0f64..=100.0,
                b in 0.0f64..=100.0,
            ) {
                let (low, high) = if a <= b { (a, b) } else { (b, a) };
                prop_assert_eq!(side_of(low, &key), side_of(low, &key));
                if side_of(low, &key) == Side::Extracted {
                    prop_assert_eq!(side_of(high, &key), Side::Extracted);
                }
                prop_assert_eq!(side_of(0.0, &key), Side::Legacy);
                prop_assert_eq!(side_of(100.0, &key), Side::Extracted);
            }
        }
    }

    #[test]
    fn split_is_accurate() {
        let p = policy(10.0);
        let n = 20_000;
        let hits = (0..n)
            .filter(|i| side(&p, &format!("u{i}")) == Side::Extracted)
            .count();
        let share = hits as f64 / n as f64;
        // sd at p=0.1, n=20000 is ~0.0021: 5 sd either side.
        assert!((share - 0.10).abs() < 0.011, "share {share}");
    }

    #[test]
    fn deny_beats_allow_beats_hash() {
        let file = CanaryFile {
            percent: 0.0,
            cohort: Some("header:x-user".into()),
            allow: vec!["vip".into(), "both".into()],
            deny: vec!["both".into()],
            ..Default::default()
        };
        let p = CanaryPolicy::build("r", &file).unwrap();
        assert_eq!(side(&p, "vip"), Side::Extracted);
        assert_eq!(side(&p, "both"), Side::Legacy);
        assert_eq!(side(&p, "anyone"), Side::Legacy);
    }

    #[test]
    fn bad_settings_are_reported() {
        let file = CanaryFile {
            percent: 120.0,
            fallback: Some("maybe".into()),
            ..Default::default()
        };
        assert_eq!(CanaryPolicy::build("r", &file).unwrap_err().len(), 2);
    }

    #[test]
    fn override_header_only_for_override_roles() {
        let file = CanaryFile {
            percent: 0.0,
            override_header: Some("x-ficus-route".into()),
            override_roles: vec!["staff".into()],
            ..Default::default()
        };
        let p = CanaryPolicy::build("r", &file).unwrap();
        let forced = http::HeaderValue::from_static("extracted");
        let mut h = HeaderMap::new();
        assert_eq!(p.side(&h, b"ip", Some(&forced)), Side::Legacy, "no roles");
        h.insert(&ROLES_HEADER, "member".parse().unwrap());
        assert_eq!(p.side(&h, b"ip", Some(&forced)), Side::Legacy, "wrong role");
        h.insert(&ROLES_HEADER, "member,staff".parse().unwrap());
        assert_eq!(p.side(&h, b"ip", Some(&forced)), Side::Extracted);
        let bogus = http::HeaderValue::from_static("somewhere");
        assert_eq!(p.side(&h, b"ip", Some(&bogus)), Side::Legacy);
        let no_roles = CanaryFile {
            override_header: Some("x-ficus-route".into()),
            ..Default::default()
        };
        assert!(CanaryPolicy::build("r", &no_roles).is_err());
    }
}
