//! Liveness and readiness. `/healthz` answers 200 while the process serves; `/readyz` asks the
//! service's [`Readiness`] (typically: can the store answer a trivial query) and answers 503
//! with the reason when it cannot, so an orchestrator or the proxy stops sending traffic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A boxed readiness probe result.
pub type ReadyFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Whether the service can serve right now.
pub trait Readiness: Send + Sync + 'static {
    /// `Err(reason)` when not ready.
    fn ready(&self) -> ReadyFuture;
}

/// Always ready (tests, services without dependencies).
pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn ready(&self) -> ReadyFuture {
        Box::pin(async { Ok(()) })
    }
}

/// `GET /healthz`.
pub async fn healthz(service: &'static str) -> Response {
    Json(json!({"status": "ok", "service": service})).into_response()
}

/// `GET /readyz`.
pub async fn readyz(service: &'static str, probe: Arc<dyn Readiness>) -> Response {
    match probe.ready().await {
        Ok(()) => Json(json!({"status": "ready", "service": service})).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "service": service, "reason": reason})),
            )
                .into_response()
        }
    }
}
