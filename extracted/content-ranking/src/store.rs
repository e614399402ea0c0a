//! Where the ranking's inputs come from: the shared database, read through [`RankingStore`].
//! Both implementations aggregate favorites by content and age in days inside the database
//! (one indexed `GROUP BY`), so a refresh moves about 100k small rows less than the legacy's
//! per-request full scan, and requests only look up one user's preferences.

use std::future::Future;

use fitness_data::models::Preferences;
use fitness_data::rusqlite::Connection;
use fitness_data::{queries, schema};
use service_kit::pg::PgPool;
use service_kit::sqlite::{SqliteDb, StoreError};

use crate::rank::Snapshot;

/// What the ranking reads.
pub trait RankingStore: Send + Sync + 'static {
    /// Every content item with its aggregated favorites.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;
    /// `None` when user `user_id` does not exist; `Some(None)` when they saved no preferences.
    fn preferences(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Option<Option<Preferences>>, StoreError>> + Send;
    /// A trivial query, for `/readyz`.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The SQLite store (default).
#[derive(Clone)]
pub struct SqliteStore {
    db: SqliteDb,
}

impl SqliteStore {
    /// Over an open shared database.
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

const SQLITE_AGGREGATE: &str = "SELECT content_id, MAX(0, ?1 - created_at) / 86400 AS age_days, COUNT(*) \
     FROM favorites GROUP BY content_id, age_days";

/// Builds a snapshot from an SQLite connection (also used by tests and the benchmark).
pub fn sqlite_snapshot(conn: &Connection) -> Result<Snapshot, StoreError> {
    let reference = schema::dataset_now(conn)?;
    let content = queries::all_content(conn)?;
    let mut stmt = conn.prepare_cached(SQLITE_AGGREGATE)?;
    let rows = stmt
        .query_map([reference], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<(i64, i64, i64)>, _>>()?;
    Ok(Snapshot::build(reference, content, rows))
}

impl RankingStore for SqliteStore {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.db.run(|c| sqlite_snapshot(c)).await
    }

    async fn preferences(&self, user_id: i64) -> Result<Option<Option<Preferences>>, StoreError> {
        self.db
            .run(move |c| {
                if !queries::user_exists(c, user_id)? {
                    return Ok(None);
                }
                Ok(Some(queries::preferences(c, user_id)?))
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }
}

/// The PostgreSQL store (`DATABASE_URL=postgres://...`).
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Over a connected pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl RankingStore for PgStore {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let client = self.pool.get().await?;
        let reference = service_kit::pg::dataset_now(&*client).await?;
        let content = service_kit::pg::all_content(&*client).await?;
        let rows = client
            .query(
                "SELECT content_id, GREATEST(0, $1 - created_at) / 86400 AS age_days, COUNT(*) \
                 FROM favorites GROUP BY 1, 2",
                &[&reference],
            )
            .await?;
        let aggregates = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)));
        Ok(Snapshot::build(
            reference,
            content,
            aggregates.collect::<Vec<_>>(),
        ))
    }

    async fn preferences(&self, user_id: i64) -> Result<Option<Option<Preferences>>, StoreError> {
        let client = self.pool.get().await?;
        if !service_kit::pg::user_exists(&*client, user_id).await? {
            return Ok(None);
        }
        Ok(Some(service_kit::pg::preferences(&*client, user_id).await?))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }
}
