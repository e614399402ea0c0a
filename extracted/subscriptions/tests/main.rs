//! Integration tests of subscriptions: one binary, one module per concern.
#![allow(clippy::unwrap_used)]

mod oneshot;
mod parity;
mod postgres;
mod socket;
mod support;
