//! preferences: `GET|PUT /api/users/{id}/preferences`, extracted from the legacy monolith.
//!
//! Same GET body as the legacy (`fitness_data::models::Preferences`); PUT validates the whole
//! body ([`validate`]) and answers 422 with every field error. Identity from the proxy's
//! headers only (owner or admin/support); `X-Ficus-Shadow: dry-run` PUTs roll back.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod openapi;
pub mod store;
pub mod validate;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use fitness_data::models::Preferences;
use service_kit::health::{Readiness, ReadyFuture};
use service_kit::{ApiError, Clock, DryRun, Identity, UserIdPath, json_body};

use crate::store::PreferencesStore;

/// The service name in metrics, health and logs.
pub const SERVICE: &str = "preferences";
/// Where it listens when `LISTEN` is unset (the `preferences` upstream of `routes.toml`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8093";

/// Shared state: the store and the clock; cheap to clone.
pub struct AppState<S> {
    store: Arc<S>,
    clock: Clock,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            clock: self.clock.clone(),
        }
    }
}

impl<S: PreferencesStore> AppState<S> {
    pub fn new(store: S, clock: Clock) -> Self {
        Self {
            store: Arc::new(store),
            clock,
        }
    }
}

fn unknown_user(id: i64) -> ApiError {
    ApiError::NotFound(format!("user {id} not found"))
}

async fn get_preferences<S: PreferencesStore>(
    who: Identity,
    UserIdPath(id): UserIdPath,
    State(state): State<AppState<S>>,
) -> Result<Json<Preferences>, ApiError> {
    who.authorize_owner(id)?;
    state
        .store
        .preferences(id)
        .await?
        .ok_or_else(|| unknown_user(id))?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("preferences of user {id} not found")))
}

async fn put_preferences<S: PreferencesStore>(
    who: Identity,
    UserIdPath(id): UserIdPath,
    dry_run: DryRun,
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Preferences>, ApiError> {
    who.authorize_owner(id)?;
    let body = json_body(&headers, &body)?;
    let prefs = validate::preferences(id, &body, state.clock.now())?;
    let stored = state
        .store
        .put(prefs, dry_run.is_dry_run())
        .await?
        .ok_or_else(|| unknown_user(id))?;
    Ok(Json(stored))
}

struct Ready<S>(Arc<S>);

impl<S: PreferencesStore> Readiness for Ready<S> {
    fn ready(&self) -> ReadyFuture {
        let store = Arc::clone(&self.0);
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    }
}

/// The whole service: the API plus the common endpoints of `service_kit::finish`.
pub fn app<S: PreferencesStore>(state: AppState<S>) -> Router {
    let ready = Arc::new(Ready(Arc::clone(&state.store)));
    let api = Router::new()
        .route(
            "/api/users/{id}/preferences",
            get(get_preferences::<S>).put(put_preferences::<S>),
        )
        .with_state(state);
    service_kit::finish(api, SERVICE, openapi::document(), ready)
}
