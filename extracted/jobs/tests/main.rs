//! The integration tests of `jobs`, one binary (modules below). Real SQLite files in temp
//! dirs, real sockets on 127.0.0.1:0, the real `jobs` binary for the crash test; time moves
//! by hand ([`jobs::Clock::manual`]) except where a subprocess runs on its own clock.
#![allow(clippy::unwrap_used)]

mod alerts;
mod crash;
mod http;
mod postgres;
mod queue;
mod support;
mod tasks;
