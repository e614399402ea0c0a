//! What every extracted service shares, so each service crate is only its domain:
//!
//! - [`finish`] adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, JSON 404/405 and the
//!   request metrics layer to a service's API router;
//! - [`ApiError`] is the one mapping from errors to HTTP responses;
//! - [`Identity`] reads the caller from the proxy-injected `X-Ficus-Subject` / `X-Ficus-Roles`
//!   headers (services never parse client tokens), [`DryRun`] reads `X-Ficus-Shadow`;
//! - [`ServiceConfig`] reads `LISTEN`, `DATABASE_URL`, `DATABASE_PATH`, `DATABASE_SCHEMA`;
//! - [`serve`], [`start`] and [`shutdown_signal`] run a router with graceful shutdown;
//! - [`sqlite`] and [`pg`] hold the storage plumbing both backends of every service use.
//!
//! This crate knows no service's routes or tables beyond loading the shared schema into
//! PostgreSQL ([`pg::load_from_sqlite`]).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod body;
pub mod clock;
pub mod config;
pub mod error;
pub mod health;
pub mod identity;
pub mod main_loop;
pub mod metrics;
pub mod pg;
pub mod server;
pub mod shadow;
pub mod sqlite;
pub mod testing;

pub use body::json_body;
pub use clock::Clock;
pub use config::{ConfigError, Database, ServiceConfig};
pub use error::{ApiError, FieldError};
pub use health::Readiness;
pub use identity::{Identity, UserIdPath};
pub use metrics::Metrics;
pub use server::{Running, finish, init_tracing, serve, shutdown_signal, start, start_on_std};
pub use shadow::DryRun;
