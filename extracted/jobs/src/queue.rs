//! The durable queue: the `jobs` table and the only functions that change it. Every
//! function takes a [`Conn`] inside the caller's transaction, so a job's completion can be
//! committed together with its side effect (the `notifications` row of an alert).
//!
//! Lifecycle: `queued` -> (claim) `running` with a lease (`locked_by`, `locked_until`,
//! `attempts` + 1) -> `done`, or back to `queued` with a backoff after a failure, or `dead`
//! once `max_attempts` attempts failed. A `running` job whose lease expired (its worker
//! died) is claimable again. Completion, failure, release and lease renewal are fenced by
//! the lease ([`Lease`]: worker id + attempt number), so a worker that lost its lease can
//! never overwrite the work of the worker that took the job over.

use serde::Serialize;
use serde_json::Value as Json;

use crate::db::{Conn, Dialect, Row, Value};
use crate::error::JobError;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub payload: Json,
    /// Unix seconds; not claimed before.
    pub run_at: i64,
    pub max_attempts: i64,
    /// At most one job ever exists per key (UNIQUE); `None` for no deduplication.
    pub idempotency_key: Option<String>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Done,
    Dead,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Json,
    pub idempotency_key: Option<String>,
    pub status: Status,
    pub run_at: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<Json>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, kind, payload, idempotency_key, status, run_at, attempts, max_attempts, \
                       locked_by, locked_until, last_error, result, created_at, updated_at";

fn json(field: &'static str, text: String) -> Result<Json, JobError> {
    serde_json::from_str(&text).map_err(|_| JobError::Corrupt { field, value: text })
}

impl Job {
    fn from_row(r: &Row) -> Result<Self, JobError> {
        let status = r.text(4)?;
        Ok(Self {
            id: r.int(0)?,
            kind: r.text(1)?,
            payload: json("jobs.payload", r.text(2)?)?,
            idempotency_key: r.opt_text(3)?,
            status: Status::parse(&status).ok_or(JobError::Corrupt {
                field: "jobs.status",
                value: status,
            })?,
            run_at: r.int(5)?,
            attempts: r.int(6)?,
            max_attempts: r.int(7)?,
            locked_by: r.opt_text(8)?,
            locked_until: r.opt_int(9)?,
            last_error: r.opt_text(10)?,
            result: r
                .opt_text(11)?
                .map(|t| json("jobs.result", t))
                .transpose()?,
            created_at: r.int(12)?,
            updated_at: r.int(13)?,
        })
    }

    /// The lease this job was claimed with (meaningful right after [`claim`]).
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            worker: self.locked_by.clone().unwrap_or_default(),
            attempt: self.attempts,
        }
    }
}

/// Proof of ownership of a claimed job: only the holder may finish, fail or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub worker: String,
    pub attempt: i64,
}

/// The result of [`enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: i64,
    /// `false` when a job with the same idempotency key already existed (its id is given).
    pub created: bool,
}

/// What [`fail`] did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Back to `queued`, claimable again at `run_at`.
    Retry { run_at: i64 },
    /// `max_attempts` reached: dead-lettered, never retried automatically.
    Dead,
}

/// Adds a job; a job with the same idempotency key is not added twice.
pub fn enqueue(c: &mut dyn Conn, job: &NewJob, now: i64) -> Result<Enqueued, JobError> {
    let inserted = c.query_opt(
        "INSERT INTO jobs (kind, payload, idempotency_key, status, run_at, attempts, max_attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', $4, 0, $5, $6, $6) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        &[
            job.kind.as_str().into(),
            job.payload.to_string().into(),
            job.idempotency_key.clone().into(),
            job.run_at.into(),
            job.max_attempts.max(1).into(),
            now.into(),
        ],
    )?;
    if let Some(r) = inserted {
        return Ok(Enqueued {
            id: r.int(0)?,
            created: true,
        });
    }
    let existing = c
        .query_opt(
            "SELECT id FROM jobs WHERE idempotency_key = $1",
            &[job.idempotency_key.clone().into()],
        )?
        .ok_or_else(|| {
            JobError::Job("insert of a job did nothing and found no duplicate".into())
        })?;
    Ok(Enqueued {
        id: existing.int(0)?,
        created: false,
    })
}

/// Claims the next due job for `worker` until `now + lease_secs`: a queued job whose
/// `run_at` has come, or a running job whose lease expired. Oldest `run_at` first.
pub fn claim(
    c: &mut dyn Conn,
    worker: &str,
    now: i64,
    lease_secs: i64,
) -> Result<Option<Job>, JobError> {
    let lock = match c.dialect() {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, \
         attempts = attempts + 1, updated_at = $3, \
         last_error = CASE WHEN status = 'running' THEN 'lease of ' || locked_by || ' expired' ELSE last_error END \
         WHERE id = (SELECT id FROM jobs \
                     WHERE (status = 'queued' AND run_at <= $3) OR (status = 'running' AND locked_until <= $3) \
                     ORDER BY run_at, id LIMIT 1{lock}) \
         RETURNING {COLUMNS}"
    );
    c.query_opt(
        &sql,
        &[worker.into(), (now + lease_secs).into(), now.into()],
    )?
    .map(|r| Job::from_row(&r))
    .transpose()
}

