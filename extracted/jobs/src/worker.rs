//! The worker: claims due jobs, runs them with a lease heartbeat, records the outcome
//! (done, retry with backoff, dead), and on shutdown lets the current job finish within the
//! grace period or releases its lease. Also the scheduler loop that enqueues due scheduled
//! runs. [`Worker`] is cheap to clone; every loop shares one database thread and notifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::JobError;
use crate::kind::Kind;
use crate::metrics::JobMetrics;
use crate::notify::Notifier;
use crate::queue::{self, Enqueued, Failed, Job, NewJob};
use crate::schedule::{ScheduleError, Scheduler};
use crate::tasks::{self, Ctx, Finish};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Completed with this result.
    Done(Json),
    /// Failed; queued again for `run_at`.
    Retry { run_at: i64, error: String },
    /// Failed on its last attempt; dead-lettered.
    Dead { error: String },
    /// Shutdown: the lease was given back, the job is queued again.
    Released,
    /// Another worker owns the job now; this attempt committed nothing.
    LeaseLost,
}

/// One processed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub job_id: i64,
    pub kind: String,
    pub outcome: Outcome,
}

struct Inner {
    db: Db,
    notifier: Arc<dyn Notifier>,
    settings: Arc<Settings>,
    clock: Clock,
    metrics: JobMetrics,
    wake: Notify,
}

/// The job worker; cheap to clone.
#[derive(Clone)]
pub struct Worker(Arc<Inner>);

