//! Prometheus metrics: one registry per process, and pre-resolved handles.
//!
//! Label lookups (`with_label_values`) hash and allocate, so the data plane never does
//! them per request: [`crate::config::RouteTable`] resolves the handles of its routes and
//! upstreams once, at load time. Every metric here is documented in docs/metrics.md.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    pub reloads: IntCounterVec,
    pub config_info: IntGaugeVec,
    pub connections: IntGauge,
    shadow_requests: IntCounterVec,
    shadow_fields: IntCounterVec,
    shadow_duration: HistogramVec,
    circuit_open: IntGaugeVec,
    circuit_opened: IntCounterVec,
    canary_fallbacks: IntCounterVec,
    rejected: IntCounterVec,
    pub connections_refused: IntCounter,
    pub tls_reloads: IntCounterVec,
    pub tls_handshake_failures: IntCounter,
}

/// Shadow outcomes, in the order of [`ShadowMetrics::outcomes`].
pub const SHADOW_OUTCOMES: [&str; 6] = [
    "match", "mismatch", "error", "timeout", "skipped", "dropped",
];

/// Pre-resolved shadow metrics of one route.
#[derive(Clone)]
pub struct ShadowMetrics {
    pub route: String,
    outcomes: [IntCounter; 6],
    pub legacy_duration: Histogram,
    pub candidate_duration: Histogram,
    fields: IntCounterVec,
}

impl ShadowMetrics {
    /// Counts one shadow outcome (one of [`SHADOW_OUTCOMES`]).
    pub fn outcome(&self, outcome: &str) {
        if let Some(i) = SHADOW_OUTCOMES.iter().position(|o| *o == outcome) {
            self.outcomes[i].inc();
        }
    }

    /// Current counts of every outcome, in [`SHADOW_OUTCOMES`] order.
    pub fn outcome_counts(&self) -> [u64; 6] {
        self.outcomes.each_ref().map(IntCounter::get)
    }

    /// Counts a differing field; `pointer` must already be cardinality-bounded.
    pub fn field(&self, pointer: &str) {
        self.fields
            .with_label_values(&[self.route.as_str(), pointer])
            .inc();
    }
}

/// Request counters by status class (1xx..5xx) and the latency histogram of one
/// (route, upstream, mode) combination.
#[derive(Clone)]
pub struct RouteMetrics {
    by_class: [IntCounter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    /// Current request counts by status class, 1xx..5xx.
    pub fn counts(&self) -> [u64; 5] {
        self.by_class.each_ref().map(IntCounter::get)
    }

    /// The latency histogram's cumulative buckets.
    pub fn latency(&self) -> Buckets {
        Buckets::of(&self.duration)
    }

    pub fn record(&self, status: u16, seconds: f64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].inc();
        self.duration.observe(seconds);
    }
}

/// Cumulative histogram buckets (upper bound, count), `+Inf` last; subtractable, so a
/// window's latency distribution is `now - then`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

impl Buckets {
    pub fn of(h: &Histogram) -> Self {
        use prometheus::core::Metric;
        let m = h.metric();
        let hist = m.get_histogram();
        let mut v: Vec<(f64, u64)> = hist
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        v.push((f64::INFINITY, hist.get_sample_count()));
        Buckets(v)
    }

    /// `self - earlier`, bucket by bucket (the same histogram read twice).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .enumerate()
                .map(|(i, (ub, c))| (*ub, c.saturating_sub(earlier.0.get(i).map_or(0, |e| e.1))))
                .collect(),
        )
    }

    pub fn count(&self) -> u64 {
        self.0.last().map_or(0, |b| b.1)
    }

    /// The `q` quantile (0..1), interpolated linearly inside its bucket, as Prometheus'
    /// `histogram_quantile` does; `None` without observations. Observations beyond the
    /// last finite bound are reported at that bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut prev = (0.0, 0u64);
        for &(ub, c) in &self.0 {
            if c as f64 >= rank {
                if ub.is_infinite() {
                    return Some(prev.0);
                }
                let in_bucket = (c - prev.1) as f64;
                let frac = if in_bucket > 0.0 {
                    (rank - prev.1 as f64) / in_bucket
                } else {
                    1.0
                };
                return Some(prev.0 + (ub - prev.0) * frac.clamp(0.0, 1.0));
            }
            prev = (ub, c);
        }
        Some(prev.0)
    }
}

