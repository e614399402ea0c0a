//! Integration tests for shadow-compare, one binary (ripgrep's layout): `compare` covers
//! every difference kind and noise rule, `property` the proptest invariants, `large` the
//! no-quadratic-blow-up cases, `cli` and `replay` the built binary.
#![allow(clippy::unwrap_used)]

mod cli;
mod compare;
mod large;
mod property;
mod replay;
mod support;
