//! Placeholder: the `legacy` binary is being written.
fn main() {}
