//! The autopilot's gates: a pure function from one window of counts to a verdict.
//!
//! A window is what happened since the route's current step began. It advances when it
//! has lasted `interval`, has `min_requests` on each side, and every gate holds. It is
//! breached as soon as a gate can no longer hold: more mismatches (or 5xx) than the
//! allowed rate permits even if every remaining request of a `min_requests` window were
//! perfect, or — once there are enough requests to measure it — a p99 ratio over the
//! limit. No I/O, no clock: the caller passes the elapsed time.

use std::time::Duration;

use serde::Serialize;

use crate::config::file::AutopilotFile;
use crate::metrics::Buckets;

/// A route's checked `[routes.autopilot]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub steps: Vec<f64>,
    pub min_requests: u64,
    pub max_mismatch_rate: f64,
    pub max_error_rate: f64,
    pub max_p99_ratio: f64,
    pub interval: Duration,
    /// Roll back to the last step that held instead of legacy.
    pub to_previous: bool,
}

impl Policy {
    pub fn build(route: &str, file: &AutopilotFile) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let steps = file
            .steps
            .clone()
            .unwrap_or_else(|| vec![1.0, 5.0, 25.0, 50.0, 100.0]);
        if steps.is_empty() {
            errors.push(format!("route {route:?}: autopilot.steps is empty"));
        }
        if steps.iter().any(|p| !(*p > 0.0 && *p <= 100.0)) {
            errors.push(format!(
                "route {route:?}: autopilot.steps must be canary percents in (0, 100]"
            ));
        }
        if steps.windows(2).any(|w| w[0] >= w[1]) {
            errors.push(format!(
                "route {route:?}: autopilot.steps must increase, e.g. [1, 5, 25, 50, 100]"
            ));
        }
        let rate = |key: &str, v: Option<f64>, default: f64, errors: &mut Vec<String>| {
            let v = v.unwrap_or(default);
            if !(0.0..=1.0).contains(&v) {
                errors.push(format!(
                    "route {route:?}: autopilot.{key} = {v} must be between 0 and 1"
                ));
            }
            v
        };
        let max_mismatch_rate = rate(
            "max_mismatch_rate",
            file.max_mismatch_rate,
            0.001,
            &mut errors,
        );
        let max_error_rate = rate("max_error_rate", file.max_error_rate, 0.005, &mut errors);
        let max_p99_ratio = file.max_p99_ratio.unwrap_or(1.2);
        if !(max_p99_ratio.is_finite() && max_p99_ratio > 0.0) {
            errors.push(format!(
                "route {route:?}: autopilot.max_p99_ratio must be a positive number"
            ));
        }
        let interval = file.interval_seconds.unwrap_or(60);
        if interval == 0 {
            errors.push(format!(
                "route {route:?}: autopilot.interval_seconds must be at least 1"
            ));
        }
        let to_previous = match file.on_breach.as_deref() {
            None | Some("legacy") => false,
            Some("previous") => true,
            Some(other) => {
                errors.push(format!(
                    "route {route:?}: autopilot.on_breach = {other:?} must be \"legacy\" or \"previous\""
                ));
                false
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            steps,
            min_requests: file.min_requests.unwrap_or(500),
            max_mismatch_rate,
            max_error_rate,
            max_p99_ratio,
            interval: Duration::from_secs(interval),
            to_previous,
        })
    }
}

/// What happened in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    /// Responses compared (match + mismatch).
    pub compared: u64,
    pub mismatches: u64,
    /// Requests that reached the extracted side (shadow copies in shadow mode).
    pub extracted: u64,
    /// Of those, failures: 5xx answers (canary), or errors and timeouts (shadow copies).
    pub extracted_errors: u64,
    /// Requests answered by legacy.
    pub legacy: u64,
    /// The circuit breaker of the extracted upstream is open now (canary): its traffic has
    /// stopped, so the window would never fill.
    pub circuit_open: bool,
    #[serde(skip)]
    pub extracted_latency: Buckets,
    #[serde(skip)]
    pub legacy_latency: Buckets,
}

impl Window {
    pub fn p99_ratio(&self) -> Option<f64> {
        let e = self.extracted_latency.quantile(0.99)?;
        let l = self.legacy_latency.quantile(0.99)?;
        (l > 0.0).then_some(e / l)
    }
}

/// The autopilot's verdict on a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Every gate holds over a full window: go to the next step.
    Advance,
    /// Not decided yet; the reason names the next gate to pass.
    Wait(String),
    /// A gate is breached: roll back, for this reason.
    Breach(String),
}

