//! The `content-ranking` binary: reads the environment (`LISTEN`, `DATABASE_URL` /
//! `DATABASE_PATH`, `RANKING_REFRESH_SECS`, `RUST_LOG`), loads the first snapshot, serves
//! until SIGTERM or Ctrl-C, then drains. The only place that prints the error chain.

use std::time::Duration;

use anyhow::{Context, Result};
use content_ranking::store::{PgStore, RankingStore, SqliteStore};
use content_ranking::{AppState, DEFAULT_LISTEN, DEFAULT_REFRESH_SECS, app, spawn_refresher};
use service_kit::pg::PgPool;
use service_kit::sqlite::SqliteDb;
use service_kit::{Clock, Database, ServiceConfig};

#[tokio::main]
async fn main() {
    service_kit::init_tracing();
    if let Err(e) = run().await {
        eprintln!("content-ranking: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let config = ServiceConfig::from_env(DEFAULT_LISTEN.parse()?)?;
    let refresh = match std::env::var("RANKING_REFRESH_SECS") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().with_context(|| {
            format!("invalid RANKING_REFRESH_SECS {v:?}: expected whole seconds (0 disables)")
        })?,
        _ => DEFAULT_REFRESH_SECS,
    };
    match &config.database {
        Database::Sqlite(path) => {
            let db = SqliteDb::open(path)
                .with_context(|| format!("cannot open database {}", path.display()))?;
            serve(SqliteStore::new(db), &config, refresh).await
        }
        Database::Postgres { url, schema, pool } => {
            let pool = PgPool::connect(url, schema.as_deref(), *pool)
                .await
                .with_context(|| {
                    format!("cannot connect to {}", service_kit::config::redact(url))
                })?;
            serve(PgStore::new(pool), &config, refresh).await
        }
    }
}

async fn serve<S: RankingStore>(store: S, config: &ServiceConfig, refresh: u64) -> Result<()> {
    let state = AppState::load(store, Clock::system())
        .await
        .context("cannot load the ranking snapshot")?;
    if refresh > 0 {
        spawn_refresher(state.clone(), Duration::from_secs(refresh));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, refresh_secs = refresh, "content-ranking serving");
    service_kit::serve(listener, app(state), service_kit::shutdown_signal())
        .await
        .context("server failed")
}