fn fenced(
    c: &mut dyn Conn,
    set: &str,
    mut params: Vec<Value>,
    lease: &Lease,
) -> Result<(), JobError> {
    let n = params.len();
    let sql = format!(
        "UPDATE jobs SET {set} WHERE id = ${} AND locked_by = ${} AND attempts = ${} AND status = 'running'",
        n + 1,
        n + 2,
        n + 3
    );
    params.extend([
        lease.id.into(),
        lease.worker.as_str().into(),
        lease.attempt.into(),
    ]);
    if c.execute(&sql, &params)? == 1 {
        Ok(())
    } else {
        Err(JobError::LeaseLost {
            id: lease.id,
            worker: lease.worker.clone(),
            attempt: lease.attempt,
        })
    }
}

/// Marks a claimed job done with its `result`; fails with [`JobError::LeaseLost`] (and the
/// caller's transaction must roll back) if the lease is no longer this worker's.
pub fn complete(c: &mut dyn Conn, lease: &Lease, result: &Json, now: i64) -> Result<(), JobError> {
    fenced(
        c,
        "status = 'done', result = $1, locked_by = NULL, locked_until = NULL, updated_at = $2",
        vec![result.to_string().into(), now.into()],
        lease,
    )
}

/// Records a failed attempt: retried at `now + backoff` while attempts remain, else dead.
pub fn fail(
    c: &mut dyn Conn,
    lease: &Lease,
    error: &str,
    now: i64,
    backoff: &Backoff,
) -> Result<Failed, JobError> {
    let row = c
        .query_opt(
            "SELECT max_attempts FROM jobs WHERE id = $1",
            &[lease.id.into()],
        )?
        .ok_or_else(|| JobError::Job(format!("job {} vanished", lease.id)))?;
    let max = row.int(0)?;
    if lease.attempt >= max {
        fenced(
            c,
            "status = 'dead', last_error = $1, locked_by = NULL, locked_until = NULL, updated_at = $2",
            vec![error.into(), now.into()],
            lease,
        )?;
        Ok(Failed::Dead)
    } else {
        let run_at = now + backoff.delay(lease.attempt);
        fenced(
            c,
            "status = 'queued', last_error = $1, run_at = $2, locked_by = NULL, locked_until = NULL, updated_at = $3",
            vec![error.into(), run_at.into(), now.into()],
            lease,
        )?;
        Ok(Failed::Retry { run_at })
    }
}

/// Gives a claimed job back untouched (graceful shutdown): queued again at once, and the
/// interrupted attempt does not count.
pub fn release(c: &mut dyn Conn, lease: &Lease, now: i64) -> Result<(), JobError> {
    fenced(
        c,
        "status = 'queued', attempts = attempts - 1, locked_by = NULL, locked_until = NULL, updated_at = $1",
        vec![now.into()],
        lease,
    )
}

/// Extends a lease to `now + lease_secs` (the worker's heartbeat while a job runs).
pub fn renew(c: &mut dyn Conn, lease: &Lease, now: i64, lease_secs: i64) -> Result<(), JobError> {
    fenced(
        c,
        "locked_until = $1, updated_at = $2",
        vec![(now + lease_secs).into(), now.into()],
        lease,
    )
}

/// Job `id`.
pub fn get(c: &mut dyn Conn, id: i64) -> Result<Option<Job>, JobError> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"),
        &[id.into()],
    )?
    .map(|r| Job::from_row(&r))
    .transpose()
}

/// The newest `limit` jobs, optionally of one status and/or kind.
pub fn list(
    c: &mut dyn Conn,
    status: Option<Status>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<Job>, JobError> {
    let rows = c.query(
        &format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 = '' OR status = $1) AND ($2 = '' OR kind = $2) \
             ORDER BY id DESC LIMIT $3"
        ),
        &[
            status.map_or("", Status::as_str).into(),
            kind.unwrap_or("").into(),
            limit.into(),
        ],
    )?;
    rows.iter().map(Job::from_row).collect()
}

/// Jobs per (kind, status) for `queued`, `running` and `dead` (the queue-depth gauge).
pub fn depth(c: &mut dyn Conn) -> Result<Vec<(String, Status, i64)>, JobError> {
    let rows = c.query(
        "SELECT kind, status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'dead') \
         GROUP BY kind, status ORDER BY kind, status",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let s = r.text(1)?;
            Ok((
                r.text(0)?,
                Status::parse(&s).ok_or(JobError::Corrupt {
                    field: "jobs.status",
                    value: s,
                })?,
                r.int(2)?,
            ))
        })
        .collect()
}

/// Exponential backoff between attempts: `base * 2^(attempt - 1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_secs: i64,
    pub max_secs: i64,
}

impl Backoff {
    /// Seconds to wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: i64) -> i64 {
        let shift = u32::try_from((attempt - 1).clamp(0, 30)).unwrap_or(30);
        self.base_secs
            .max(0)
            .saturating_mul(1_i64 << shift)
            .min(self.max_secs.max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base_secs: 30,
            max_secs: 100,
        };
        assert_eq!(
            [1, 2, 3, 4, 40].map(|a| b.delay(a)),
            [30, 60, 100, 100, 100]
        );
        assert_eq!(
            Backoff {
                base_secs: 0,
                max_secs: 10
            }
            .delay(3),
            0
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [Status::Queued, Status::Running, Status::Done, Status::Dead] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("failed"), None);
    }
}