/// Judges `w` after `elapsed` of the step under `p`.
pub fn judge(p: &Policy, w: &Window, elapsed: Duration) -> Verdict {
    let floor = |n: u64| n.max(p.min_requests) as f64;
    if w.circuit_open {
        return Verdict::Breach(
            "the circuit breaker of the extracted upstream is open (consecutive failures)".into(),
        );
    }
    if w.mismatches as f64 > p.max_mismatch_rate * floor(w.compared) {
        return Verdict::Breach(format!(
            "mismatch rate {:.4} over {} compared responses exceeds max_mismatch_rate {}",
            ratio(w.mismatches, w.compared),
            w.compared,
            p.max_mismatch_rate
        ));
    }
    if w.extracted_errors as f64 > p.max_error_rate * floor(w.extracted) {
        return Verdict::Breach(format!(
            "error rate {:.4} over {} extracted requests exceeds max_error_rate {}",
            ratio(w.extracted_errors, w.extracted),
            w.extracted,
            p.max_error_rate
        ));
    }
    let enough =
        w.compared >= p.min_requests && w.extracted >= p.min_requests && w.legacy >= p.min_requests;
    if enough {
        if let Some(r) = w.p99_ratio() {
            if r > p.max_p99_ratio {
                return Verdict::Breach(format!(
                    "p99 ratio {r:.2} (extracted over legacy) exceeds max_p99_ratio {}",
                    p.max_p99_ratio
                ));
            }
        }
    }
    if !enough {
        let (side, have) = [
            ("compared responses", w.compared),
            ("extracted requests", w.extracted),
            ("legacy requests", w.legacy),
        ]
        .into_iter()
        .min_by_key(|(_, n)| *n)
        .unwrap_or(("requests", 0));
        return Verdict::Wait(format!("{have} of {} {side}", p.min_requests));
    }
    if elapsed < p.interval {
        return Verdict::Wait(format!(
            "window {}s of {}s",
            elapsed.as_secs(),
            p.interval.as_secs()
        ));
    }
    Verdict::Advance
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::build(
            "r",
            &AutopilotFile {
                steps: None,
                min_requests: Some(100),
                max_mismatch_rate: Some(0.01),
                max_error_rate: Some(0.05),
                max_p99_ratio: Some(1.5),
                interval_seconds: Some(60),
                on_breach: None,
            },
        )
        .expect("policy")
    }

    fn lat(ms: f64, n: u64) -> Buckets {
        // One bucket boundary at `ms`, all observations in it.
        Buckets(vec![(ms / 1000.0, n), (f64::INFINITY, n)])
    }

    fn healthy(n: u64) -> Window {
        Window {
            compared: n,
            mismatches: 0,
            extracted: n,
            extracted_errors: 0,
            legacy: n,
            circuit_open: false,
            extracted_latency: lat(10.0, n),
            legacy_latency: lat(10.0, n),
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn advances_only_after_a_full_window_with_enough_requests() {
        let p = policy();
        assert_eq!(judge(&p, &healthy(100), MIN), Verdict::Advance);
        assert!(
            matches!(judge(&p, &healthy(99), MIN), Verdict::Wait(r) if r.contains("99 of 100"))
        );
        assert!(
            matches!(judge(&p, &healthy(500), Duration::from_secs(10)), Verdict::Wait(r) if r.contains("10s of 60s"))
        );
    }

    #[test]
    fn breaches_as_soon_as_the_window_cannot_pass() {
        let p = policy();
        let mut w = healthy(10);
        w.mismatches = 2; // 2 > 0.01 * max(10, 100): this window cannot pass any more
        assert!(
            matches!(judge(&p, &w, Duration::ZERO), Verdict::Breach(r) if r.contains("mismatch"))
        );
        let mut w = healthy(1000);
        w.mismatches = 9; // under 1%
        assert_eq!(judge(&p, &w, MIN), Verdict::Advance);
        let mut w = healthy(50);
        w.extracted_errors = 6; // 6 > 0.05 * 100
        assert!(
            matches!(judge(&p, &w, Duration::ZERO), Verdict::Breach(r) if r.contains("error rate"))
        );
        let mut w = healthy(100);
        w.extracted_latency = lat(20.0, 100);
        assert!(matches!(judge(&p, &w, MIN), Verdict::Breach(r) if r.contains("p99")));
        // An open breaker stops the extracted side's traffic: the window would never fill.
        let mut w = healthy(3);
        w.circuit_open = true;
        assert!(
            matches!(judge(&p, &w, Duration::ZERO), Verdict::Breach(r) if r.contains("circuit breaker"))
        );
        let mut w = healthy(50);
        w.extracted_latency = lat(20.0, 50);
        assert!(
            matches!(judge(&p, &w, MIN), Verdict::Wait(_)),
            "too few to judge latency"
        );
    }

    #[test]
    fn bad_settings_are_reported() {
        let bad = AutopilotFile {
            steps: Some(vec![5.0, 1.0, 150.0]),
            min_requests: None,
            max_mismatch_rate: Some(2.0),
            max_error_rate: None,
            max_p99_ratio: Some(0.0),
            interval_seconds: Some(0),
            on_breach: Some("sideways".into()),
        };
        assert_eq!(Policy::build("r", &bad).err().map(|e| e.len()), Some(6));
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let b = Buckets(vec![(0.01, 50), (0.02, 100), (f64::INFINITY, 100)]);
        assert_eq!(b.quantile(0.5), Some(0.01));
        let p99 = b.quantile(0.99).expect("p99");
        assert!((p99 - 0.0198).abs() < 1e-9, "{p99}");
        assert_eq!(Buckets::default().quantile(0.99), None);
    }
}
