//! content-ranking: `GET /api/content/top`, extracted from the legacy monolith.
//!
//! Same response as the legacy for the same data (`fitness_data::ranking::TopResponse`, field
//! for field), computed from a precomputed [`rank::Snapshot`] instead of a full scan per
//! request. The snapshot is rebuilt at startup, every `RANKING_REFRESH_SECS` and on
//! `POST /internal/ranking/refresh`; see `docs/extracted.md` for the one deliberate
//! difference this causes (favorites made since the last refresh are not counted yet).
//!
//! Entry points: [`AppState::load`] then [`app`]; [`spawn_refresher`] keeps it fresh.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod openapi;
pub mod rank;
pub mod store;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use fitness_data::ranking::{DEFAULT_LIMIT, MAX_LIMIT, TopResponse};
use fitness_data::time::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::health::{Readiness, ReadyFuture};
use service_kit::{ApiError, Clock, DryRun, Identity};

use crate::rank::Snapshot;
use crate::store::RankingStore;

/// The service name in metrics, health and logs.
pub const SERVICE: &str = "content-ranking";
/// Where it listens when `LISTEN` is unset (the `ranking` upstream of `routes.toml`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8091";
/// Seconds between snapshot refreshes when `RANKING_REFRESH_SECS` is unset.
pub const DEFAULT_REFRESH_SECS: u64 = 30;
/// Roles allowed to trigger a refresh.
pub const REFRESH_ROLES: &[&str] = &["admin", "support", "jobs"];

/// Shared state: the store, the current snapshot and the clock; cheap to clone.
pub struct AppState<S> {
    store: Arc<S>,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    clock: Clock,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            snapshot: Arc::clone(&self.snapshot),
            clock: self.clock.clone(),
        }
    }
}

impl<S: RankingStore> AppState<S> {
    /// Loads the first snapshot from `store`.
    pub async fn load(store: S, clock: Clock) -> Result<Self, ApiError> {
        let snapshot = store.snapshot().await?;
        Ok(Self {
            store: Arc::new(store),
            snapshot: Arc::new(RwLock::new(Arc::new(snapshot))),
            clock,
        })
    }

    /// The snapshot requests are served from.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Rebuilds the snapshot from the store; swaps it in unless `dry_run`. Returns it.
    pub async fn refresh(&self, dry_run: bool) -> Result<Arc<Snapshot>, ApiError> {
        let fresh = Arc::new(self.store.snapshot().await?);
        if !dry_run {
            match self.snapshot.write() {
                Ok(mut g) => *g = Arc::clone(&fresh),
                Err(poisoned) => *poisoned.into_inner() = Arc::clone(&fresh),
            }
        }
        Ok(fresh)
    }

    /// The body of `GET /api/content/top` for these parameters.
    pub async fn top(&self, user_id: Option<i64>, limit: i64) -> Result<TopResponse, ApiError> {
        let prefs = match user_id {
            Some(id) => self
                .store
                .preferences(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?,
            None => None,
        };
        let snapshot = self.snapshot();
        let items = snapshot.top(prefs.as_ref(), usize::try_from(limit).unwrap_or(0));
        Ok(TopResponse {
            generated_at: Timestamp(self.clock.now()),
            user_id,
            personalised: prefs.is_some(),
            reference_time: Timestamp(snapshot.reference),
            limit,
            items,
        })
    }
}

/// Refreshes `state`'s snapshot every `every` until the runtime stops.
pub fn spawn_refresher<S: RankingStore>(
    state: AppState<S>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the snapshot is already fresh
        loop {
            tick.tick().await;
            let start = Instant::now();
            match state.refresh(false).await {
                Ok(s) => tracing::debug!(
                    items = s.items.len(),
                    took_ms = start.elapsed().as_millis() as u64,
                    "ranking refreshed"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "ranking refresh failed; serving the previous snapshot")
                }
            }
        }
    })
}

/// The query of `GET /api/content/top`, read as text so bad values get our own 400.
#[derive(Debug, Default, Deserialize)]
pub struct TopQuery {
    pub limit: Option<String>,
    pub user_id: Option<String>,
}

/// Checks the query: `limit` an integer in 1..=100 (default 10), `user_id` an integer.
pub fn parse_query(q: &TopQuery) -> Result<(Option<i64>, i64), ApiError> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid limit {raw:?}: must be an integer between 1 and {MAX_LIMIT}"
                ))
            })?,
    };
    let user_id = q
        .user_id
        .as_deref()
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                ApiError::BadRequest(format!("invalid user_id {raw:?}: must be an integer"))
            })
        })
        .transpose()?;
    Ok((user_id, limit))
}

async fn top<S: RankingStore>(
    State(state): State<AppState<S>>,
    query: Result<Query<TopQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TopResponse>, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let (user_id, limit) = parse_query(&q)?;
    Ok(Json(state.top(user_id, limit).await?))
}

async fn refresh<S: RankingStore>(
    State(state): State<AppState<S>>,
    who: Identity,
    dry_run: DryRun,
) -> Result<Json<Value>, ApiError> {
    who.require_any_role(REFRESH_ROLES)?;
    let start = Instant::now();
    let s = state.refresh(dry_run.is_dry_run()).await?;
    Ok(Json(json!({
        "refreshed": !dry_run.is_dry_run(),
        "items": s.items.len(),
        "took_ms": start.elapsed().as_millis() as u64,
    })))
}

struct Ready<S>(Arc<S>);

impl<S: RankingStore> Readiness for Ready<S> {
    fn ready(&self) -> ReadyFuture {
        let store = Arc::clone(&self.0);
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    }
}

/// The whole service: the API plus the common endpoints of `service_kit::finish`.
pub fn app<S: RankingStore>(state: AppState<S>) -> Router {
    let ready = Arc::new(Ready(Arc::clone(&state.store)));
    let api = Router::new()
        .route("/api/content/top", get(top::<S>))
        .route("/internal/ranking/refresh", post(refresh::<S>))
        .with_state(state);
    service_kit::finish(api, SERVICE, openapi::document(), ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<&str>, user: Option<&str>) -> TopQuery {
        TopQuery {
            limit: limit.map(str::to_owned),
            user_id: user.map(str::to_owned),
        }
    }

    #[test]
    fn query_validation() {
        assert_eq!(parse_query(&q(None, None)).unwrap(), (None, 10));
        assert_eq!(
            parse_query(&q(Some("100"), Some("7"))).unwrap(),
            (Some(7), 100)
        );
        for bad in ["0", "101", "x", ""] {
            let e = parse_query(&q(Some(bad), None)).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(parse_query(&q(None, Some("me"))).is_err());
    }
}
