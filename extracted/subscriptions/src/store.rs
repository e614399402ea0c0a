//! Reading and moving subscriptions in the shared database, through [`SubscriptionStore`].
//! A move runs in one transaction: read (locked on PostgreSQL), check the state machine,
//! update, read back; then commit, or roll back on a dry run.

use std::future::Future;

use fitness_data::DataError;
use fitness_data::models::{Subscription, SubscriptionStatus};
use fitness_data::queries;
use service_kit::pg::PgPool;
use service_kit::sqlite::{SqliteDb, StoreError};

/// What a read or a move found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<T> {
    UnknownUser,
    NoSubscription,
    /// The state machine refused the move from this state.
    Refused(SubscriptionStatus),
    Ok(T),
}

/// What the service reads and writes.
pub trait SubscriptionStore: Send + Sync + 'static {
    /// User `user_id`'s subscription (never `Refused`).
    fn subscription(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Found<Subscription>, StoreError>> + Send;
    /// Moves it to `to` at `now`, committing unless `dry_run`.
    fn transition(
        &self,
        user_id: i64,
        to: SubscriptionStatus,
        now: i64,
        dry_run: bool,
    ) -> impl Future<Output = Result<Found<Subscription>, StoreError>> + Send;
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

fn lookup(
    c: &fitness_data::rusqlite::Connection,
    user_id: i64,
) -> Result<Found<Subscription>, StoreError> {
    if !queries::user_exists(c, user_id)? {
        return Ok(Found::UnknownUser);
    }
    match queries::subscription(c, user_id) {
        Ok(s) => Ok(Found::Ok(s)),
        Err(DataError::NotFound { .. }) => Ok(Found::NoSubscription),
        Err(e) => Err(e.into()),
    }
}

impl SubscriptionStore for SqliteStore {
    async fn subscription(&self, user_id: i64) -> Result<Found<Subscription>, StoreError> {
        self.db.run(move |c| lookup(c, user_id)).await
    }

    async fn transition(
        &self,
        user_id: i64,
        to: SubscriptionStatus,
        now: i64,
        dry_run: bool,
    ) -> Result<Found<Subscription>, StoreError> {
        self.db
            .write(dry_run, move |c| {
                let current = match lookup(c, user_id)? {
                    Found::Ok(s) => s,
                    other => return Ok(other),
                };
                if !current.status.can_become(to) {
                    return Ok(Found::Refused(current.status));
                }
                Ok(Found::Ok(queries::set_subscription_status(
                    c, user_id, to, now,
                )?))
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

async fn pg_lookup(
    c: &impl tokio_postgres::GenericClient,
    user_id: i64,
    for_update: bool,
) -> Result<Found<Subscription>, StoreError> {
    if !service_kit::pg::user_exists(c, user_id).await? {
        return Ok(Found::UnknownUser);
    }
    Ok(
        match service_kit::pg::subscription(c, user_id, for_update).await? {
            Some(s) => Found::Ok(s),
            None => Found::NoSubscription,
        },
    )
}

impl SubscriptionStore for PgStore {
    async fn subscription(&self, user_id: i64) -> Result<Found<Subscription>, StoreError> {
        let client = self.pool.get().await?;
        pg_lookup(&*client, user_id, false).await
    }

    async fn transition(
        &self,
        user_id: i64,
        to: SubscriptionStatus,
        now: i64,
        dry_run: bool,
    ) -> Result<Found<Subscription>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let current = match pg_lookup(&tx, user_id, true).await? {
            Found::Ok(s) => s,
            other => return Ok(other), // dropping `tx` rolls back
        };
        if !current.status.can_become(to) {
            return Ok(Found::Refused(current.status));
        }
        let cancelled_at = if to == SubscriptionStatus::Cancelled {
            Some(now)
        } else {
            current.cancelled_at.map(|t| t.0)
        };
        tx.execute(
            "UPDATE subscriptions SET status = $1, cancelled_at = $2, updated_at = $3 WHERE user_id = $4",
            &[&to.as_str(), &cancelled_at, &now, &user_id],
        )
        .await?;
        let updated = pg_lookup(&tx, user_id, false).await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(updated)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }
}
