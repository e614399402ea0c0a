//! The SQLite side of every service's store: one connection of the shared database behind a
//! mutex, used from tokio's blocking pool, and [`StoreError`], the error of every store.
//! Writes go through `fitness-data`'s queries inside a transaction; a dry run rolls it back.

use std::path::Path;
use std::sync::{Arc, Mutex};

use fitness_data::rusqlite::Connection;
use fitness_data::{DataError, schema};

use crate::error::ApiError;

/// What a store (SQLite or PostgreSQL) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite or a `fitness-data` query failed.
    #[error("sqlite: {0}")]
    Data(#[from] DataError),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A stored value cannot be read as its model type.
    #[error("invalid stored {field} {value:?}")]
    Corrupt { field: &'static str, value: String },
    /// The database cannot be reached or used right now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<fitness_data::rusqlite::Error> for StoreError {
    fn from(e: fitness_data::rusqlite::Error) -> Self {
        Self::Data(DataError::Sqlite(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Data(d) => d.into(),
            StoreError::Postgres(p) if p.is_closed() => {
                ApiError::Unavailable(format!("postgres connection closed: {p}"))
            }
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The shared SQLite database; cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Wraps an open, populated connection (tests pass an in-memory one).
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Opens the file at `path`, which must hold generated data of this schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "database file {} does not exist; generate it with `legacy generate --db {}`",
                path.display(),
                path.display()
            )));
        }
        let conn = fitness_data::open(path)?;
        if !schema::is_populated(&conn)? {
            return Err(StoreError::Unavailable(format!(
                "database file {} has no generated data",
                path.display()
            )));
        }
        schema::check_version(&conn)?;
        Ok(Self::new(conn))
    }

    /// Runs `f` on the connection in the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a transaction that commits unless `dry_run`, in which case it rolls back.
    pub async fn write<T, F>(&self, dry_run: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(out)
        })
        .await
    }

    /// A trivial query, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}
