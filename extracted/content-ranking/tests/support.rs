//! Building the service and the legacy over identical generated data, and calling routers.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use content_ranking::store::SqliteStore;
use content_ranking::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use service_kit::Clock;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::generated_db;
use tower::ServiceExt;

/// The fixed wall clock of tests.
pub const NOW: i64 = 1_750_000_000;

pub async fn state(seed: u64, users: u32) -> AppState<SqliteStore> {
    let db = SqliteDb::new(generated_db(seed, users).unwrap());
    AppState::load(SqliteStore::new(db), Clock::fixed(NOW))
        .await
        .unwrap()
}

pub async fn service(seed: u64, users: u32) -> Router {
    app(state(seed, users).await)
}

pub fn legacy(seed: u64, users: u32) -> Router {
    fitness_legacy::app(fitness_legacy::AppState::new(
        generated_db(seed, users).unwrap(),
        fitness_legacy::Config::default(),
    ))
}

/// Sends `req` to `router`; status and body (JSON, or a string for non-JSON bodies).
pub async fn call(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

pub async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    call(router, Request::get(uri).body(Body::empty()).unwrap()).await
}
