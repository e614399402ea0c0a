//! The `jobs` binary: `jobs run` (default) starts the worker, its scheduler and its admin
//! API; `jobs enqueue KIND [--payload JSON]` adds a job on demand; `jobs list` shows recent
//! jobs. Configuration comes from the environment (`docs/jobs.md`); this is the only place
//! that prints the error chain.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jobs", about = "Ficus background-job worker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the worker, the scheduler and the admin API until SIGTERM / Ctrl-C.
    Run,
    /// Enqueue one job now.
    Enqueue {
        /// expiry-alerts, expiry-alert, expire-subscriptions, ranking-recompute,
        /// favorite-counts, weekly-digest or session-cleanup.
        kind: String,
        /// The payload, a JSON object.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// At most one job ever exists per key.
        #[arg(long)]
        key: Option<String>,
        /// Run no earlier than this many seconds from now.
        #[arg(long, default_value_t = 0)]
        delay_secs: i64,
    },
    /// Print recent jobs as JSON.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn main() -> ExitCode {
    service_kit::init_tracing();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = jobs::Settings::from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let db = jobs::connect(&settings.database)
            .await
            .context("cannot open the database")?;
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => serve(settings, db).await,
            Command::Enqueue {
                kind,
                payload,
                key,
                delay_secs,
            } => {
                let kind = jobs::Kind::parse(&kind)?;
                let payload: serde_json::Value = serde_json::from_str(&payload)
                    .with_context(|| format!("--payload {payload:?} is not valid JSON"))?;
                let clock = jobs::clock_for(&settings.clock, &db).await?;
                let metrics = jobs::JobMetrics::new()?;
                let worker = jobs::Worker::new(
                    db,
                    std::sync::Arc::new(jobs::LogNotifier),
                    settings,
                    clock,
                    metrics,
                );
                let e = worker.enqueue(kind, payload, key, delay_secs).await?;
                println!(
                    "{}",
                    serde_json::json!({"id": e.id, "kind": kind.as_str(), "created": e.created})
                );
                Ok(())
            }
            Command::List { status, limit } => {
                let status = status
                    .map(|s| {
                        jobs::queue::Status::parse(&s).with_context(|| {
                            format!(
                                "unknown --status {s:?}: expected queued, running, done or dead"
                            )
                        })
                    })
                    .transpose()?;
                let list = db
                    .transaction(move |c| jobs::queue::list(c, status, None, limit))
                    .await?;
                println!("{}", serde_json::to_string_pretty(&list)?);
                Ok(())
            }
        }
    })
}

async fn serve(settings: jobs::Settings, db: jobs::Db) -> anyhow::Result<()> {
    if settings.test_hook.is_some() {
        tracing::warn!(hook = ?settings.test_hook, "JOBS_TEST_HOOK is set: test-only fault injection is active");
    }
    let notifier =
        jobs::build_notifier(&settings.notifier).context("cannot set up the notifier")?;
    let clock = jobs::clock_for(&settings.clock, &db).await?;
    let running = jobs::start(settings, db, notifier, clock).await?;
    // The first stdout line is the admin address (tests and the demo read it).
    println!("jobs admin listening on {}", running.url());
    service_kit::shutdown_signal().await;
    running.stop().await;
    tracing::info!("jobs worker stopped");
    Ok(())
}
