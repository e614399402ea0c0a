//! Integration tests of the `ficus` binary: real upstreams, a real proxy process, real
//! HTTP, all on 127.0.0.1 with ephemeral ports.

#![allow(clippy::unwrap_used)]

mod support;

mod autopilot;
mod canary;
mod check;
mod dashboard;
mod grafana;
mod platform;
mod proxying;
mod reload;
mod restart;
mod route_cli;
mod routing;
mod security;
mod shadow;
mod tls;