/// Error counters of one upstream, by kind.
#[derive(Clone, Debug)]
pub struct UpstreamMetrics {
    pub connect: IntCounter,
    pub connect_timeout: IntCounter,
    pub timeout: IntCounter,
    pub protocol: IntCounter,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails on a malformed metric definition or duplicate registration: a bug, caught by every test.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "ficus_requests_total",
                "Requests answered, by route, upstream, mode and status class.",
            ),
            &["route", "upstream", "mode", "status"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "ficus_request_duration_seconds",
                "Time from request start to response headers, by route and upstream.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "upstream"],
        ));
        let upstream_errors = must(IntCounterVec::new(
            Opts::new(
                "ficus_upstream_errors_total",
                "Failed upstream exchanges, by upstream and kind.",
            ),
            &["upstream", "kind"],
        ));
        let rejected = must(IntCounterVec::new(
            Opts::new(
                "ficus_rejected_total",
                "Requests refused at the edge (nothing sent upstream), by reason.",
            ),
            &["reason"],
        ));
        let tls_reloads = must(IntCounterVec::new(
            Opts::new(
                "ficus_tls_reloads_total",
                "Certificate reloads after the files changed, by result (ok, error).",
            ),
            &["result"],
        ));
        let tls_handshake_failures = must(IntCounter::new(
            "ficus_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
        ));
        let connections_refused = must(IntCounter::new(
            "ficus_connections_refused_total",
            "Client connections closed at accept because limits.max_connections was reached.",
        ));
        let reloads = must(IntCounterVec::new(
            Opts::new(
                "ficus_config_reloads_total",
                "Route table reload attempts, by result.",
            ),
            &["result"],
        ));
        let config_info = must(IntGaugeVec::new(
            Opts::new(
                "ficus_config_info",
                "1 for the version (hash) of the route table in force.",
            ),
            &["version"],
        ));
        let shadow_requests = must(IntCounterVec::new(
            Opts::new(
                "ficus_shadow_requests_total",
                "Shadow requests by route and outcome.",
            ),
            &["route", "outcome"],
        ));
        let shadow_fields = must(IntCounterVec::new(
            Opts::new(
                "ficus_shadow_field_mismatches_total",
                "Mismatching responses by route and differing field (JSON pointer, array indices as *).",
            ),
            &["route", "pointer"],
        ));
        let shadow_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "ficus_shadow_duration_seconds",
                "Time to response headers of mirrored requests, by route and side (legacy, candidate).",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "side"],
        ));
        let circuit_open = must(IntGaugeVec::new(
            Opts::new(
                "ficus_circuit_open",
                "1 while the canary circuit breaker of an upstream is open.",
            ),
            &["upstream"],
        ));
        let circuit_opened = must(IntCounterVec::new(
            Opts::new(
                "ficus_circuit_opened_total",
                "Times the canary circuit breaker of an upstream opened.",
            ),
            &["upstream"],
        ));
        let canary_fallbacks = must(IntCounterVec::new(
            Opts::new(
                "ficus_canary_fallbacks_total",
                "Canary requests the extracted upstream failed (reason: status_5xx, connect, connect_timeout, timeout, protocol) that legacy answered instead.",
            ),
            &["route", "upstream", "reason"],
        ));
        let connections = must(IntGauge::new(
            "ficus_client_connections",
            "Open client connections.",
        ));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(reloads.clone()),
            Box::new(config_info.clone()),
            Box::new(connections.clone()),
            Box::new(shadow_requests.clone()),
            Box::new(shadow_fields.clone()),
            Box::new(shadow_duration.clone()),
            Box::new(circuit_open.clone()),
            Box::new(circuit_opened.clone()),
            Box::new(canary_fallbacks.clone()),
            Box::new(rejected.clone()),
            Box::new(connections_refused.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(tls_handshake_failures.clone()),
        ] {
            must(registry.register(c));
        }
        for result in ["success", "failure", "unchanged"] {
            reloads.with_label_values(&[result]);
        }
        Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            reloads,
            config_info,
            connections,
            shadow_requests,
            shadow_fields,
            shadow_duration,
            circuit_open,
            circuit_opened,
            canary_fallbacks,
            rejected,
            connections_refused,
            tls_reloads,
            tls_handshake_failures,
        }
    }

    /// Counts a request refused at the edge. Rare, so the label lookup is fine here.
    pub fn rejected(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// Counts a canary request that fell back to legacy. Rare, so the label lookup is fine.
    pub fn canary_fallback(&self, route: &str, upstream: &str, reason: &str) {
        self.canary_fallbacks
            .with_label_values(&[route, upstream, reason])
            .inc();
    }

    /// The breaker gauge and counter of one upstream.
    pub fn breaker(&self, upstream: &str) -> (IntGauge, IntCounter) {
        (
            self.circuit_open.with_label_values(&[upstream]),
            self.circuit_opened.with_label_values(&[upstream]),
        )
    }

    pub fn shadow(&self, route: &str) -> ShadowMetrics {
        ShadowMetrics {
            route: route.to_owned(),
            outcomes: SHADOW_OUTCOMES.map(|o| self.shadow_requests.with_label_values(&[route, o])),
            legacy_duration: self.shadow_duration.with_label_values(&[route, "legacy"]),
            candidate_duration: self
                .shadow_duration
                .with_label_values(&[route, "candidate"]),
            fields: self.shadow_fields.clone(),
        }
    }

    pub fn route(&self, route: &str, upstream: &str, mode: &str) -> RouteMetrics {
        let by_class = ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|class| {
            self.requests
                .with_label_values(&[route, upstream, mode, class])
        });
        RouteMetrics {
            by_class,
            duration: self.duration.with_label_values(&[route, upstream]),
        }
    }

    pub fn upstream(&self, upstream: &str) -> UpstreamMetrics {
        let c = |kind: &str| self.upstream_errors.with_label_values(&[upstream, kind]);
        UpstreamMetrics {
            connect: c("connect"),
            connect_timeout: c("connect_timeout"),
            timeout: c("timeout"),
            protocol: c("protocol"),
        }
    }

    /// Marks `version` as the table in force (and no other).
    pub fn set_config_version(&self, version: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[version]).set(1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
