//! The queue on a real SQLite file: idempotent enqueue, lease expiry and fencing, retries
//! with backoff, dead-lettering, release.

use std::sync::Arc;

use jobs::queue::{self, Backoff, NewJob, Status};
use jobs::{Clock, LogNotifier, Outcome};
use serde_json::json;

use crate::support::{DATASET_NOW, TestDb, settings, worker};

fn job(kind: &str, key: Option<&str>) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: json!({}),
        run_at: DATASET_NOW,
        max_attempts: 3,
        idempotency_key: key.map(str::to_owned),
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_by_key() {
    let db = TestDb::generate(1, 20);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let a = w
        .enqueue(jobs::Kind::SessionCleanup, json!({}), Some("k1".into()), 0)
        .await
        .unwrap();
    let b = w
        .enqueue(jobs::Kind::SessionCleanup, json!({}), Some("k1".into()), 0)
        .await
        .unwrap();
    let c = w
        .enqueue(jobs::Kind::SessionCleanup, json!({}), None, 0)
        .await
        .unwrap();
    assert!(a.created && !b.created && c.created);
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, c.id);
    assert_eq!(db.count("SELECT COUNT(*) FROM jobs"), 2);
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_off() {
    let db = TestDb::generate(1, 20);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let now = DATASET_NOW;
    let (a, b) = w
        .db()
        .transaction(move |c| {
            queue::enqueue(c, &job("session-cleanup", None), now)?;
            let a = queue::claim(c, "a", now, 10)?.unwrap();
            // Still leased: nobody else gets it.
            assert!(queue::claim(c, "b", now + 9, 10)?.is_none());
            let b = queue::claim(c, "b", now + 10, 10)?.unwrap();
            Ok((a, b))
        })
        .await
        .unwrap();
    assert_eq!((a.id, a.attempts), (b.id, 1));
    assert_eq!(b.attempts, 2);
    assert_eq!(b.last_error.as_deref(), Some("lease of a expired"));
    let (la, lb) = (a.lease(), b.lease());
    let r = w
        .db()
        .transaction(move |c| queue::complete(c, &la, &json!({"by": "a"}), now + 11))
        .await;
    assert!(matches!(r, Err(jobs::JobError::LeaseLost { .. })), "{r:?}");
    w.db()
        .transaction(move |c| queue::complete(c, &lb, &json!({"by": "b"}), now + 11))
        .await
        .unwrap();
    let id = a.id;
    let done = w
        .db()
        .transaction(move |c| queue::get(c, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.result, Some(json!({"by": "b"})));
}

#[tokio::test]
async fn failures_retry_with_backoff_then_dead_letter() {
    let db = TestDb::generate(1, 20);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    // A kind this build does not know (e.g. enqueued by a newer version) always fails.
    let now = DATASET_NOW;
    w.db()
        .transaction(move |c| queue::enqueue(c, &job("from-the-future", None), now))
        .await
        .unwrap();
    let p = w.run_next("w").await.unwrap().unwrap();
    assert!(
        matches!(&p.outcome, Outcome::Retry { run_at, error } if *run_at == now + 10 && error.contains("from-the-future")),
        "{p:?}"
    );
    assert!(
        w.run_next("w").await.unwrap().is_none(),
        "not due before backoff"
    );
    clock.advance(10);
    let p = w.run_next("w").await.unwrap().unwrap();
    assert!(
        matches!(p.outcome, Outcome::Retry { run_at, .. } if run_at == now + 10 + 20),
        "doubled: {p:?}"
    );
    clock.advance(20);
    let p = w.run_next("w").await.unwrap().unwrap();
    assert!(matches!(p.outcome, Outcome::Dead { .. }), "{p:?}");
    clock.advance(10_000);
    assert!(
        w.run_next("w").await.unwrap().is_none(),
        "dead jobs stay dead"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM jobs WHERE status = 'dead' AND attempts = 3"),
        1
    );
    let m = w.metrics();
    assert_eq!(m.failed.with_label_values(&["from-the-future"]).get(), 3);
    assert_eq!(m.retried.with_label_values(&["from-the-future"]).get(), 2);
    assert_eq!(m.dead.with_label_values(&["from-the-future"]).get(), 1);
}

#[tokio::test]
async fn a_job_that_keeps_killing_workers_ends_dead() {
    let db = TestDb::generate(1, 20);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let now = DATASET_NOW;
    // Three workers each claim it and die (their leases expire).
    w.db()
        .transaction(move |c| {
            queue::enqueue(c, &job("session-cleanup", None), now)?;
            for i in 0..3 {
                queue::claim(c, &format!("dead-{i}"), now + i * 100, 10)?.unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
    clock.set(now + 1000);
    let p = w.run_next("w").await.unwrap().unwrap();
    assert!(
        matches!(&p.outcome, Outcome::Dead { error } if error.contains("exceeds max_attempts")),
        "{p:?}"
    );
}

#[tokio::test]
async fn release_requeues_without_counting_the_attempt() {
    let db = TestDb::generate(1, 20);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let now = DATASET_NOW;
    let j = w
        .db()
        .transaction(move |c| {
            queue::enqueue(c, &job("session-cleanup", None), now)?;
            let j = queue::claim(c, "a", now, 10)?.unwrap();
            queue::release(c, &j.lease(), now)?;
            Ok(queue::get(c, j.id)?.unwrap())
        })
        .await
        .unwrap();
    assert_eq!(
        (j.status, j.attempts, j.locked_by),
        (Status::Queued, 0, None)
    );
    assert_eq!(
        Backoff {
            base_secs: 1,
            max_secs: 1
        }
        .delay(5),
        1
    );
}
