//! The `preferences` binary: reads the environment (`LISTEN`, `DATABASE_URL` /
//! `DATABASE_PATH`, `RUST_LOG`), serves until SIGTERM or Ctrl-C, then drains.

use anyhow::{Context, Result};
use preferences::store::{PgStore, SqliteStore};
use preferences::{AppState, DEFAULT_LISTEN, app};
use service_kit::pg::PgPool;
use service_kit::sqlite::SqliteDb;
use service_kit::{Clock, Database, ServiceConfig};

#[tokio::main]
async fn main() {
    service_kit::init_tracing();
    if let Err(e) = run().await {
        eprintln!("preferences: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let config = ServiceConfig::from_env(DEFAULT_LISTEN.parse()?)?;
    let router = match &config.database {
        Database::Sqlite(path) => {
            let db = SqliteDb::open(path)
                .with_context(|| format!("cannot open database {}", path.display()))?;
            app(AppState::new(SqliteStore::new(db), Clock::system()))
        }
        Database::Postgres { url, schema, pool } => {
            let pool = PgPool::connect(url, schema.as_deref(), *pool)
                .await
                .with_context(|| {
                    format!("cannot connect to {}", service_kit::config::redact(url))
                })?;
            app(AppState::new(PgStore::new(pool), Clock::system()))
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, "preferences serving");
    service_kit::serve(listener, router, service_kit::shutdown_signal())
        .await
        .context("server failed")
}
