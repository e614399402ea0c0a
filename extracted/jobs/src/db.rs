//! Storage plumbing shared by the queue and the jobs: one database connection owned by a
//! dedicated thread ([`Db`]), reached from async code by message passing, and a tiny
//! dialect-neutral interface ([`Conn`], [`Value`], [`Row`]) so every query is written once.
//!
//! SQL is written with `$1, $2, ...` placeholders, numbered in order of first appearance:
//! PostgreSQL reads them natively, SQLite treats `$N` as named parameters and numbers them
//! in order of first appearance, so positional binding gives the same result on both. Only
//! `BIGINT`/`INTEGER` and `TEXT` values cross this interface.
//!
//! Why a thread: the sync `postgres::Client` runs its own small runtime and must never be
//! used or dropped inside tokio; SQLite is single-writer anyway. One connection per worker
//! process is plenty for a job worker, and it serialises access without any lock held across
//! an `.await`. This module owns the job tables' DDL ([`JOBS_DDL`]); it does not touch
//! `fitness-data`'s tables.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;

use fitness_data::rusqlite::{self, TransactionBehavior};
use postgres::types::{IsNull, ToSql, Type};

use crate::error::JobError;

/// Which SQL dialect a connection speaks (only the claim query and the DDL differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One SQL value: the schema only uses 64-bit integers and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn cell(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    /// Column `i` as an integer (NULL is an error).
    pub fn int(&self, i: usize) -> Result<i64, JobError> {
        self.opt_int(i)?.ok_or(JobError::Corrupt {
            field: "integer column",
            value: format!("NULL at column {i}"),
        })
    }

    /// Column `i` as an optional integer.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, JobError> {
        match self.cell(i) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Text(t) => t.parse().map(Some).map_err(|_| JobError::Corrupt {
                field: "integer column",
                value: t.clone(),
            }),
        }
    }

    /// Column `i` as text (NULL is an error).
    pub fn text(&self, i: usize) -> Result<String, JobError> {
        self.opt_text(i)?.ok_or(JobError::Corrupt {
            field: "text column",
            value: format!("NULL at column {i}"),
        })
    }

    /// Column `i` as optional text.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, JobError> {
        match self.cell(i) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v.to_string())),
            Value::Text(t) => Ok(Some(t.clone())),
        }
    }
}

/// A connection inside a transaction, whatever the backend.
pub trait Conn {
    /// The dialect, for the few statements that differ.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, JobError>;
    /// Runs a query (or a statement with `RETURNING`); returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, JobError>;
    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, JobError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

// ------------------------------------------------------------------ sqlite

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

struct SqliteTx<'a>(rusqlite::Transaction<'a>);

impl Conn for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, JobError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, JobError> {
        use rusqlite::types::Value as V;
        let mut stmt = self.0.prepare_cached(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                cells.push(match r.get::<_, V>(i)? {
                    V::Null => Value::Null,
                    V::Integer(v) => Value::Int(v),
                    V::Real(f) => Value::Int(f as i64),
                    V::Text(t) => Value::Text(t),
                    V::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
                });
            }
            out.push(Row(cells));
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------ postgres

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Text(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

struct PgTx<'a>(postgres::Transaction<'a>);

fn pg_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, JobError> {
        Ok(self.0.execute(sql, &pg_params(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, JobError> {
        let rows = self.0.query(sql, &pg_params(params))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let ty = r.columns()[i].type_();
                        Ok(match *ty {
                            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.into(),
                            Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
                            Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
                            Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(i64::from).into(),
                            _ => r.try_get::<_, Option<String>>(i)?.into(),
                        })
                    })
                    .collect::<Result<Vec<Value>, JobError>>()
                    .map(Row)
            })
            .collect()
    }
}

// ------------------------------------------------------------------ the connection thread

/// The connection the thread owns.
enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: Option<Box<postgres::Client>>,
        url: String,
        schema: Option<String>,
    },
}

