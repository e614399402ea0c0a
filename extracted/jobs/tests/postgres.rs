//! The PostgreSQL path, `#[ignore]`d: run with `DATABASE_URL=postgres://...` and
//! `cargo test -p jobs -- --include-ignored postgres` (`scripts/postgres-test.sh`). Each
//! test loads a fresh generated schema and drops it.

use std::sync::Arc;

use jobs::notify::FileNotifier;
use jobs::queue::{self, NewJob};
use jobs::{Clock, Db, JobMetrics, Kind, Outcome, Worker};
use serde_json::json;

use crate::support::{DATASET_NOW, settings};

async fn pg_worker(schema: &str, url: &str, file: &std::path::Path) -> Worker {
    let db = Db::connect_postgres(url, Some(schema)).await.unwrap();
    db.migrate().await.unwrap();
    Worker::new(
        db,
        Arc::new(FileNotifier::open(file).unwrap()),
        settings(std::path::Path::new("unused")),
        Clock::manual(DATASET_NOW),
        JobMetrics::new().unwrap(),
    )
}

#[tokio::test]
#[ignore = "needs DATABASE_URL=postgres://..."]
async fn postgres_alerts_once_and_every_job_runs() {
    let url = service_kit::testing::postgres_url().expect("DATABASE_URL=postgres://...");
    let schema = service_kit::testing::pg_schema(&url, "jobs", 7, 200)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n.jsonl");
    let w = pg_worker(&schema, &url, &file).await;

    w.enqueue(Kind::ExpiryAlerts, json!({}), None, 0)
        .await
        .unwrap();
    let first = w.drain("pg").await.unwrap();
    assert!(first.len() > 1, "{first:?}");
    let sent = FileNotifier::read_all(&file).unwrap().len();
    assert_eq!(sent, first.len() - 1);
    w.enqueue(Kind::ExpiryAlerts, json!({}), None, 0)
        .await
        .unwrap();
    let again = w.drain("pg").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(FileNotifier::read_all(&file).unwrap().len(), sent);

    for kind in [
        Kind::ExpireSubscriptions,
        Kind::RankingRecompute,
        Kind::FavoriteCounts,
        Kind::WeeklyDigest,
        Kind::SessionCleanup,
    ] {
        w.enqueue(kind, json!({}), None, 0).await.unwrap();
        let done = w.drain("pg").await.unwrap();
        assert!(
            matches!(done.as_slice(), [p] if matches!(p.outcome, Outcome::Done(_))),
            "{kind}: {done:?}"
        );
    }
    service_kit::testing::drop_schema(&url, &schema)
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs DATABASE_URL=postgres://..."]
async fn postgres_lease_claiming_skips_locked_and_fences() {
    let url = service_kit::testing::postgres_url().expect("DATABASE_URL=postgres://...");
    let schema = service_kit::testing::pg_schema(&url, "jobs", 1, 20)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = pg_worker(&schema, &url, &dir.path().join("n.jsonl")).await;
    let now = DATASET_NOW;
    let (a, b) = w
        .db()
        .transaction(move |c| {
            let job = NewJob {
                kind: "session-cleanup".into(),
                payload: json!({}),
                run_at: now,
                max_attempts: 3,
                idempotency_key: Some("k".into()),
            };
            assert!(queue::enqueue(c, &job, now)?.created);
            assert!(!queue::enqueue(c, &job, now)?.created);
            let a = queue::claim(c, "a", now, 10)?.unwrap();
            assert!(queue::claim(c, "b", now + 5, 10)?.is_none());
            let b = queue::claim(c, "b", now + 10, 10)?.unwrap();
            Ok((a, b))
        })
        .await
        .unwrap();
    let la = a.lease();
    let r = w
        .db()
        .transaction(move |c| queue::complete(c, &la, &json!({}), now + 11))
        .await;
    assert!(matches!(r, Err(jobs::JobError::LeaseLost { .. })));
    let lb = b.lease();
    w.db()
        .transaction(move |c| queue::complete(c, &lb, &json!({}), now + 11))
        .await
        .unwrap();
    service_kit::testing::drop_schema(&url, &schema)
        .await
        .unwrap();
}
