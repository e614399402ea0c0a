//! The PostgreSQL store against a real server (`scripts/postgres-test.sh`); `#[ignore]`d so a
//! plain `cargo test` needs none. Each test loads its own schema and drops it afterwards.

use axum::body::Body;
use axum::http::StatusCode;
use preferences::store::PgStore;
use preferences::{AppState, app};
use serde_json::json;
use service_kit::Clock;
use service_kit::pg::PgPool;
use service_kit::testing::{drop_schema, pg_schema, postgres_url};

use crate::support::{NOW, SEED, USERS, call, put, req, service, user_with};

#[tokio::test]
#[ignore = "needs DATABASE_URL=postgres://...; run scripts/postgres-test.sh"]
async fn postgres_store_matches_sqlite_and_dry_run_commits_nothing() {
    let url = postgres_url().expect("DATABASE_URL=postgres://... must be set");
    let schema = pg_schema(&url, "prefs", SEED, USERS).await.unwrap();
    let pool = PgPool::connect(&url, Some(&schema), 2).await.unwrap();
    let pg = app(AppState::new(PgStore::new(pool), Clock::fixed(NOW)));
    let (sq, db) = service();
    let get = |u: i64| {
        req(
            "GET",
            &format!("/api/users/{u}/preferences"),
            Some("1"),
            "admin",
        )
        .body(Body::empty())
        .unwrap()
    };
    for u in 1..=40 {
        assert_eq!(call(&pg, get(u)).await, call(&sq, get(u)).await, "user {u}");
    }
    assert_eq!(call(&pg, get(99_999)).await.0, StatusCode::NOT_FOUND);
    let user = user_with(&db, true).await;
    let body = json!({"categories": ["pilates", "yoga"], "intensity": "high", "max_duration_minutes": 20, "email_opt_in": false});
    let before = call(&pg, get(user)).await;
    let dry = call(&pg, put(user, &body, true)).await;
    assert_eq!(call(&pg, get(user)).await, before, "dry run committed");
    let real = call(&pg, put(user, &body, false)).await;
    assert_eq!((dry.0, &dry.1), (StatusCode::OK, &real.1));
    assert_eq!(real, call(&sq, put(user, &body, false)).await);
    assert_eq!(call(&pg, get(user)).await.1, real.1);
    drop_schema(&url, &schema).await.unwrap();
}
