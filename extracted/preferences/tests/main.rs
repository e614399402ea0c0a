//! Integration tests of preferences: one binary, one module per concern.
#![allow(clippy::unwrap_used)]

mod oneshot;
mod parity;
mod postgres;
mod socket;
mod support;
