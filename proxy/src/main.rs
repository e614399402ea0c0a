//! The `ficus` binary: parse arguments, set up logging, run. The only place that prints
//! an error chain.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc (v2): about 1k fewer instructions per proxied request than glibc's malloc
/// (docs/decisions/0003-mimalloc.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ficus", version, about = "Strangler-fig migration proxy")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run(RunArgs),
    /// Validate a routes file and print its routes; exit 1 on errors.
    Check {
        /// The routes file.
        config: PathBuf,
    },
    /// Shadow traffic tools.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// Change a route at run time (through the admin API), or in routes.toml (`set --write`).
    #[command(subcommand)]
    Route(RouteCommand),
    /// Probe every route the way an attacker would (no token, forged tokens, other
    /// users' ids, cross-site writes, spoofed identity, scripts); exit 1 on any failure.
    Audit(AuditArgs),
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Set a route's mode and/or canary percent (pauses its autopilot).
    Set {
        name: String,
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        #[arg(long)]
        percent: Option<f64>,
        /// Edit routes.toml in place (comments kept) instead of calling the admin API;
        /// on an autopilot route, the autopilot is paused too.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        target: RouteTarget,
    },
    /// Stop the autopilot from changing this route.
    Pause {
        name: String,
        #[command(flatten)]
        target: RouteTarget,
    },
    /// Let the autopilot drive this route again.
    Resume {
        name: String,
        #[command(flatten)]
        target: RouteTarget,
    },
    /// Send the route back to legacy now (pauses its autopilot).
    Rollback {
        name: String,
        #[command(flatten)]
        target: RouteTarget,
    },
}

#[derive(clap::Args)]
struct RouteTarget {
    /// The routes file (for --write, and to find the admin API).
    #[arg(long, short, default_value = "routes.toml")]
    config: PathBuf,
    /// Admin API base URL (default: http:// + listen.admin of the routes file); with
    /// `set --write`, used to pause an autopilot route's autopilot.
    #[arg(long)]
    admin: Option<String>,
    /// Why, recorded in the event log.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(ValueEnum, Clone, Copy)]
enum ModeArg {
    Legacy,
    Shadow,
    Canary,
    Extracted,
}

impl From<ModeArg> for ficus::config::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Legacy => ficus::config::Mode::Legacy,
            ModeArg::Shadow => ficus::config::Mode::Shadow,
            ModeArg::Canary => ficus::config::Mode::Canary,
            ModeArg::Extracted => ficus::config::Mode::Extracted,
        }
    }
}

#[derive(clap::Args)]
struct AuditArgs {
    /// The routes file describing the routes to probe.
    #[arg(long, short, default_value = "routes.toml")]
    config: PathBuf,
    /// Base URL to probe, e.g. http://127.0.0.1:8080 (Ficus, or an app directly).
    #[arg(long)]
    target: String,
    /// Subject to mint a token for; give two: the attacker, then the victim.
    #[arg(long = "token-for")]
    token_for: Vec<String>,
    /// RS256/ES256 private key (PEM) to mint with, when [auth] has no HS256 secret.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// `kid` header of minted tokens.
    #[arg(long)]
    kid: Option<String>,
    /// Role claim value of minted tokens.
    #[arg(long, default_value = "member")]
    role: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    format: AuditFormat,
}

#[derive(ValueEnum, Clone, Copy)]
enum AuditFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ShadowCommand {
    /// Write a route's stored mismatches as JSON fixtures (request, legacy response,
    /// candidate response, differences) that a service's test suite can replay.
    Export {
        /// The route name.
        route: String,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The routes file (locates the store through `[shadow] store`).
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// The routes file.
    #[arg(long, short, default_value = "routes.toml")]
    config: PathBuf,
    /// Worker threads, each with its own runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// One log line per request (target ficus::access).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
    /// Unix socket for zero-downtime restarts: a new ficus with the same socket takes
    /// the listeners over from the running one.
    #[arg(long)]
    handoff_socket: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { config }) => match ficus::check::check(&config) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Run(args)) => run(args),
        Some(Command::Audit(args)) => audit(&args),
        Some(Command::Route(cmd)) => route(cmd),
        Some(Command::Shadow(ShadowCommand::Export { route, out, config })) => {
            match ficus::shadow::export(&config, &route, &out) {
                Ok(n) => {
                    println!(
                        "wrote {n} fixtures for route {route:?} to {}",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ficus: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        None => run(cli.run),
    }
}

fn run(args: RunArgs) -> ExitCode {
    // Logs go through a background writer so a slow stdout never stalls a worker.
    let (writer, _guard) = tracing_appender::non_blocking(std::io::stdout());
    let filter = tracing_subscriber::EnvFilter::try_from_env("FICUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = ficus::RunOptions {
        config: args.config,
        threads,
        access_log: args.access_log.then_some(match args.log_format {
            LogFormat::Json => ficus::access_log::Format::Json,
            LogFormat::Text => ficus::access_log::Format::Text,
        }),
        handoff_socket: args.handoff_socket,
        listeners: None,
    };
    match ficus::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ficus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn audit(args: &AuditArgs) -> ExitCode {
    let opts = ficus::audit::Options {
        config: args.config.clone(),
        target: args.target.trim_end_matches('/').to_owned(),
        tokens_for: args.token_for.clone(),
        signing_key: args.signing_key.clone(),
        kid: args.kid.clone(),
        role: args.role.clone(),
    };
    match ficus::audit::run(&opts) {
        Ok(report) => {
            match args.format {
                AuditFormat::Text => print!("{}", ficus::audit::render_text(&report)),
                AuditFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            }
            if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn route(cmd: RouteCommand) -> ExitCode {
    use ficus::route_cli::{Command as Cmd, admin_url, send, write};
    let (action, name, mode, percent, write_file, target) = match cmd {
        RouteCommand::Set {
            name,
            mode,
            percent,
            write,
            target,
        } => ("set", name, mode.map(Into::into), percent, write, target),
        RouteCommand::Pause { name, target } => ("pause", name, None, None, false, target),
        RouteCommand::Resume { name, target } => ("resume", name, None, None, false, target),
        RouteCommand::Rollback { name, target } => ("rollback", name, None, None, false, target),
    };
    let result = if write_file {
        if mode.is_none() && percent.is_none() {
            Err(anyhow::anyhow!("give --mode and/or --percent"))
        } else {
            write(
                &target.config,
                &name,
                mode,
                percent,
                target.admin,
                target.reason.as_deref(),
            )
        }
    } else {
        target
            .admin
            .map(Ok)
            .unwrap_or_else(|| admin_url(&target.config))
            .and_then(|admin| {
                send(
                    &admin,
                    &Cmd {
                        action,
                        route: name,
                        mode,
                        percent,
                        reason: target.reason,
                    },
                )
            })
            .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
