//! `shadow-compare diff legacy.json candidate.json`: compare two files as JSON.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use shadow_compare::{Comparator, DiffReport, render_text};

use super::{Format, Outcome, RuleArgs, colour_stdout};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The legacy (expected) JSON document.
    legacy: PathBuf,
    /// The candidate JSON document.
    candidate: PathBuf,
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// The `--format json` output: the report plus a verdict.
#[derive(Serialize)]
struct JsonOutput<'a> {
    equal: bool,
    #[serde(flatten)]
    report: &'a DiffReport,
}

pub fn run(args: &DiffArgs) -> anyhow::Result<Outcome> {
    let comparator = Comparator::new(args.rules.to_rules(&[])?);
    let legacy = std::fs::read(&args.legacy)
        .with_context(|| format!("reading legacy file {}", args.legacy.display()))?;
    let candidate = std::fs::read(&args.candidate)
        .with_context(|| format!("reading candidate file {}", args.candidate.display()))?;
    let report = comparator
        .compare_json(&legacy, &candidate)
        .with_context(|| {
            format!(
                "comparing {} with {}",
                args.legacy.display(),
                args.candidate.display()
            )
        })?;
    let equal = report.is_equal();
    match args.format {
        Format::Text => print!("{}", render_text(&report, colour_stdout())),
        Format::Json => {
            let output = JsonOutput {
                equal,
                report: &report,
            };
            println!("{}", serde_json::to_string_pretty(&output)?);
        }
    }
    Ok(if equal {
        Outcome::Equal
    } else {
        Outcome::Different
    })
}
