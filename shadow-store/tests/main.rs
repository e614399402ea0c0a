//! Integration tests for shadow-store, one binary: `persistence` (restart, two
//! connections, determinism, migration of the proxy's earlier layout), `reservoir`
//! (bounds and the statistics of Algorithm R), `cardinality` (the field bound),
//! `redaction` (secrets absent from the stored bytes), `export` (fixtures, snapshot).
#![allow(clippy::unwrap_used)]

mod cardinality;
mod export;
mod persistence;
mod redaction;
mod reservoir;
mod support;
