//! The error type of every fallible function in this crate.

/// What went wrong while reading or writing platform data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// SQLite itself failed (I/O, constraint we did not expect, malformed SQL).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The row asked for does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// The change would break a rule of the data (duplicate, wrong state, no capacity).
    #[error("{0}")]
    Conflict(String),
    /// A stored value cannot be read back as its model type.
    #[error("invalid stored {field} {value:?}")]
    Corrupt { field: &'static str, value: String },
    /// The database was created by another schema version.
    #[error("database schema version is {found:?}, this build expects {expected}; regenerate it")]
    SchemaVersion {
        found: Option<String>,
        expected: u32,
    },
    /// The generator was asked for something it cannot make.
    #[error("invalid generator setting {setting} = {value}: {reason}")]
    Config {
        setting: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Shorthand used across the crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
