//! The `preferences` binary: reads the environment (`LISTEN`, `DATABASE_URL` /
//! `DATABASE_PATH`, `RUST_LOG`), serves until SIGTERM or Ctrl-C, then drains
//! (`service_kit::main_loop`).

use preferences::store::{PgStore, SqliteStore};
use preferences::{AppState, DEFAULT_LISTEN, app};
use service_kit::Clock;
use service_kit::main_loop::{Backend, run_service};

#[tokio::main]
async fn main() {
    run_service("preferences", DEFAULT_LISTEN, |backend| match backend {
        Backend::Sqlite(db) => app(AppState::new(SqliteStore::new(db), Clock::system())),
        Backend::Postgres(pool) => app(AppState::new(PgStore::new(pool), Clock::system())),
    })
    .await;
}
