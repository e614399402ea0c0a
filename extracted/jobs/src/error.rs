//! [`JobError`], the error of the queue, the storage and every job. The binary wraps it in
//! `anyhow`; the admin API maps it to `service_kit::ApiError` (see [`JobError::into_api`]).

use service_kit::ApiError;

use crate::notify::NotifyError;

/// What a queue operation or a job can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] fitness_data::rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// The database cannot be used right now (thread gone, file missing, not generated).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value cannot be read as what it should be.
    #[error("invalid stored {field}: {value:?}")]
    Corrupt { field: &'static str, value: String },
    /// `kind` names no job.
    #[error(
        "unknown job kind {0:?}; known kinds: expiry-alerts, expiry-alert, expire-subscriptions, ranking-recompute, favorite-counts, weekly-digest, session-cleanup"
    )]
    UnknownKind(String),
    /// The payload does not fit the job kind.
    #[error("invalid payload for {kind}: {reason}")]
    InvalidPayload { kind: String, reason: String },
    /// The notifier refused or failed; the job is retried.
    #[error("notifier: {0}")]
    Notify(#[from] NotifyError),
    /// This worker's lease on job `id` expired and another worker may own it now; nothing
    /// of this attempt was committed.
    #[error("lease on job {id} lost (attempt {attempt} of worker {worker:?})")]
    LeaseLost {
        id: i64,
        worker: String,
        attempt: i64,
    },
    /// Anything else a job reports (a failed step with its reason).
    #[error("{0}")]
    Job(String),
}

impl JobError {
    /// The HTTP view: payload and kind errors are the caller's, the rest are ours.
    pub fn into_api(self) -> ApiError {
        match self {
            Self::UnknownKind(_) => ApiError::NotFound(self.to_string()),
            Self::InvalidPayload { .. } => ApiError::BadRequest(self.to_string()),
            Self::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
