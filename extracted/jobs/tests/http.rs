//! The admin API over a real socket: enqueue, dry run, errors, health, metrics, OpenAPI,
//! and graceful shutdown of a started worker.

use std::sync::Arc;
use std::time::Duration;

use jobs::{Clock, LogNotifier};
use serde_json::{Value, json};

use crate::support::{DATASET_NOW, TestDb, eventually, settings};

async fn started(db: &TestDb) -> jobs::RunningWorker {
    let d = jobs::connect(&service_kit::Database::Sqlite(db.path.clone()))
        .await
        .unwrap();
    jobs::start(
        settings(&db.path),
        d,
        Arc::new(LogNotifier),
        Clock::manual(DATASET_NOW),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn admin_endpoints() {
    let db = TestDb::generate(1, 50);
    let w = started(&db).await;
    let http = reqwest::Client::new();
    let url = w.url();

    let r = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Dry run: validated, answered, nothing enqueued.
    let r = http
        .post(format!("{url}/jobs/session-cleanup"))
        .header("x-ficus-shadow", "dry-run")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": null, "kind": "session-cleanup", "status": "queued", "created": true, "dry_run": true})
    );
    let r = http
        .post(format!("{url}/jobs/expiry-alerts"))
        .header("x-ficus-shadow", "dry-run")
        .json(&json!({"days_before": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a dry run still validates");
    assert_eq!(db.count("SELECT COUNT(*) FROM jobs"), 0);
    let r = http
        .post(format!("{url}/jobs/session-cleanup"))
        .header("x-ficus-shadow", "mirror")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown shadow modes never write");
    assert_eq!(db.count("SELECT COUNT(*) FROM jobs"), 0);

    // Real enqueue, with and without an idempotency key.
    let r = http
        .post(format!("{url}/jobs/session-cleanup"))
        .header("idempotency-key", "once")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["created"], true);
    let again: Value = http
        .post(format!("{url}/jobs/session-cleanup"))
        .header("idempotency-key", "once")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["id"].clone(), again["created"].clone()),
        (first["id"].clone(), json!(false))
    );

    // Errors are JSON and name the bad value.
    let r = http.post(format!("{url}/jobs/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("\"nope\""), "{e}");
    let r = http
        .post(format!("{url}/jobs/expiry-alert"))
        .json(&json!({"user_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["fields"][0]["field"], "payload", "{e}");
    let r = http
        .post(format!("{url}/jobs/session-cleanup"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{url}/jobs/session-cleanup"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    // The worker loop picks the job up.
    let id = first["id"].as_i64().unwrap();
    eventually("the job to be done", Duration::from_secs(20), || {
        (db.count(&format!(
            "SELECT COUNT(*) FROM jobs WHERE id = {id} AND status = 'done'"
        )) == 1)
            .then_some(())
    })
    .await;
    let list: Value = http
        .get(format!("{url}/jobs?status=done"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"][0]["id"], id);
    assert!(list["jobs"][0]["result"]["deleted"].is_number(), "{list}");

    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ficus_jobs_processed_total{kind=\"session-cleanup\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ficus_service_requests_total"),
        "{metrics}"
    );

    let doc: Value = http
        .get(format!("{url}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/jobs/{kind}",
        "/jobs",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }

    // Graceful shutdown returns once the loops have stopped.
    tokio::time::timeout(Duration::from_secs(20), w.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn queue_depth_is_reported_by_kind_and_status() {
    let db = TestDb::generate(1, 20);
    let w = started(&db).await;
    // Due in an hour: stays queued.
    w.worker
        .enqueue(jobs::Kind::RankingRecompute, json!({}), None, 3600)
        .await
        .unwrap();
    let metrics = reqwest::get(format!("{}/metrics", w.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ficus_jobs_queue_depth{kind=\"ranking-recompute\",status=\"queued\"} 1"),
        "{metrics}"
    );
    w.stop().await;
}

#[tokio::test]
async fn shutdown_releases_the_lease_of_a_job_that_does_not_finish_in_time() {
    let db = TestDb::generate(7, 200);
    let file = db.file("n.jsonl");
    let mut s = settings(&db.path);
    s.test_hook = Some(jobs::config::TestHook::HangAfterNotify);
    s.shutdown_grace = Duration::ZERO;
    let d = jobs::connect(&service_kit::Database::Sqlite(db.path.clone()))
        .await
        .unwrap();
    let notifier = Arc::new(jobs::FileNotifier::open(&file).unwrap());
    let w = jobs::start(s, d, notifier, Clock::manual(DATASET_NOW))
        .await
        .unwrap();
    let (user_id, period_end): (i64, i64) = db
        .conn()
        .query_row(
            "SELECT user_id, current_period_end FROM subscriptions WHERE status = 'active' \
             AND current_period_end > ?1 ORDER BY user_id LIMIT 1",
            [DATASET_NOW],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let e = w
        .worker
        .enqueue(
            jobs::Kind::ExpiryAlert,
            json!({"user_id": user_id, "period_end": period_end}),
            None,
            0,
        )
        .await
        .unwrap();
    eventually("the delivery", Duration::from_secs(20), || {
        (jobs::FileNotifier::read_all(&file).unwrap().len() == 1).then_some(())
    })
    .await;
    let metrics = w.worker.metrics().clone();
    tokio::time::timeout(Duration::from_secs(20), w.stop())
        .await
        .unwrap();
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM jobs WHERE id = {} AND status = 'queued' AND attempts = 0 AND locked_by IS NULL",
            e.id
        )),
        1,
        "released, attempt not counted"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM notifications"), 0);
    assert_eq!(
        metrics.released.with_label_values(&["expiry-alert"]).get(),
        1
    );
}
