//! jobs: the background-job worker of the fitness platform (issue 3).
//!
//! A durable queue in the shared database (SQLite by default, PostgreSQL with
//! `DATABASE_URL`), lease-based claiming with retries, backoff and dead-lettering
//! ([`queue`]), the jobs themselves ([`tasks`]: expiry alerts, expiry sweep, ranking
//! recompute, favorite-count reconciliation, weekly digest, session cleanup), pluggable
//! notifiers ([`notify`]), cron schedules ([`schedule`]) and an admin API ([`http`]).
//! Design and the exactly-once-effect argument: `docs/jobs.md`.
//!
//! In-process: [`connect`] the database, [`build_notifier`], then [`start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), jobs::JobError> {
//! let mut settings = jobs::Settings::from_env().map_err(|e| jobs::JobError::Job(e.to_string()))?;
//! let db = jobs::connect(&settings.database).await?;
//! let notifier = jobs::build_notifier(&settings.notifier)?;
//! let clock = jobs::clock_for(&settings.clock, &db).await?;
//! settings.listen = "127.0.0.1:0".parse().unwrap_or(settings.listen);
//! let running = jobs::start(settings, db, notifier, clock).await?;
//! println!("admin on {}", running.url());
//! running.stop().await;
//! # Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod kind;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod queue;
pub mod schedule;
pub mod tasks;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use service_kit::Database;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use config::{ClockConfig, NotifierConfig, Settings};
pub use db::Db;
pub use error::JobError;
pub use kind::Kind;
pub use metrics::JobMetrics;
pub use notify::{FileNotifier, LogNotifier, Notifier, WebhookNotifier};
pub use worker::{Outcome, Processed, Worker};

/// Opens the configured database and creates the worker's tables if missing.
pub async fn connect(database: &Database) -> Result<Db, JobError> {
    let db = match database {
        Database::Sqlite(path) => Db::open_sqlite(path)?,
        Database::Postgres { url, schema, .. } => {
            Db::connect_postgres(url, schema.as_deref()).await?
        }
    };
    db.migrate().await?;
    Ok(db)
}

/// The notifier `config` describes.
pub fn build_notifier(config: &NotifierConfig) -> Result<Arc<dyn Notifier>, JobError> {
    Ok(match config {
        NotifierConfig::Log => Arc::new(LogNotifier),
        NotifierConfig::File(path) => Arc::new(FileNotifier::open(path)?),
        NotifierConfig::Webhook { url, timeout } => Arc::new(WebhookNotifier::new(url, *timeout)?),
    })
}

/// The clock `config` describes (`dataset` reads `meta.dataset_now` from `db`).
pub async fn clock_for(config: &ClockConfig, db: &Db) -> Result<Clock, JobError> {
    Ok(match config {
        ClockConfig::System => Clock::system(),
        ClockConfig::StartAt(t) => Clock::starting_at(*t),
        ClockConfig::Dataset => {
            let row = db
                .transaction(|c| {
                    c.query_opt("SELECT value FROM meta WHERE key = 'dataset_now'", &[])
                })
                .await?
                .ok_or_else(|| {
                    JobError::Unavailable(
                        "JOBS_CLOCK=dataset but meta.dataset_now is missing".into(),
                    )
                })?;
            Clock::starting_at(row.int(0)?)
        }
    })
}

/// A worker running in the background: its worker loops, its scheduler (when enabled) and
/// its admin server.
pub struct RunningWorker {
    /// Where the admin API listens.
    pub addr: SocketAddr,
    pub worker: Worker,
    shutdown: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    server: Option<service_kit::Running>,
}

impl RunningWorker {
    /// The admin base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful shutdown: stop claiming; a running job gets `JOBS_SHUTDOWN_GRACE_SECS` to
    /// finish, else its lease is released; then the admin server drains and stops.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for l in self.loops.drain(..) {
            let _ = l.await;
        }
        if let Some(server) = self.server.take() {
            let _ = server.stop().await;
        }
    }
}

/// Starts `settings.concurrency` worker loops, the scheduler (if `settings.scheduler`) and
/// the admin API on `settings.listen` (use port 0 in tests). `db` must be migrated
/// ([`connect`] does it).
pub async fn start(
    settings: Settings,
    db: Db,
    notifier: Arc<dyn Notifier>,
    clock: Clock,
) -> Result<RunningWorker, JobError> {
    db.migrate().await?;
    let metrics = JobMetrics::new().map_err(|e| JobError::Job(format!("metrics: {e}")))?;
    let listen = settings.listen;
    let worker = Worker::new(db, notifier, settings, clock, metrics);
    let (tx, rx) = watch::channel(false);
    let mut loops = Vec::new();
    let s = worker.settings();
    if s.scheduler {
        // Validate the schedules before spawning so a bad one fails startup.
        schedule::Scheduler::new(&s.schedules, 0).map_err(|e| JobError::Job(e.to_string()))?;
        let (w, rx) = (worker.clone(), rx.clone());
        loops.push(tokio::spawn(async move {
            if let Err(e) = w.run_scheduler(rx).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        }));
    }
    for i in 0..s.concurrency {
        let (w, rx) = (worker.clone(), rx.clone());
        let id = if s.concurrency == 1 {
            s.worker_id.clone()
        } else {
            format!("{}-{i}", s.worker_id)
        };
        loops.push(tokio::spawn(async move { w.run_loop(id, rx).await }));
    }
    let server = service_kit::start(http::app(worker.clone()), listen)
        .await
        .map_err(|e| JobError::Unavailable(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!(addr = %server.addr, worker = %worker.settings().worker_id, "jobs worker started");
    Ok(RunningWorker {
        addr: server.addr,
        worker,
        shutdown: tx,
        loops,
        server: Some(server),
    })
}
