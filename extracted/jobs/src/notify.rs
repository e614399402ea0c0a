//! Where alerts and digests go: the [`Notifier`] trait and its three implementations —
//! [`LogNotifier`] (a log line), [`FileNotifier`] (JSON lines in a file) and
//! [`WebhookNotifier`] (HTTP POST with an `Idempotency-Key` header).
//!
//! Delivery is at-least-once: a worker that dies after delivering but before committing
//! delivers again on retry. Exactly-once *effect* comes from the receiver being idempotent
//! on [`Notification::key`]: the file notifier remembers every key it wrote and skips a
//! known one; a webhook receiver is expected to do the same (and may answer 409 for a key it
//! has seen, which counts as delivered). The log notifier is not idempotent (a log line may
//! repeat after a crash); it is for development.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One message to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The idempotency key, e.g. `expiry-alert:42:1748736000`.
    pub key: String,
    /// `expiry-alert` or `weekly-digest`.
    pub kind: String,
    pub user_id: i64,
    pub subject: String,
    pub body: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now.
    Delivered,
    /// The receiver already had this key; nothing was sent again.
    AlreadyDelivered,
}

/// A failed delivery (the job is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot write notification file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("webhook {url} failed: {reason}")]
    Webhook { url: String, reason: String },
    #[error("notifier state poisoned")]
    Poisoned,
}

/// A boxed delivery future.
pub type DeliveryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Delivery, NotifyError>> + Send + 'a>>;

/// A destination for notifications.
pub trait Notifier: Send + Sync + 'static {
    /// `log`, `file` or `webhook` (metrics, logs).
    fn name(&self) -> &'static str;
    /// Sends `n`, or reports that its key was already delivered.
    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a>;
}

/// Logs each notification at `info` (not idempotent: development only).
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move {
            tracing::info!(key = %n.key, kind = %n.kind, user_id = n.user_id, subject = %n.subject, "notification");
            Ok(Delivery::Delivered)
        })
    }
}

/// Appends each notification as one JSON line; skips keys already in the file. The keys
/// are read once when opened, so one process at a time should write a given file.
#[derive(Debug)]
pub struct FileNotifier {
    path: PathBuf,
    seen: Mutex<HashSet<String>>,
}

impl FileNotifier {
    /// Opens (or prepares to create) `path` and loads the keys it already holds.
    pub fn open(path: &Path) -> Result<Self, NotifyError> {
        let file_err = |source| NotifyError::File {
            path: path.to_owned(),
            source,
        };
        let mut seen = HashSet::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    // A torn last line (crash mid-write) has no key we can trust: skip it.
                    if let Ok(n) = serde_json::from_str::<Notification>(line) {
                        seen.insert(n.key);
                    }
                }
                if !text.is_empty() && !text.ends_with('\n') {
                    // Terminate the torn line so the next record starts on a line of its own.
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(path)
                        .and_then(|mut f| f.write_all(b"\n"))
                        .map_err(file_err)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_err(e)),
        }
        Ok(Self {
            path: path.to_owned(),
            seen: Mutex::new(seen),
        })
    }

    /// Every notification in `path`, in order (tests, tooling).
    pub fn read_all(path: &Path) -> Result<Vec<Notification>, NotifyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(NotifyError::File {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    fn append(&self, n: &Notification) -> Result<Delivery, NotifyError> {
        let mut seen = self.seen.lock().map_err(|_| NotifyError::Poisoned)?;
        if seen.contains(&n.key) {
            return Ok(Delivery::AlreadyDelivered);
        }
        let file_err = |source| NotifyError::File {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(n).map_err(|e| file_err(e.into()))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(file_err)?;
        f.write_all(line.as_bytes()).map_err(file_err)?;
        f.sync_data().map_err(file_err)?;
        seen.insert(n.key.clone());
        Ok(Delivery::Delivered)
    }
}

impl Notifier for FileNotifier {
    fn name(&self) -> &'static str {
        "file"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move { self.append(n) })
    }
}

/// POSTs each notification as JSON to a URL with `Idempotency-Key: <key>`. 2xx is
/// delivered, 409 means the receiver already had the key, anything else is retried.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: String,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier posting to `url` with a per-request `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| NotifyError::Webhook {
                url: url.to_owned(),
                reason: format!("cannot build client: {e}"),
            })?;
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let fail = |reason: String| NotifyError::Webhook {
                url: self.url.clone(),
                reason,
            };
            let res = self
                .client
                .post(&self.url)
                .header("idempotency-key", &n.key)
                .json(n)
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            match res.status().as_u16() {
                200..=299 => Ok(Delivery::Delivered),
                409 => Ok(Delivery::AlreadyDelivered),
                s => Err(fail(format!("status {s}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(key: &str) -> Notification {
        Notification {
            key: key.into(),
            kind: "expiry-alert".into(),
            user_id: 1,
            subject: "s".into(),
            body: serde_json::json!({}),
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn file_notifier_is_idempotent_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.jsonl");
        let f = FileNotifier::open(&path).unwrap();
        assert_eq!(f.deliver(&note("a")).await.unwrap(), Delivery::Delivered);
        assert_eq!(
            f.deliver(&note("a")).await.unwrap(),
            Delivery::AlreadyDelivered
        );
        // A torn line from a crash is ignored, the keys before it still count.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\": \"b\", \"ki")
            .unwrap();
        let g = FileNotifier::open(&path).unwrap();
        assert_eq!(
            g.deliver(&note("a")).await.unwrap(),
            Delivery::AlreadyDelivered
        );
        assert_eq!(g.deliver(&note("c")).await.unwrap(), Delivery::Delivered);
        let keys: Vec<String> = FileNotifier::read_all(&path)
            .unwrap()
            .into_iter()
            .map(|n| n.key)
            .collect();
        assert_eq!(keys, ["a", "c"]);
    }
}
