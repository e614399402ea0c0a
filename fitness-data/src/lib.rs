//! Data of the fitness platform: the schema, the deterministic generator, and the models and
//! queries that the legacy monolith and the extracted services share during the
//! shared-database stage of the migration (see `docs/data.md`).
//!
//! This crate owns the tables and their meaning. It does no HTTP, reads no environment and
//! never looks at the wall clock on its own: callers pass `now` in.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod dump;
pub mod error;
pub mod generate;
pub mod models;
pub mod password;
pub mod queries;
pub mod ranking;
pub mod rng;
pub mod schema;
pub mod time;

pub use error::DataError;
pub use generate::{GenerateConfig, Summary, generate};
pub use schema::{open, open_in_memory};

/// Re-exported so dependants use the same SQLite binding version as this crate.
pub use rusqlite;
