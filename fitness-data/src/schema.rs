//! The platform's tables, and opening a database that has them.
//!
//! Portable on purpose (PostgreSQL comes later, see `docs/data.md`): ids are `INTEGER`,
//! timestamps are unix seconds in `INTEGER`, enums are `TEXT` with a `CHECK`, booleans are
//! `INTEGER` 0/1, and no SQLite-only types or functions are used in the DDL.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{DataError, Result};

/// Bumped whenever the DDL changes; stored in `meta.schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// Every table with the columns that order its rows canonically (used by [`crate::dump`]).
pub const TABLES: &[(&str, &str)] = &[
    ("meta", "key"),
    ("users", "id"),
    ("instructors", "id"),
    ("content", "id"),
    ("favorites", "user_id, content_id"),
    ("preferences", "user_id"),
    ("subscriptions", "id"),
    ("workouts", "id"),
    ("classes", "id"),
    ("bookings", "id"),
    ("sessions", "token"),
];

/// The DDL, in dependency order.
pub const DDL: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_salt TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE instructors (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    bio        TEXT NOT NULL,
    specialty  TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE content (
    id               INTEGER PRIMARY KEY,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    category         TEXT NOT NULL,
    intensity        TEXT NOT NULL CHECK (intensity IN ('low', 'medium', 'high')),
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    instructor_id    INTEGER NOT NULL REFERENCES instructors (id),
    published_at     INTEGER NOT NULL
);
CREATE INDEX content_category ON content (category, intensity);
CREATE TABLE favorites (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    content_id INTEGER NOT NULL REFERENCES content (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, content_id)
);
CREATE INDEX favorites_content ON favorites (content_id, created_at);
CREATE TABLE preferences (
    user_id              INTEGER PRIMARY KEY REFERENCES users (id),
    categories           TEXT NOT NULL,
    intensity            TEXT CHECK (intensity IN ('low', 'medium', 'high')),
    max_duration_minutes INTEGER,
    email_opt_in         INTEGER NOT NULL CHECK (email_opt_in IN (0, 1)),
    updated_at           INTEGER NOT NULL
);
CREATE TABLE subscriptions (
    id                 INTEGER PRIMARY KEY,
    user_id            INTEGER NOT NULL UNIQUE REFERENCES users (id),
    plan               TEXT NOT NULL CHECK (plan IN ('monthly', 'annual')),
    status             TEXT NOT NULL
                       CHECK (status IN ('trial', 'active', 'past_due', 'cancelled', 'expired')),
    started_at         INTEGER NOT NULL,
    current_period_end INTEGER NOT NULL,
    cancelled_at       INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX subscriptions_status ON subscriptions (status, current_period_end);
CREATE TABLE workouts (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    content_id       INTEGER REFERENCES content (id),
    category         TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    calories         INTEGER NOT NULL,
    performed_at     INTEGER NOT NULL
);
CREATE INDEX workouts_user ON workouts (user_id, performed_at);
CREATE TABLE classes (
    id               INTEGER PRIMARY KEY,
    title            TEXT NOT NULL,
    instructor_id    INTEGER NOT NULL REFERENCES instructors (id),
    category         TEXT NOT NULL,
    starts_at        INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL,
    capacity         INTEGER NOT NULL CHECK (capacity > 0)
);
CREATE INDEX classes_starts ON classes (starts_at);
CREATE TABLE bookings (
    id         INTEGER PRIMARY KEY,
    class_id   INTEGER NOT NULL REFERENCES classes (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    UNIQUE (class_id, user_id)
);
CREATE TABLE sessions (
    token      TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
"#;

/// Opens (creating if needed) the SQLite database at `path`. An empty file gets no schema:
/// use [`is_populated`] and [`crate::generate`] to fill it.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// A fresh in-memory database (tests, and throwaway demos).
pub fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Creates every table. Fails if any already exists.
pub fn create(conn: &Connection) -> Result<()> {
    conn.execute_batch(DDL)?;
    Ok(())
}

/// Whether the database has a schema and generated data.
pub fn is_populated(conn: &Connection) -> Result<bool> {
    let has_meta: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(false);
    }
    Ok(meta(conn, "generated_users")?.is_some())
}

/// Fails unless the database was made by this schema version.
pub fn check_version(conn: &Connection) -> Result<()> {
    let found = meta(conn, "schema_version")?;
    if found.as_deref() == Some(SCHEMA_VERSION.to_string().as_str()) {
        Ok(())
    } else {
        Err(DataError::SchemaVersion {
            found,
            expected: SCHEMA_VERSION,
        })
    }
}

/// One value of the `meta` table.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// The dataset clock (`meta.dataset_now`, unix seconds): the "now" the data was generated
/// around and the reference time of the ranking's recency decay.
pub fn dataset_now(conn: &Connection) -> Result<i64> {
    let text = meta(conn, "dataset_now")?.unwrap_or_default();
    text.parse().map_err(|_| DataError::Corrupt {
        field: "meta.dataset_now",
        value: text,
    })
}