fn pg_connect(url: &str, schema: Option<&str>) -> Result<postgres::Client, JobError> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    if let Some(s) = schema {
        client.batch_execute(&format!(
            "SET search_path TO {}",
            service_kit::pg::quote_ident(s)
        ))?;
    }
    Ok(client)
}

impl Backend {
    fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, JobError>,
    ) -> Result<T, JobError> {
        match self {
            Self::Sqlite(conn) => {
                // IMMEDIATE: take the write lock up front, so two processes never deadlock
                // upgrading a read lock (busy_timeout then makes the second one wait).
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut tx = SqliteTx(tx);
                let out = f(&mut tx)?;
                tx.0.commit()?;
                Ok(out)
            }
            Self::Postgres {
                client,
                url,
                schema,
            } => {
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    *client = Some(Box::new(pg_connect(url, schema.as_deref())?));
                }
                let Some(c) = client.as_mut() else {
                    return Err(JobError::Unavailable("no postgres connection".into()));
                };
                let mut tx = PgTx(c.transaction()?);
                let out = f(&mut tx)?;
                tx.0.commit()?;
                Ok(out)
            }
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres { .. } => Dialect::Postgres,
        }
    }
}

type Task = Box<dyn FnOnce(&mut Backend) + Send>;

/// The database, reached through its connection thread; cheap to clone. The thread ends
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Db {
    tasks: mpsc::Sender<Task>,
    dialect: Dialect,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.dialect)
    }
}

impl Db {
    fn spawn(backend: Backend) -> Result<Self, JobError> {
        let dialect = backend.dialect();
        let (tx, rx) = mpsc::channel::<Task>();
        std::thread::Builder::new()
            .name("jobs-db".into())
            .spawn(move || {
                let mut backend = backend;
                while let Ok(task) = rx.recv() {
                    // A panicking task must not take the connection thread down with it.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| task(&mut backend)));
                }
            })
            .map_err(|e| JobError::Unavailable(format!("cannot start database thread: {e}")))?;
        Ok(Self { tasks: tx, dialect })
    }

    /// Wraps an open SQLite connection (tests pass a generated file or in-memory database).
    pub fn sqlite(conn: rusqlite::Connection) -> Result<Self, JobError> {
        Self::spawn(Backend::Sqlite(conn))
    }

    /// Opens the shared SQLite file at `path`, which must hold generated data.
    pub fn open_sqlite(path: &Path) -> Result<Self, JobError> {
        if !path.exists() {
            return Err(JobError::Unavailable(format!(
                "database file {} does not exist; generate it with `legacy generate --db {}`",
                path.display(),
                path.display()
            )));
        }
        let conn = fitness_data::open(path).map_err(|e| JobError::Unavailable(e.to_string()))?;
        Self::sqlite(conn)
    }

    /// Connects to PostgreSQL (no TLS) with an optional `search_path` schema. The connection
    /// is made on the database thread and reopened there if it closes.
    pub async fn connect_postgres(url: &str, schema: Option<&str>) -> Result<Self, JobError> {
        let db = Self::spawn(Backend::Postgres {
            client: None,
            url: url.to_owned(),
            schema: schema.map(str::to_owned),
        })?;
        db.ping().await?;
        Ok(db)
    }

    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs `f` in a transaction on the database thread: committed when `f` returns `Ok`,
    /// rolled back when it returns `Err`.
    pub async fn transaction<T, F>(&self, f: F) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, JobError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tasks
            .send(Box::new(move |backend: &mut Backend| {
                let _ = tx.send(backend.transaction(f));
            }))
            .map_err(|_| JobError::Unavailable("database thread has stopped".into()))?;
        rx.await
            .map_err(|_| JobError::Unavailable("database task failed (panicked)".into()))?
    }

    /// Like [`Db::transaction`], for callers outside any async runtime (the CLI).
    pub fn transaction_blocking<T, F>(&self, f: F) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, JobError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.tasks
            .send(Box::new(move |backend: &mut Backend| {
                let _ = tx.send(backend.transaction(f));
            }))
            .map_err(|_| JobError::Unavailable("database thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| JobError::Unavailable("database task failed (panicked)".into()))?
    }

    /// `SELECT 1`, for `/readyz`.
    pub async fn ping(&self) -> Result<(), JobError> {
        self.transaction(|c| c.query("SELECT 1", &[]).map(|_| ()))
            .await
    }

    /// Creates the worker's own tables if missing ([`JOBS_DDL`]).
    pub async fn migrate(&self) -> Result<(), JobError> {
        let dialect = self.dialect;
        self.transaction(move |c| {
            for stmt in ddl(dialect)
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                c.execute(stmt, &[])?;
            }
            Ok(())
        })
        .await
    }
}

