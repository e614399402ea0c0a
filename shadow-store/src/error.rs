//! [`StoreError`], the one error type of this crate. Messages are lowercase and name the
//! value at fault (file, route, pattern, stored row) and, where there is one, the fix.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing, reading or exporting the store, or
/// building a [`crate::Redaction`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite file could not be opened or its schema created.
    #[error("cannot open shadow store {path}: {source} (check the path and its permissions)")]
    Open {
        /// The file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of this crate.
    #[error(
        "shadow store {path} has schema version {found}, newer than the supported {supported} (use a newer ficus or another file)"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// [`crate::SCHEMA_VERSION`].
        supported: i64,
    },
    /// A statement failed on an open store.
    #[error("shadow store query failed: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A sample could not be turned into JSON for storage.
    #[error("cannot encode the mismatch sample of route {route:?} as JSON: {source}")]
    Encode {
        /// The route of the sample.
        route: String,
        /// serde_json's complaint.
        source: serde_json::Error,
    },
    /// A stored row does not decode (the file was edited by hand, or is damaged).
    #[error("stored mismatch {id} has a bad {column} column: {source}")]
    Corrupt {
        /// The row id.
        id: i64,
        /// Which column.
        column: &'static str,
        /// serde_json's complaint.
        source: serde_json::Error,
    },
    /// A redaction pattern is not a valid JSON pointer pattern.
    #[error("redaction pointer {pattern:?}: {source}")]
    Pointer {
        /// The pattern as given.
        pattern: String,
        /// The syntax error, with the suggested fix.
        source: shadow_compare::PointerError,
    },
    /// A redaction header name is empty or has characters a header name cannot have.
    #[error(
        "redaction header {name:?} is not a valid header name (use letters, digits and !#$%&'*+-.^_`|~)"
    )]
    HeaderName {
        /// The name as given.
        name: String,
    },
    /// The route cannot be used in an export file name.
    #[error(
        "route {route:?} cannot name an export file: it must be non-empty, must not start with \".\" and must not contain \"/\" or \"\\\""
    )]
    ExportRoute {
        /// The route.
        route: String,
    },
    /// Writing an export fixture (or creating its directory) failed.
    #[error("cannot write export fixture {path}: {source}")]
    Export {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
