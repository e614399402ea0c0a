//! Helpers the services' tests share: generated databases and throwaway PostgreSQL schemas.
//! Not used by any service at run time.

use std::sync::atomic::{AtomicU64, Ordering};

use fitness_data::rusqlite::Connection;

use crate::sqlite::StoreError;

/// A generated in-memory database (`GenerateConfig::small(seed, users)`). Same arguments,
/// same rows, so two calls give the legacy and a service identical data.
pub fn generated_db(seed: u64, users: u32) -> Result<Connection, fitness_data::DataError> {
    let mut conn = fitness_data::open_in_memory()?;
    fitness_data::generate(&mut conn, &fitness_data::GenerateConfig::small(seed, users))?;
    Ok(conn)
}

/// `DATABASE_URL` when it points at PostgreSQL (the `#[ignore]`d postgres tests need it).
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A fresh schema loaded with `GenerateConfig::small(seed, users)`; dropped by
/// [`drop_schema`]. Names are unique per process and call.
pub async fn pg_schema(
    url: &str,
    prefix: &str,
    seed: u64,
    users: u32,
) -> Result<String, StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let tables = {
        let conn = generated_db(seed, users)?;
        crate::pg::read_tables(&conn)?
    };
    let mut client = crate::pg::connect(url, None).await?;
    crate::pg::load(&mut client, Some(&schema), true, &tables).await?;
    Ok(schema)
}

/// Drops a schema made by [`pg_schema`].
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    let client = crate::pg::connect(url, None).await?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            crate::pg::quote_ident(schema)
        ))
        .await?;
    Ok(())
}
