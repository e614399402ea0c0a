//! Prometheus metrics of one service, in a registry of its own (so two apps in one test
//! process never share counters), served at `/metrics`:
//!
//! - `ficus_service_requests_total{service, method, route, status}`: counter;
//! - `ficus_service_request_duration_seconds{service, method, route, status}`: histogram.
//!
//! `route` is the matched route template (`/api/users/{id}/subscription`), never the raw path,
//! so the label set stays bounded; requests no route matches count as `route="unmatched"`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::error::ApiError;

const LABELS: &[&str] = &["method", "route", "status"];

/// The metrics of one service.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    /// A fresh registry with the request counter and latency histogram, labelled `service`.
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "ficus_service_requests_total",
                "HTTP requests answered, by route template and status",
            )
            .const_label("service", service),
            LABELS,
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "ficus_service_request_duration_seconds",
                "Time from request to response head, by route template and status",
            )
            .const_label("service", service)
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            LABELS,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, ApiError> {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(|e| ApiError::Internal(format!("cannot encode metrics: {e}")))?;
        String::from_utf8(buf).map_err(|e| ApiError::Internal(format!("metrics not utf-8: {e}")))
    }
}

/// Middleware: times every request and counts it by route template and status.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let res = next.run(req).await;
    metrics.observe(
        &method,
        &route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
