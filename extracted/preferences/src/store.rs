//! Reading and replacing preferences in the shared database, through [`PreferencesStore`].
//! A replace runs in one transaction and rolls back on a dry run.

use std::future::Future;

use fitness_data::models::Preferences;
use fitness_data::queries;
use service_kit::pg::PgPool;
use service_kit::sqlite::{SqliteDb, StoreError};

/// `None` for an unknown user, else what was found or stored.
pub type ForUser<T> = Option<T>;

/// What the service reads and writes.
pub trait PreferencesStore: Send + Sync + 'static {
    /// `None`: unknown user; `Some(None)`: the user saved none.
    fn preferences(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<ForUser<Option<Preferences>>, StoreError>> + Send;
    /// Replaces them (committing unless `dry_run`); `None` for an unknown user.
    fn put(
        &self,
        prefs: Preferences,
        dry_run: bool,
    ) -> impl Future<Output = Result<ForUser<Preferences>, StoreError>> + Send;
    /// A trivial query, for `/readyz`.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The SQLite store (default), on `fitness-data`'s queries.
#[derive(Clone)]
pub struct SqliteStore {
    db: SqliteDb,
}

impl SqliteStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

impl PreferencesStore for SqliteStore {
    async fn preferences(&self, user_id: i64) -> Result<ForUser<Option<Preferences>>, StoreError> {
        self.db
            .run(move |c| {
                if !queries::user_exists(c, user_id)? {
                    return Ok(None);
                }
                Ok(Some(queries::preferences(c, user_id)?))
            })
            .await
    }

    async fn put(
        &self,
        prefs: Preferences,
        dry_run: bool,
    ) -> Result<ForUser<Preferences>, StoreError> {
        self.db
            .write(dry_run, move |c| {
                if !queries::user_exists(c, prefs.user_id)? {
                    return Ok(None);
                }
                queries::put_preferences(c, &prefs)?;
                Ok(queries::preferences(c, prefs.user_id)?)
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
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl PreferencesStore for PgStore {
    async fn preferences(&self, user_id: i64) -> Result<ForUser<Option<Preferences>>, StoreError> {
        let client = self.pool.get().await?;
        if !service_kit::pg::user_exists(&*client, user_id).await? {
            return Ok(None);
        }
        Ok(Some(service_kit::pg::preferences(&*client, user_id).await?))
    }

    async fn put(
        &self,
        prefs: Preferences,
        dry_run: bool,
    ) -> Result<ForUser<Preferences>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !service_kit::pg::user_exists(&tx, prefs.user_id).await? {
            return Ok(None);
        }
        service_kit::pg::put_preferences(&tx, &prefs).await?;
        let stored = service_kit::pg::preferences(&tx, prefs.user_id).await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(stored)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }
}
