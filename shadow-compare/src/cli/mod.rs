//! Command-line arguments, the rule flags shared by both subcommands, and dispatch.

mod diff;
mod replay;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use shadow_compare::{ArrayModeFile, NoiseRules, NoiseRulesFile};

/// Compare legacy and candidate responses field by field.
#[derive(Debug, Parser)]
#[command(name = "shadow-compare", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diff two JSON documents; exit 0 equal, 1 different, 2 error.
    Diff(diff::DiffArgs),
    /// Replay recorded requests against two servers and write a summary report.
    Replay(replay::ReplayArgs),
}

/// What a successful run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Equal,
    Different,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable, coloured when stdout is a terminal (unless NO_COLOR is set).
    Text,
    /// One JSON object.
    Json,
}

/// Noise-rule flags, the command-line twin of the `routes.toml` keys.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Read noise rules from a TOML file with the routes.toml keys (ignore, compare_headers,
    /// arrays, numbers); the flags below add to it.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Ignore this pointer pattern (`*` matches one segment); repeatable.
    #[arg(long, value_name = "PTR")]
    ignore: Vec<String>,
    /// Compare the array at this pointer pattern as a multiset; repeatable.
    #[arg(long, value_name = "PTR")]
    unordered: Vec<String>,
    /// Match the array's elements by a field, e.g. `--key /items=id`; repeatable.
    #[arg(long, value_name = "PTR=FIELD")]
    key: Vec<String>,
    /// Absolute number tolerance: |a - b| <= X counts as equal.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    tolerance: Option<f64>,
    /// Relative number tolerance: |a - b| <= X * max(|a|, |b|) counts as equal.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    relative: Option<f64>,
}

impl RuleArgs {
    /// Build checked rules; `headers` are extra header names to compare.
    pub fn to_rules(&self, headers: &[String]) -> anyhow::Result<NoiseRules> {
        let mut file = match &self.rules {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading rules file {}", path.display()))?;
                toml::from_str::<NoiseRulesFile>(&text)
                    .with_context(|| format!("parsing rules file {}", path.display()))?
            }
            None => NoiseRulesFile::default(),
        };
        file.ignore.extend(self.ignore.iter().cloned());
        file.compare_headers.extend(headers.iter().cloned());
        for pointer in &self.unordered {
            file.arrays
                .insert(pointer.clone(), ArrayModeFile::Unordered);
        }
        for spec in &self.key {
            let Some((pointer, field)) = spec.rsplit_once('=') else {
                bail!("--key {spec:?} must be POINTER=FIELD, e.g. --key /items=id");
            };
            file.arrays.insert(
                pointer.to_owned(),
                ArrayModeFile::Keyed {
                    key: field.to_owned(),
                },
            );
        }
        if let Some(tolerance) = self.tolerance {
            file.numbers.tolerance = tolerance;
        }
        if let Some(relative) = self.relative {
            file.numbers.relative = relative;
        }
        NoiseRules::try_from(file).context("invalid noise rules")
    }
}

/// Whether to colour stdout.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Diff(args) => diff::run(&args),
        Command::Replay(args) => replay::run(&args),
    }
}
