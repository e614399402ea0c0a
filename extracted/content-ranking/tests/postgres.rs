//! The PostgreSQL store against a real server (`scripts/postgres-test.sh`): `#[ignore]`d so a
//! plain `cargo test` needs none. Each test loads its own schema and drops it afterwards.

use content_ranking::store::{PgStore, RankingStore, SqliteStore};
use content_ranking::{AppState, app};
use service_kit::Clock;
use service_kit::pg::PgPool;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::{drop_schema, generated_db, pg_schema, postgres_url};

use crate::support::{NOW, get};

#[tokio::test]
#[ignore = "needs DATABASE_URL=postgres://...; run scripts/postgres-test.sh"]
async fn postgres_store_ranks_like_sqlite() {
    let url = postgres_url().expect("DATABASE_URL=postgres://... must be set");
    let schema = pg_schema(&url, "ranking", 21, 150).await.unwrap();
    let pg = PgStore::new(PgPool::connect(&url, Some(&schema), 2).await.unwrap());
    let sqlite = SqliteStore::new(SqliteDb::new(generated_db(21, 150).unwrap()));
    assert_eq!(
        pg.snapshot().await.unwrap(),
        sqlite.snapshot().await.unwrap()
    );
    assert!(pg.ping().await.is_ok());
    let pg_app = app(AppState::load(pg, Clock::fixed(NOW)).await.unwrap());
    let sq_app = app(AppState::load(sqlite, Clock::fixed(NOW)).await.unwrap());
    for uri in [
        "/api/content/top",
        "/api/content/top?limit=50&user_id=3",
        "/api/content/top?limit=7&user_id=140",
        "/api/content/top?user_id=99999",
    ] {
        assert_eq!(get(&pg_app, uri).await, get(&sq_app, uri).await, "{uri}");
    }
    drop_schema(&url, &schema).await.unwrap();
}
