//! The fitness monolith stand-in that Ficus strangles: about twenty JSON endpoints over the
//! shared SQLite database of `fitness-data`.
//!
//! **Deliberately insecure.** It reproduces the holes the real platform had (see
//! `docs/legacy.md`): endpoints without or with any authentication, trust in the user id of the
//! path (IDOR), cookie-authenticated state changes without CSRF defence, and a search page that
//! reflects its query unescaped. Never expose it beyond loopback.
//!
//! Entry points: [`app`] builds the router, [`serve`] runs it until a shutdown signal, and
//! [`start`] binds a port and runs it in the background (tests, the demo).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod error;
pub mod extract;
pub mod ranking;
pub mod routes;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{delete, get, post};

pub use error::ApiError;
pub use state::{AppState, Config};

/// The whole legacy API.
pub fn app(state: AppState) -> Router {
    use routes::{auth as a, classes as cl, content as co, health as h, users as u};
    Router::new()
        .route("/healthz", get(h::healthz))
        .route("/api/health", get(h::health))
        .route("/api/auth/login", post(a::login))
        .route("/api/auth/logout", post(a::logout))
        .route("/api/users/{id}", get(u::get_user).patch(u::patch_user))
        .route(
            "/api/users/{id}/favorites",
            get(u::list_favorites).post(u::add_favorite),
        )
        .route(
            "/api/users/{id}/favorites/{content_id}",
            delete(u::remove_favorite),
        )
        .route(
            "/api/users/{id}/preferences",
            get(u::get_preferences).put(u::put_preferences),
        )
        .route("/api/users/{id}/subscription", get(u::get_subscription))
        .route(
            "/api/users/{id}/subscription/cancel",
            post(u::cancel_subscription),
        )
        .route(
            "/api/users/{id}/workouts",
            get(u::list_workouts).post(u::add_workout),
        )
        .route("/api/content", get(co::list))
        .route("/api/content/top", get(co::top))
        .route("/api/content/search", get(co::search))
        .route("/api/content/{id}", get(co::get))
        .route("/api/classes", get(cl::list))
        .route("/api/classes/{id}/bookings", post(cl::book))
        .route("/api/instructors/{id}", get(cl::instructor))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A legacy server running in the background; stops when dropped or on [`Running::stop`].
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

/// Binds `addr` (use `127.0.0.1:0` in tests) and serves `state` in a background task.
pub async fn start(state: AppState, addr: SocketAddr) -> std::io::Result<Running> {
    start_on(state, tokio::net::TcpListener::bind(addr).await?)
}

/// Serves `state` on a listener the caller already bound (so a port chosen with `:0` is
/// never released and re-bound), in a background task. Needs a tokio runtime.
pub fn start_on_std(state: AppState, listener: std::net::TcpListener) -> std::io::Result<Running> {
    listener.set_nonblocking(true)?;
    start_on(state, tokio::net::TcpListener::from_std(listener)?)
}

fn start_on(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
