//! Expiry alerts: exactly once per user and billing period, through the file and webhook
//! notifiers; a new period alerts again; a failing webhook is retried.

use std::sync::Arc;

use axum::http::StatusCode;
use jobs::notify::FileNotifier;
use jobs::{Clock, Kind, Outcome, WebhookNotifier};
use serde_json::json;

use crate::support::{DATASET_NOW, DAY, Receiver, TestDb, expected_alerts, settings, worker};

#[tokio::test]
async fn alerts_fire_once_per_period() {
    let db = TestDb::generate(7, 200);
    let clock = Clock::manual(DATASET_NOW);
    let file = db.file("notifications.jsonl");
    let notifier = Arc::new(FileNotifier::open(&file).unwrap());
    let w = worker(&db, settings(&db.path), notifier, &clock).await;
    let expected = expected_alerts(&db, DATASET_NOW, 7);
    assert!(
        expected >= 3,
        "the generated data has alerts due ({expected})"
    );

    w.enqueue(Kind::ExpiryAlerts, json!({}), None, 0)
        .await
        .unwrap();
    let done = w.drain("w").await.unwrap();
    assert_eq!(done.len() as i64, 1 + expected, "{done:?}");
    let sent = FileNotifier::read_all(&file).unwrap();
    assert_eq!(sent.len() as i64, expected);
    let mut keys: Vec<&str> = sent.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len() as i64, expected, "no key twice");
    assert_eq!(db.count("SELECT COUNT(*) FROM notifications"), expected);
    assert!(sent[0].subject.starts_with("your "), "{:?}", sent[0]);

    // The scheduler runs the scan again (later the same day): nothing new.
    clock.advance(3600);
    w.enqueue(Kind::ExpiryAlerts, json!({}), None, 0)
        .await
        .unwrap();
    let again = w.drain("w").await.unwrap();
    assert_eq!(again.len(), 1, "only the scan ran: {again:?}");
    assert!(
        matches!(&again[0].outcome, Outcome::Done(v) if v["enqueued"] == 0 && v["already_enqueued"] == expected),
        "{again:?}"
    );
    // Even a hand-made alert job for a period already alerted sends nothing.
    let n = &sent[0];
    let period_end: i64 = n.key.rsplit(':').next().unwrap().parse().unwrap();
    w.enqueue(
        Kind::ExpiryAlert,
        json!({"user_id": n.user_id, "period_end": period_end}),
        None,
        0,
    )
    .await
    .unwrap();
    let manual = w.drain("w").await.unwrap();
    assert!(
        matches!(&manual[0].outcome, Outcome::Done(v) if v["skipped"] == "already sent"),
        "{manual:?}"
    );
    assert_eq!(
        FileNotifier::read_all(&file).unwrap().len() as i64,
        expected
    );

    // The user renews: a new period gets its own alert, once.
    let new_end = DATASET_NOW + 3 * DAY + 1234;
    db.conn()
        .execute(
            "UPDATE subscriptions SET current_period_end = ?1, status = 'active' WHERE user_id = ?2",
            [new_end, n.user_id],
        )
        .unwrap();
    for _ in 0..2 {
        w.enqueue(Kind::ExpiryAlerts, json!({}), None, 0)
            .await
            .unwrap();
        w.drain("w").await.unwrap();
    }
    let after = FileNotifier::read_all(&file).unwrap();
    assert_eq!(after.len() as i64, expected + 1);
    assert_eq!(
        after.last().unwrap().key,
        format!("expiry-alert:{}:{new_end}", n.user_id)
    );
}

#[tokio::test]
async fn webhook_receives_each_alert_once_with_its_key() {
    let db = TestDb::generate(11, 150);
    let clock = Clock::manual(DATASET_NOW);
    let rx = Receiver::start(StatusCode::OK).await;
    let notifier =
        Arc::new(WebhookNotifier::new(&rx.url(), std::time::Duration::from_secs(5)).unwrap());
    let w = worker(&db, settings(&db.path), notifier, &clock).await;
    let expected = expected_alerts(&db, DATASET_NOW, 10);
    w.enqueue(Kind::ExpiryAlerts, json!({"days_before": 10}), None, 0)
        .await
        .unwrap();
    w.drain("w").await.unwrap();
    w.enqueue(Kind::ExpiryAlerts, json!({"days_before": 10}), None, 0)
        .await
        .unwrap();
    w.drain("w").await.unwrap();
    let keys = rx.keys();
    assert_eq!(keys.len() as i64, expected);
    assert!(
        keys.iter().all(|k| k.starts_with("expiry-alert:")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_and_nothing_is_recorded() {
    let db = TestDb::generate(11, 150);
    let clock = Clock::manual(DATASET_NOW);
    let rx = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let notifier =
        Arc::new(WebhookNotifier::new(&rx.url(), std::time::Duration::from_secs(5)).unwrap());
    let w = worker(&db, settings(&db.path), notifier, &clock).await;
    let (user_id, period_end): (i64, i64) = db
        .conn()
        .query_row(
            "SELECT user_id, current_period_end FROM subscriptions WHERE status = 'active' \
             AND current_period_end > ?1 ORDER BY user_id LIMIT 1",
            [DATASET_NOW],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    w.enqueue(
        Kind::ExpiryAlert,
        json!({"user_id": user_id, "period_end": period_end}),
        None,
        0,
    )
    .await
    .unwrap();
    let p = w.run_next("w").await.unwrap().unwrap();
    assert!(
        matches!(&p.outcome, Outcome::Retry { run_at, error } if *run_at == DATASET_NOW + 10 && error.contains("status 500")),
        "{p:?}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM notifications"), 0);
    assert_eq!(rx.keys().len(), 1);
}
