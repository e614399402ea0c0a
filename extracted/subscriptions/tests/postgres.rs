//! The PostgreSQL store against a real server (`scripts/postgres-test.sh`); `#[ignore]`d so a
//! plain `cargo test` needs none. Each test loads its own schema and drops it afterwards.

use axum::body::Body;
use axum::http::StatusCode;
use fitness_data::models::SubscriptionStatus;
use service_kit::Clock;
use service_kit::pg::PgPool;
use service_kit::testing::{drop_schema, pg_schema, postgres_url};
use subscriptions::store::PgStore;
use subscriptions::{AppState, app};

use crate::support::{NOW, SEED, USERS, call, dump, req, service, user_in};

#[tokio::test]
#[ignore = "needs DATABASE_URL=postgres://...; run scripts/postgres-test.sh"]
async fn postgres_store_matches_sqlite_and_dry_run_commits_nothing() {
    let url = postgres_url().expect("DATABASE_URL=postgres://... must be set");
    let schema = pg_schema(&url, "subs", SEED, USERS).await.unwrap();
    let pool = PgPool::connect(&url, Some(&schema), 2).await.unwrap();
    let pg = app(AppState::new(PgStore::new(pool), Clock::fixed(NOW)));
    let (sq, db) = service();
    let get = |u: i64| {
        req(
            "GET",
            &format!("/api/users/{u}/subscription"),
            Some("1"),
            "admin",
        )
        .body(Body::empty())
        .unwrap()
    };
    for u in [1, 2, 50, 199, 99_999] {
        assert_eq!(call(&pg, get(u)).await, call(&sq, get(u)).await, "user {u}");
    }
    let user = user_in(&db, SubscriptionStatus::Active).await;
    let cancel = |dry: bool| {
        let mut b = req(
            "POST",
            &format!("/api/users/{user}/subscription/cancel"),
            Some(&user.to_string()),
            "",
        );
        if dry {
            b = b.header("x-ficus-shadow", "dry-run");
        }
        b.body(Body::empty()).unwrap()
    };
    let before = call(&pg, get(user)).await;
    let dry = call(&pg, cancel(true)).await;
    assert_eq!(call(&pg, get(user)).await, before, "dry run committed");
    let real = call(&pg, cancel(false)).await;
    assert_eq!(dry, real);
    assert_eq!(real.0, StatusCode::OK);
    assert_eq!(
        real,
        call(&sq, cancel(false)).await,
        "postgres and sqlite disagree"
    );
    assert_eq!(call(&pg, cancel(false)).await.0, StatusCode::CONFLICT);
    assert_eq!(call(&pg, get(user)).await.1["status"], "cancelled");
    let _ = dump(&db).await;
    drop_schema(&url, &schema).await.unwrap();
}
