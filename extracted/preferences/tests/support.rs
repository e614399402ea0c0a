//! The service over generated data, requests with proxy identity headers, and a DB handle
//! to check what was committed.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use preferences::store::SqliteStore;
use preferences::{AppState, app};
use serde_json::Value;
use service_kit::Clock;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::generated_db;
use tower::ServiceExt;

pub const NOW: i64 = 1_750_000_000;
pub const SEED: u64 = 9;
pub const USERS: u32 = 250;

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

/// A user with (`true`) or without saved preferences.
pub async fn user_with(db: &SqliteDb, saved: bool) -> i64 {
    let sql = if saved {
        "SELECT MIN(user_id) FROM preferences"
    } else {
        "SELECT MIN(id) FROM users WHERE id NOT IN (SELECT user_id FROM preferences)"
    };
    db.run(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

/// A request as the proxy sends it.
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

/// A JSON PUT of `body` for `user` by `user`.
pub fn put(user: i64, body: &Value, dry: bool) -> Request<Body> {
    let mut b = req(
        "PUT",
        &format!("/api/users/{user}/preferences"),
        Some(&user.to_string()),
        "member",
    )
    .header("content-type", "application/json");
    if dry {
        b = b.header("x-ficus-shadow", "dry-run");
    }
    b.body(Body::from(body.to_string())).unwrap()
}

pub async fn call(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}