impl Worker {
    /// A worker on `db` (already migrated) delivering to `notifier`.
    pub fn new(
        db: Db,
        notifier: Arc<dyn Notifier>,
        settings: Settings,
        clock: Clock,
        metrics: JobMetrics,
    ) -> Self {
        Self(Arc::new(Inner {
            db,
            notifier,
            settings: Arc::new(settings),
            clock,
            metrics,
            wake: Notify::new(),
        }))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The metrics.
    pub fn metrics(&self) -> &JobMetrics {
        &self.0.metrics
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// Validates and enqueues a job of `kind`, due `delay_secs` from now; wakes idle loops.
    pub async fn enqueue(
        &self,
        kind: Kind,
        payload: Json,
        idempotency_key: Option<String>,
        delay_secs: i64,
    ) -> Result<Enqueued, JobError> {
        kind.validate(&payload)?;
        let now = self.0.clock.now();
        let job = NewJob {
            kind: kind.as_str().to_owned(),
            payload: if payload.is_null() {
                Json::Object(Default::default())
            } else {
                payload
            },
            run_at: now + delay_secs.max(0),
            max_attempts: self.0.settings.max_attempts,
            idempotency_key,
        };
        let e = self
            .0
            .db
            .transaction(move |c| queue::enqueue(c, &job, now))
            .await?;
        self.0.wake.notify_waiters();
        Ok(e)
    }

    /// Claims and runs one due job as `worker_id`; `None` when nothing is due.
    pub async fn run_next(&self, worker_id: &str) -> Result<Option<Processed>, JobError> {
        let (_tx, mut rx) = watch::channel(false);
        self.claim_and_run(worker_id, &mut rx).await
    }

    /// Runs due jobs until none is due (tests, `jobs drain`); returns what it processed.
    pub async fn drain(&self, worker_id: &str) -> Result<Vec<Processed>, JobError> {
        let mut out = Vec::new();
        while let Some(p) = self.run_next(worker_id).await? {
            out.push(p);
        }
        Ok(out)
    }

    async fn claim_and_run(
        &self,
        worker_id: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Processed>, JobError> {
        let now = self.0.clock.now();
        let lease_secs = self.0.settings.lease_secs;
        let id = worker_id.to_owned();
        let Some(job) = self
            .0
            .db
            .transaction(move |c| queue::claim(c, &id, now, lease_secs))
            .await?
        else {
            return Ok(None);
        };
        let outcome = self.process(&job, shutdown).await?;
        Ok(Some(Processed {
            job_id: job.id,
            kind: job.kind,
            outcome,
        }))
    }

    async fn process(
        &self,
        job: &Job,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Outcome, JobError> {
        let inner = &self.0;
        let lease = job.lease();
        let kind = job.kind.clone();
        let started = Instant::now();
        tracing::info!(job = job.id, kind = %kind, attempt = job.attempts, "job started");
        let result = if job.attempts > job.max_attempts {
            // Claimed again after its worker died on the last attempt: a job that keeps
            // killing workers must end, not loop.
            Err(JobError::Job(format!(
                "attempt {} exceeds max_attempts {} (previous worker died: {})",
                job.attempts,
                job.max_attempts,
                job.last_error.as_deref().unwrap_or("unknown")
            )))
        } else {
            let ctx = Ctx {
                db: inner.db.clone(),
                notifier: Arc::clone(&inner.notifier),
                settings: Arc::clone(&inner.settings),
                now: inner.clock.now(),
            };
            let work = tasks::run(&ctx, job);
            tokio::pin!(work);
            let beat_every = Duration::from_millis(
                u64::try_from(inner.settings.lease_secs.saturating_mul(1000) / 3)
                    .unwrap_or(1000)
                    .max(100),
            );
            let mut beat =
                tokio::time::interval_at(tokio::time::Instant::now() + beat_every, beat_every);
            let mut grace: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = beat.tick() => {
                        let (l, now, secs) = (lease.clone(), inner.clock.now(), inner.settings.lease_secs);
                        if let Err(e) = inner.db.transaction(move |c| queue::renew(c, &l, now, secs)).await {
                            tracing::warn!(job = job.id, error = %e, "cannot renew lease; abandoning the attempt");
                            return Ok(Outcome::LeaseLost);
                        }
                    }
                    _ = shutdown.changed(), if grace.is_none() => {
                        grace = Some(tokio::time::Instant::now() + inner.settings.shutdown_grace);
                        tracing::info!(job = job.id, "shutdown: waiting for the running job");
                    }
                    _ = tokio::time::sleep_until(grace.unwrap_or_else(tokio::time::Instant::now)), if grace.is_some() => {
                        let (l, now) = (lease.clone(), inner.clock.now());
                        inner.db.transaction(move |c| queue::release(c, &l, now)).await?;
                        inner.metrics.released.with_label_values(&[&kind]).inc();
                        tracing::warn!(job = job.id, kind = %kind, "shutdown: lease released, job queued again");
                        return Ok(Outcome::Released);
                    }
                }
            }
        };
        inner
            .metrics
            .duration
            .with_label_values(&[&kind])
            .observe(started.elapsed().as_secs_f64());
        let now = inner.clock.now();
        let outcome = match result {
            Ok(Finish::Completed(v)) => Outcome::Done(v),
            Ok(Finish::Complete(v)) => {
                let (l, out) = (lease.clone(), v.clone());
                match inner
                    .db
                    .transaction(move |c| queue::complete(c, &l, &out, now))
                    .await
                {
                    Ok(()) => Outcome::Done(v),
                    Err(JobError::LeaseLost { .. }) => Outcome::LeaseLost,
                    Err(e) => return Err(e),
                }
            }
            Err(JobError::LeaseLost { .. }) => Outcome::LeaseLost,
            Err(e) => {
                let error = e.to_string();
                inner.metrics.failed.with_label_values(&[&kind]).inc();
                let (l, err, backoff) = (lease.clone(), error.clone(), inner.settings.backoff);
                match inner
                    .db
                    .transaction(move |c| queue::fail(c, &l, &err, now, &backoff))
                    .await
                {
                    Ok(Failed::Retry { run_at }) => {
                        inner.metrics.retried.with_label_values(&[&kind]).inc();
                        Outcome::Retry { run_at, error }
                    }
                    Ok(Failed::Dead) => {
                        inner.metrics.dead.with_label_values(&[&kind]).inc();
                        Outcome::Dead { error }
                    }
                    Err(JobError::LeaseLost { .. }) => Outcome::LeaseLost,
                    Err(e) => return Err(e),
                }
            }
        };
        match &outcome {
            Outcome::Done(v) => {
                inner.metrics.processed.with_label_values(&[&kind]).inc();
                if kind == Kind::FavoriteCounts.as_str() {
                    inner
                        .metrics
                        .drift
                        .set(v.get("drifted").and_then(Json::as_i64).unwrap_or(0));
                }
                tracing::info!(job = job.id, kind = %kind, result = %v, "job done");
            }
            Outcome::Retry { run_at, error } => {
                tracing::warn!(job = job.id, kind = %kind, %error, run_at, "job failed, will retry");
            }
            Outcome::Dead { error } => {
                tracing::error!(job = job.id, kind = %kind, %error, "job dead-lettered");
            }
            Outcome::LeaseLost => {
                tracing::warn!(job = job.id, kind = %kind, "lease lost; another worker owns the job");
            }
            Outcome::Released => {}
        }
        Ok(outcome)
    }

    /// Claims and runs jobs as `worker_id` until `shutdown` becomes true.
    pub async fn run_loop(&self, worker_id: String, mut shutdown: watch::Receiver<bool>) {
        let poll = self.0.settings.poll_interval;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.claim_and_run(&worker_id, &mut shutdown).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => tracing::error!(source = "internal", error = %e, "worker loop error"),
            }
            tokio::select! {
                () = self.0.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
        tracing::info!(worker = %worker_id, "worker loop stopped");
    }

    /// Enqueues due scheduled runs (key `schedule:{kind}:{fire_time}`) every second until
    /// `shutdown` becomes true.
    pub async fn run_scheduler(
        &self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ScheduleError> {
        let mut scheduler = Scheduler::new(&self.0.settings.schedules, self.0.clock.now())?;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            for (kind, fire) in scheduler.due(self.0.clock.now()) {
                match self
                    .enqueue(
                        kind,
                        Json::Object(Default::default()),
                        Some(Scheduler::key(kind, fire)),
                        0,
                    )
                    .await
                {
                    Ok(e) => {
                        tracing::info!(kind = %kind, fire, id = e.id, created = e.created, "scheduled run enqueued")
                    }
                    Err(e) => {
                        tracing::error!(kind = %kind, error = %e, "cannot enqueue scheduled run")
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                r = shutdown.changed() => if r.is_err() { return Ok(()) },
            }
        }
    }
}
