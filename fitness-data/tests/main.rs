//! Integration tests of fitness-data: one binary, one module per concern.
#![allow(clippy::unwrap_used)]

mod determinism;
mod generated;
mod queries;

use fitness_data::rusqlite::Connection;
use fitness_data::{GenerateConfig, generate, open_in_memory};

/// A freshly generated small database.
pub fn small_db(seed: u64, users: u32) -> Connection {
    let mut conn = open_in_memory().unwrap();
    generate(&mut conn, &GenerateConfig::small(seed, users)).unwrap();
    conn
}
