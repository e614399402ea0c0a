//! The mismatch store of Ficus's shadow mode: a bounded, persistent record of what the
//! comparisons found, in one SQLite file that survives a proxy restart.
//!
//! The proxy owns one [`ShadowStore`] on a dedicated background thread and hands it
//! batches of [`Observation`]s (one transaction per batch); the admin API and
//! `ficus shadow export` read it. Per route it keeps:
//!
//! - totals per [`Outcome`] ([`ShadowStore::summary`]);
//! - how often each field differed, at most [`StoreConfig::max_fields_per_route`] distinct
//!   pointers, the rest counted under [`OTHER_FIELD`] ([`ShadowStore::fields`]);
//! - a reservoir sample of at most [`StoreConfig::samples_per_route`] mismatches with both
//!   requests and responses ([`ShadowStore::diffs`], [`ShadowStore::export`]);
//! - learned-noise fields ([`ShadowStore::learned`]).
//!
//! Secrets are removed by the caller with [`Redaction`] *before* recording: the store
//! writes what it is given. No tokio, no proxy dependency; synchronous API.
//!
//! ```
//! use shadow_store::{Observation, Outcome, ShadowStore, StoreConfig};
//!
//! let mut store = ShadowStore::open_in_memory(StoreConfig::default()).expect("opens");
//! store
//!     .record(&[Observation::outcome("top-content", Outcome::Match, 1_700_000_000_000)])
//!     .expect("records");
//! let summary = store.summary().expect("reads");
//! assert_eq!(summary[0].r#match, 1);
//! assert_eq!(summary[0].match_rate, 1.0);
//! ```
//!
//! Modules: `error` ([`StoreError`]), `record` (what is recorded and read back, with the
//! JSON body representation), `redact` ([`Redaction`]), `reservoir` (slot choice),
//! `schema` (tables and migrations), `store` ([`ShadowStore`]).

mod error;
mod record;
mod redact;
mod reservoir;
mod schema;
mod store;

pub use error::StoreError;
pub use record::{
    FieldCount, MismatchSample, Observation, Outcome, RecordedRequest, RecordedResponse,
    RouteSummary, StoredMismatch,
};
pub use redact::{REDACTED, Redaction};
pub use schema::SCHEMA_VERSION;
pub use store::{OTHER_FIELD, ShadowStore, StoreConfig};
