//! Integration tests of the legacy monolith: one binary, one module per concern. Servers are
//! started in-process on `127.0.0.1:0` over a small generated in-memory database.
#![allow(clippy::unwrap_used)]

mod support;

mod auth;
mod cli;
mod content;
mod holes;
mod oneshot;
mod top;
mod users;
