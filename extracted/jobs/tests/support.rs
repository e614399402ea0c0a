//! Helpers: generated database files, a worker on them, a recording webhook receiver,
//! bounded polling.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fitness_data::rusqlite::Connection;
use jobs::{Clock, Db, JobMetrics, Notifier, Settings, Worker};
use service_kit::Database;

pub use fitness_data::time::{DATASET_NOW, DAY};

/// A generated database file in a temp dir (removed on drop).
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestDb {
    /// `GenerateConfig::small(seed, users)` written to `<tmp>/fitness.db`.
    pub fn generate(seed: u64, users: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fitness.db");
        let mut conn = fitness_data::open(&path).unwrap();
        fitness_data::generate(&mut conn, &fitness_data::GenerateConfig::small(seed, users))
            .unwrap();
        Self { dir, path }
    }

    /// A separate connection for assertions.
    pub fn conn(&self) -> Connection {
        fitness_data::open(&self.path).unwrap()
    }

    /// A path in the temp dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One integer from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// Settings for in-process tests: scheduler off, 3 attempts, 10 s base backoff.
pub fn settings(path: &Path) -> Settings {
    let mut s = Settings::new(Database::Sqlite(path.to_owned()));
    s.max_attempts = 3;
    s.backoff = jobs::queue::Backoff {
        base_secs: 10,
        max_secs: 1000,
    };
    s.lease_secs = 30;
    s.poll_interval = Duration::from_millis(20);
    s
}

/// A worker on `db`'s file with `notifier`, at a manual clock.
pub async fn worker(
    db: &TestDb,
    settings: Settings,
    notifier: Arc<dyn Notifier>,
    clock: &Clock,
) -> Worker {
    let d = Db::open_sqlite(&db.path).unwrap();
    d.migrate().await.unwrap();
    Worker::new(
        d,
        notifier,
        settings,
        clock.clone(),
        JobMetrics::new().unwrap(),
    )
}

/// Subscriptions an expiry alert is due for at `now` within `days`.
pub fn expected_alerts(db: &TestDb, now: i64, days: i64) -> i64 {
    db.conn()
        .query_row(
            "SELECT COUNT(*) FROM subscriptions WHERE status IN ('trial', 'active', 'cancelled') \
             AND current_period_end > ?1 AND current_period_end <= ?2",
            [now, now + days * DAY],
            |r| r.get(0),
        )
        .unwrap()
}

/// Polls `f` until it returns `Some` or `limit` passes (then panics with `what`).
pub async fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A webhook receiver on 127.0.0.1:0 recording `Idempotency-Key`s; answers `status`.
pub struct Receiver {
    pub running: service_kit::Running,
    pub keys: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(status: StatusCode) -> Self {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/notify",
                post(
                    |State((keys, status)): State<(Arc<Mutex<Vec<String>>>, StatusCode)>,
                     headers: HeaderMap,
                     body: axum::body::Bytes| async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let n: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(n["key"], key.as_str(), "header and body keys agree");
                        keys.lock().unwrap().push(key);
                        status
                    },
                ),
            )
            .with_state((Arc::clone(&keys), status));
        let running = service_kit::start(app, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { running, keys }
    }

    pub fn url(&self) -> String {
        format!("{}/notify", self.running.url())
    }

    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}
