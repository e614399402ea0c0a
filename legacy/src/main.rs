//! The `legacy` binary: parse arguments, init tracing, open (or generate) the database, serve
//! until SIGTERM or Ctrl-C. The only place that prints the error chain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fitness_data::schema::{check_version, is_populated};
use fitness_data::{GenerateConfig, generate};
use fitness_legacy::{AppState, Config};

const DEFAULT_DB: &str = "data/fitness.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// The fitness monolith stand-in (deliberately insecure; binds to loopback by default).
#[derive(Debug, Parser)]
#[command(name = "legacy", version)]
struct Cli {
    /// SQLite database file [env: LEGACY_DB] [default: data/fitness.db]
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Address to listen on [env: LEGACY_LISTEN] [default: 127.0.0.1:8081]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Generate the database first if it is missing or empty (with --seed and --users).
    #[arg(long)]
    generate_if_missing: bool,
    /// Seed of the generator.
    #[arg(long, global = true, default_value_t = 42)]
    seed: u64,
    /// Number of users to generate.
    #[arg(long, global = true, default_value_t = 10_000)]
    users: u32,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the dataset into --db (which must not exist yet) and exit.
    Generate,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legacy: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let db = cli
        .db
        .clone()
        .or_else(|| std::env::var_os("LEGACY_DB").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let cfg = GenerateConfig {
        seed: cli.seed,
        users: cli.users,
        ..GenerateConfig::default()
    };
    match cli.command {
        Some(Command::Generate) => {
            if db.exists() {
                bail!(
                    "database {} already exists; remove it first to regenerate",
                    db.display()
                );
            }
            generate_into(&db, &cfg)
        }
        None => serve(&cli, &db, &cfg),
    }
}

fn generate_into(db: &std::path::Path, cfg: &GenerateConfig) -> anyhow::Result<()> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let started = Instant::now();
    let mut conn =
        fitness_data::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let summary = generate(&mut conn, cfg)
        .with_context(|| format!("cannot generate data into {}", db.display()))?;
    tracing::info!(db = %db.display(), seed = cfg.seed, ?summary, elapsed_ms = started.elapsed().as_millis() as u64, "generated dataset");
    Ok(())
}

fn serve(cli: &Cli, db: &std::path::Path, cfg: &GenerateConfig) -> anyhow::Result<()> {
    let listen = match cli.listen {
        Some(addr) => addr,
        None => std::env::var("LEGACY_LISTEN")
            .unwrap_or_else(|_| DEFAULT_LISTEN.to_owned())
            .parse()
            .context("invalid LEGACY_LISTEN: expected an address like 127.0.0.1:8081")?,
    };
    let populated = db.exists() && {
        let conn =
            fitness_data::open(db).with_context(|| format!("cannot open {}", db.display()))?;
        is_populated(&conn)?
    };
    if !populated {
        if !cli.generate_if_missing {
            bail!(
                "database {} is missing or empty; run `legacy generate --db {}` or pass --generate-if-missing",
                db.display(),
                db.display()
            );
        }
        if db.exists() {
            std::fs::remove_file(db)
                .with_context(|| format!("cannot remove empty database {}", db.display()))?;
        }
        generate_into(db, cfg)?;
    }
    let conn = fitness_data::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    check_version(&conn).with_context(|| format!("database {}", db.display()))?;
    let state = AppState::new(conn, Config::from_env());

    eprintln!("{}", banner(listen, db));
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "legacy is listening beyond loopback: it is deliberately insecure");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "legacy listening");
        // One plain line on stdout, for scripts and tests that start it on port 0.
        println!("legacy listening on http://{addr}");
        fitness_legacy::serve(listener, state, shutdown_signal())
            .await
            .context("server failed")?;
        tracing::info!("legacy stopped");
        Ok(())
    })
}

fn banner(listen: SocketAddr, db: &std::path::Path) -> String {
    let line = "!".repeat(78);
    format!(
        "{line}\n!! legacy: DELIBERATELY INSECURE fitness monolith (see docs/legacy.md)\n\
         !! holes on purpose: no/any auth, IDOR on /api/users/{{id}}, no CSRF defence, reflected XSS in search\n\
         !! listening on http://{listen} (database {}); keep it on loopback\n{line}",
        db.display()
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}
