//! The shared `main` of the simple services: read the environment, open the configured
//! database, build the router, serve until SIGTERM or Ctrl-C, drain. Each binary only says
//! how to build its router on each kind of database.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::Router;

use crate::pg::PgPool;
use crate::sqlite::SqliteDb;
use crate::{Database, ServiceConfig};

/// The opened database a service builds its store on.
pub enum Backend {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// Runs service `name` (log and error prefix) with `build` and exits 1 on error.
pub async fn run_service(
    name: &'static str,
    default_listen: &str,
    build: impl FnOnce(Backend) -> Router,
) {
    crate::init_tracing();
    if let Err(e) = serve_env(name, default_listen, build).await {
        eprintln!("{name}: error: {e:#}");
        std::process::exit(1);
    }
}

async fn serve_env(
    name: &'static str,
    default_listen: &str,
    build: impl FnOnce(Backend) -> Router,
) -> Result<()> {
    let default_listen: SocketAddr = default_listen
        .parse()
        .with_context(|| format!("default listen address {default_listen:?}"))?;
    let config = ServiceConfig::from_env(default_listen)?;
    let backend = match &config.database {
        Database::Sqlite(path) => Backend::Sqlite(
            SqliteDb::open(path)
                .with_context(|| format!("cannot open database {}", path.display()))?,
        ),
        Database::Postgres { url, schema, pool } => Backend::Postgres(
            PgPool::connect(url, schema.as_deref(), *pool)
                .await
                .with_context(|| format!("cannot connect to {}", crate::config::redact(url)))?,
        ),
    };
    let router = build(backend);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, "{name} serving");
    crate::serve(listener, router, crate::shutdown_signal())
        .await
        .context("server failed")
}
