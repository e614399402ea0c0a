//! subscriptions: subscription status tracking, extracted from the legacy monolith.
//!
//! - `GET /api/users/{id}/subscription`: same body as the legacy (`fitness_data::models::Subscription`);
//! - `POST /api/users/{id}/subscription/cancel`: trial/active/past_due -> cancelled;
//! - `POST /api/users/{id}/subscription/status` `{"status": "..."}`: any move the state
//!   machine ([`lifecycle`]) allows, for roles admin/support/jobs (e.g. the expiry sweep).
//!
//! Identity comes from the proxy's headers only (owner or admin/support, see
//! `service_kit::identity`); `X-Ficus-Shadow: dry-run` moves roll back.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod lifecycle;
pub mod openapi;
pub mod store;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use fitness_data::models::{Subscription, SubscriptionStatus};
use service_kit::health::{Readiness, ReadyFuture};
use service_kit::{ApiError, Clock, DryRun, FieldError, Identity, UserIdPath, json_body};

use crate::store::{Found, SubscriptionStore};

/// The service name in metrics, health and logs.
pub const SERVICE: &str = "subscriptions";
/// Where it listens when `LISTEN` is unset (the `subscriptions` upstream of `routes.toml`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8092";
/// Roles that may set any status.
pub const OPERATOR_ROLES: &[&str] = &["admin", "support", "jobs"];

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

impl<S: SubscriptionStore> AppState<S> {
    pub fn new(store: S, clock: Clock) -> Self {
        Self {
            store: Arc::new(store),
            clock,
        }
    }

    /// Moves user `user_id`'s subscription to `to`, mapping every outcome to a response.
    pub async fn transition(
        &self,
        user_id: i64,
        to: SubscriptionStatus,
        dry_run: DryRun,
    ) -> Result<Subscription, ApiError> {
        let found = self
            .store
            .transition(user_id, to, self.clock.now(), dry_run.is_dry_run())
            .await?;
        match found {
            Found::Refused(from) => Err(lifecycle::refused(user_id, from, to)),
            other => resolve(user_id, other),
        }
    }
}

fn resolve(user_id: i64, found: Found<Subscription>) -> Result<Subscription, ApiError> {
    match found {
        Found::Ok(s) => Ok(s),
        Found::UnknownUser => Err(ApiError::NotFound(format!("user {user_id} not found"))),
        Found::NoSubscription => Err(ApiError::NotFound(format!(
            "subscription of user {user_id} not found"
        ))),
        Found::Refused(from) => Err(ApiError::Internal(format!(
            "a read of user {user_id}'s subscription reported a refused move from {from}"
        ))),
    }
}

async fn get_subscription<S: SubscriptionStore>(
    who: Identity,
    UserIdPath(id): UserIdPath,
    State(state): State<AppState<S>>,
) -> Result<Json<Subscription>, ApiError> {
    who.authorize_owner(id)?;
    Ok(Json(resolve(id, state.store.subscription(id).await?)?))
}

async fn cancel<S: SubscriptionStore>(
    who: Identity,
    UserIdPath(id): UserIdPath,
    dry_run: DryRun,
    State(state): State<AppState<S>>,
) -> Result<Json<Subscription>, ApiError> {
    who.authorize_owner(id)?;
    Ok(Json(
        state
            .transition(id, SubscriptionStatus::Cancelled, dry_run)
            .await?,
    ))
}

/// Reads `{"status": "<state>"}`; every problem as a field error.
pub fn parse_status_body(body: &serde_json::Value) -> Result<SubscriptionStatus, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "body",
            "must be a JSON object like {\"status\": \"expired\"}",
        )]));
    };
    let mut errors: Vec<FieldError> = obj
        .keys()
        .filter(|k| k.as_str() != "status")
        .map(|k| FieldError::new(k.as_str(), format!("unknown field {k:?}")))
        .collect();
    let status = match obj.get("status") {
        None => {
            errors.push(FieldError::new("status", "is required"));
            None
        }
        Some(serde_json::Value::String(s)) => match s.parse::<SubscriptionStatus>() {
            Ok(st) => Some(st),
            Err(e) => {
                errors.push(FieldError::new("status", e.to_string()));
                None
            }
        },
        Some(other) => {
            errors.push(FieldError::new(
                "status",
                format!("must be a string, got {other}"),
            ));
            None
        }
    };
    match status {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(ApiError::Validation(errors)),
    }
}

async fn set_status<S: SubscriptionStore>(
    who: Identity,
    UserIdPath(id): UserIdPath,
    dry_run: DryRun,
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Subscription>, ApiError> {
    who.require_any_role(OPERATOR_ROLES)?;
    let to = parse_status_body(&json_body(&headers, &body)?)?;
    Ok(Json(state.transition(id, to, dry_run).await?))
}

struct Ready<S>(Arc<S>);

impl<S: SubscriptionStore> Readiness for Ready<S> {
    fn ready(&self) -> ReadyFuture {
        let store = Arc::clone(&self.0);
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    }
}

/// The whole service: the API plus the common endpoints of `service_kit::finish`.
pub fn app<S: SubscriptionStore>(state: AppState<S>) -> Router {
    let ready = Arc::new(Ready(Arc::clone(&state.store)));
    let api = Router::new()
        .route("/api/users/{id}/subscription", get(get_subscription::<S>))
        .route("/api/users/{id}/subscription/cancel", post(cancel::<S>))
        .route("/api/users/{id}/subscription/status", post(set_status::<S>))
        .with_state(state);
    service_kit::finish(api, SERVICE, openapi::document(), ready)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_body_validation() {
        assert_eq!(
            parse_status_body(&json!({"status": "expired"})).unwrap(),
            SubscriptionStatus::Expired
        );
        let ApiError::Validation(fields) =
            parse_status_body(&json!({"status": "paused", "force": true})).unwrap_err()
        else {
            panic!("expected a validation error")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, vec!["force", "status"]);
        assert!(parse_status_body(&json!([1])).is_err());
        assert!(parse_status_body(&json!({"status": 3})).is_err());
    }
}