/// The worker's own tables (SQLite form; [`ddl`] adapts it for PostgreSQL). Additive to the
/// shared schema: `fitness-data`'s tables are only read (and `subscriptions.status`,
/// `sessions` written by the sweep and the cleanup).
pub const JOBS_DDL: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    run_at          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL CHECK (max_attempts > 0),
    locked_by       TEXT,
    locked_until    INTEGER,
    last_error      TEXT,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, run_at);
CREATE TABLE IF NOT EXISTS notifications (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         INTEGER NOT NULL,
    body            TEXT NOT NULL,
    job_id          INTEGER,
    sent_at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS content_scores (
    content_id     INTEGER PRIMARY KEY,
    favorites      INTEGER NOT NULL,
    score          INTEGER NOT NULL,
    reference_time INTEGER NOT NULL,
    computed_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS favorite_counts (
    content_id INTEGER PRIMARY KEY,
    favorites  INTEGER NOT NULL,
    counted_at INTEGER NOT NULL
)";

/// [`JOBS_DDL`] in `dialect`.
pub fn ddl(dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => JOBS_DDL.to_owned(),
        Dialect::Postgres => JOBS_DDL
            .replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace("INTEGER", "BIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dollar_placeholders_bind_in_order_on_sqlite() {
        let db = Db::sqlite(fitness_data::open_in_memory().unwrap()).unwrap();
        db.migrate().await.unwrap();
        db.migrate().await.unwrap(); // idempotent
        let rows = db
            .transaction(|c| {
                c.execute("CREATE TABLE t (a INTEGER, b TEXT, c INTEGER)", &[])?;
                c.execute(
                    "INSERT INTO t VALUES ($1, $2, $1 + $3)",
                    &[7.into(), "x".into(), 1.into()],
                )?;
                c.query("SELECT a, b, c, NULL FROM t", &[])
            })
            .await
            .unwrap();
        assert_eq!(rows[0].int(0).unwrap(), 7);
        assert_eq!(rows[0].text(1).unwrap(), "x");
        assert_eq!(rows[0].int(2).unwrap(), 8);
        assert_eq!(rows[0].opt_int(3).unwrap(), None);
    }

    #[tokio::test]
    async fn an_error_rolls_back() {
        let db = Db::sqlite(fitness_data::open_in_memory().unwrap()).unwrap();
        db.migrate().await.unwrap();
        let r: Result<(), _> = db
            .transaction(|c| {
                c.execute("DELETE FROM jobs", &[])?;
                c.execute("INSERT INTO content_scores VALUES (1, 1, 1, 1, 1)", &[])?;
                Err(JobError::Job("boom".into()))
            })
            .await;
        assert!(r.is_err());
        let n = db
            .transaction(|c| c.query("SELECT COUNT(*) FROM content_scores", &[]))
            .await
            .unwrap();
        assert_eq!(n[0].int(0).unwrap(), 0);
    }

    #[test]
    fn postgres_ddl_has_identity_and_bigint() {
        let d = ddl(Dialect::Postgres);
        assert!(d.contains("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"));
        assert!(!d.contains("INTEGER"));
    }
}
