//! `shadow-compare`: diff two JSON files, or replay recorded requests against a legacy and a
//! candidate server and report how their answers differ.
//!
//! Exit codes: 0 equal (every replayed request matched), 1 different, 2 error. This file
//! parses arguments and maps outcomes to exit codes; the only place that prints the error
//! chain. The work lives in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Outcome};

fn main() -> ExitCode {
    let args = Cli::parse();
    match cli::run(args) {
        Ok(Outcome::Equal) => ExitCode::from(0),
        Ok(Outcome::Different) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
