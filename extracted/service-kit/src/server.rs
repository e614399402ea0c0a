//! Running a service: [`finish`] wraps a service's API router with the common endpoints and
//! the metrics layer; [`serve`] runs it until a shutdown future completes and drains open
//! requests; [`start`] binds (use `127.0.0.1:0` in tests) and serves in the background.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::get;

use crate::error::ApiError;
use crate::health::{self, Readiness};
use crate::metrics::{self, Metrics};

/// The API router plus `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, JSON 404/405, and
/// request metrics under the `service` label.
pub fn finish(
    api: Router,
    service: &'static str,
    openapi: serde_json::Value,
    readiness: Arc<dyn Readiness>,
) -> Router {
    let metrics = match Metrics::new(service) {
        Ok(m) => Some(m),
        Err(e) => {
            // Only possible with a programming error in the metric definitions.
            tracing::error!(error = %e, "metrics disabled: cannot register them");
            None
        }
    };
    let openapi = Arc::new(openapi);
    let mut router = api
        .route("/healthz", get(move || health::healthz(service)))
        .route(
            "/readyz",
            get(move || health::readyz(service, Arc::clone(&readiness))),
        )
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&openapi);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if let Some(m) = metrics {
        router = router
            .route("/metrics", get(metrics::handler).with_state(m.clone()))
            .layer(axum::middleware::from_fn_with_state(m, metrics::track));
    }
    router
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

/// Serves `router` on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received, draining");
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A server running in the background; stops when dropped or on [`Running::stop`].
pub struct Running {
    /// Where it listens (the real port when bound to port 0).
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains open requests and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` and serves `router` in a background task.
pub async fn start(router: Router, addr: SocketAddr) -> std::io::Result<Running> {
    start_on(router, tokio::net::TcpListener::bind(addr).await?)
}

/// Serves `router` on a listener the caller already bound (so a port chosen with `:0` is
/// never released and re-bound), in a background task. Needs a tokio runtime.
pub fn start_on_std(router: Router, listener: std::net::TcpListener) -> std::io::Result<Running> {
    listener.set_nonblocking(true)?;
    start_on(router, tokio::net::TcpListener::from_std(listener)?)
}

fn start_on(router: Router, listener: tokio::net::TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
