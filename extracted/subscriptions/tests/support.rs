//! The service over generated data, requests with proxy identity headers, and a DB handle
//! to check what was committed.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fitness_data::models::SubscriptionStatus;
use http_body_util::BodyExt;
use serde_json::Value;
use service_kit::Clock;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::generated_db;
use subscriptions::store::SqliteStore;
use subscriptions::{AppState, app};
use tower::ServiceExt;

pub const NOW: i64 = 1_750_000_000;
pub const SEED: u64 = 8;
pub const USERS: u32 = 200;

/// The service and a handle on its database.
pub fn service() -> (Router, SqliteDb) {
    let db = SqliteDb::new(generated_db(SEED, USERS).unwrap());
    (
        app(AppState::new(
            SqliteStore::new(db.clone()),
            Clock::fixed(NOW),
        )),
        db,
    )
}

/// The whole database as text (`fitness_data::dump`).
pub async fn dump(db: &SqliteDb) -> String {
    db.run(|c| Ok(fitness_data::dump::dump(c)?)).await.unwrap()
}

/// The first user whose subscription is in `status`.
pub async fn user_in(db: &SqliteDb, status: SubscriptionStatus) -> i64 {
    db.run(move |c| {
        Ok(c.query_row(
            "SELECT user_id FROM subscriptions WHERE status = ?1 ORDER BY user_id LIMIT 1",
            [status.as_str()],
            |r| r.get(0),
        )?)
    })
    .await
    .unwrap()
}

/// A request as the proxy sends it: subject and roles headers (none when `subject` is None).
pub fn req(
    method: &str,
    uri: &str,
    subject: Option<&str>,
    roles: &str,
) -> axum::http::request::Builder {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(s) = subject {
        b = b
            .header("x-ficus-subject", s)
            .header("x-ficus-roles", roles);
    }
    b
}

pub async fn call(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}
