//! The worker's Prometheus metrics, in a registry of its own (two workers in one test
//! process never share counters), served at `/metrics`:
//!
//! - `ficus_jobs_processed_total{kind}`: jobs completed;
//! - `ficus_jobs_failed_total{kind}`: failed attempts (each one is retried or dead-lettered);
//! - `ficus_jobs_retried_total{kind}`: failed attempts scheduled for a retry;
//! - `ficus_jobs_dead_total{kind}`: jobs dead-lettered after their last attempt;
//! - `ficus_jobs_released_total{kind}`: leases given back at shutdown;
//! - `ficus_jobs_duration_seconds{kind}`: histogram of attempt durations;
//! - `ficus_jobs_queue_depth{kind, status}`: gauge of queued/running/dead jobs, read from the
//!   database at scrape time;
//! - `ficus_jobs_favorite_count_drift`: drifted rows found by the last `favorite-counts` run;
//! - `ficus_service_requests_total{service="jobs", method, route, status}`: admin requests.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::queue::Status;

/// The worker's metrics; cheap to clone.
#[derive(Clone)]
pub struct JobMetrics {
    registry: Registry,
    pub processed: IntCounterVec,
    pub failed: IntCounterVec,
    pub retried: IntCounterVec,
    pub dead: IntCounterVec,
    pub released: IntCounterVec,
    pub duration: HistogramVec,
    pub depth: IntGaugeVec,
    pub drift: IntGauge,
    pub requests: IntCounterVec,
}

impl JobMetrics {
    /// A fresh registry with every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["kind"]);
        let m = Self {
            processed: counter("ficus_jobs_processed_total", "Jobs completed, by kind")?,
            failed: counter("ficus_jobs_failed_total", "Failed job attempts, by kind")?,
            retried: counter(
                "ficus_jobs_retried_total",
                "Failed attempts scheduled for a retry with backoff, by kind",
            )?,
            dead: counter(
                "ficus_jobs_dead_total",
                "Jobs dead-lettered after their last attempt, by kind",
            )?,
            released: counter(
                "ficus_jobs_released_total",
                "Job leases released unfinished at shutdown, by kind",
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new("ficus_jobs_duration_seconds", "Duration of job attempts")
                    .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]),
                &["kind"],
            )?,
            depth: IntGaugeVec::new(
                Opts::new(
                    "ficus_jobs_queue_depth",
                    "Jobs queued, running or dead, by kind and status",
                ),
                &["kind", "status"],
            )?,
            drift: IntGauge::new(
                "ficus_jobs_favorite_count_drift",
                "Rows of favorite_counts found wrong by the last reconciliation",
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "ficus_service_requests_total",
                    "HTTP requests answered, by route template and status",
                )
                .const_label("service", "jobs"),
                &["method", "route", "status"],
            )?,
            registry,
        };
        for c in [
            &m.processed,
            &m.failed,
            &m.retried,
            &m.dead,
            &m.released,
            &m.requests,
        ] {
            m.registry.register(Box::new(c.clone()))?;
        }
        m.registry.register(Box::new(m.duration.clone()))?;
        m.registry.register(Box::new(m.depth.clone()))?;
        m.registry.register(Box::new(m.drift.clone()))?;
        Ok(m)
    }

    /// The text exposition, with the depth gauge set from `depth` first.
    pub fn render(&self, depth: &[(String, Status, i64)]) -> Result<String, String> {
        self.depth.reset();
        for (kind, status, n) in depth {
            self.depth
                .with_label_values(&[kind.as_str(), status.as_str()])
                .set(*n);
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(|e| format!("cannot encode metrics: {e}"))?;
        String::from_utf8(buf).map_err(|e| format!("metrics not utf-8: {e}"))
    }
}
