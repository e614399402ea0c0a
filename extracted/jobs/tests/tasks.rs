//! The other jobs on generated data: expiry sweep, ranking recompute, favorite-count
//! reconciliation, weekly digest, session cleanup.

use std::collections::BTreeMap;
use std::sync::Arc;

use jobs::notify::FileNotifier;
use jobs::{Clock, Kind, LogNotifier, Outcome, Processed, Worker};
use serde_json::{Value, json};

use crate::support::{DATASET_NOW, DAY, TestDb, settings, worker};

async fn run(w: &Worker, kind: Kind, payload: Value) -> Value {
    w.enqueue(kind, payload, None, 0).await.unwrap();
    let done = w.drain("w").await.unwrap();
    match done.as_slice() {
        [
            Processed {
                outcome: Outcome::Done(v),
                ..
            },
        ] => v.clone(),
        other => panic!("{kind}: {other:?}"),
    }
}

#[tokio::test]
async fn sweep_expires_only_ended_periods_by_the_state_machine() {
    let db = TestDb::generate(3, 300);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let due = db.count(&format!(
        "SELECT COUNT(*) FROM subscriptions WHERE status IN ('active', 'past_due', 'cancelled') AND current_period_end <= {DATASET_NOW}"
    ));
    let trials_before = db.count("SELECT COUNT(*) FROM subscriptions WHERE status = 'trial'");
    assert!(due > 0);
    let r = run(&w, Kind::ExpireSubscriptions, json!({})).await;
    assert_eq!(r, json!({"expired": due}));
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE status IN ('active', 'past_due', 'cancelled') AND current_period_end <= {DATASET_NOW}"
        )),
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM subscriptions WHERE status = 'trial'"),
        trials_before
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE status = 'expired' AND updated_at = {DATASET_NOW}"
        )),
        due
    );
    assert_eq!(
        run(&w, Kind::ExpireSubscriptions, json!({})).await,
        json!({"expired": 0})
    );
}

#[tokio::test]
async fn ranking_recompute_matches_the_ranking_definition() {
    let db = TestDb::generate(5, 300);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let r = run(&w, Kind::RankingRecompute, json!({})).await;
    let conn = db.conn();
    let mut want: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for f in fitness_data::queries::all_favorites(&conn).unwrap() {
        let e = want.entry(f.content_id).or_default();
        e.0 += 1;
        e.1 += fitness_data::ranking::favorite_weight(DATASET_NOW, f.created_at.0);
    }
    let mut stmt = conn
        .prepare("SELECT content_id, favorites, score, reference_time FROM content_scores")
        .unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len() as i64, db.count("SELECT COUNT(*) FROM content"));
    assert_eq!(r["items"], rows.len());
    for (id, n, score, reference) in rows {
        assert_eq!(reference, DATASET_NOW);
        assert_eq!(
            (n, score),
            want.get(&id).copied().unwrap_or_default(),
            "content {id}"
        );
    }
}

#[tokio::test]
async fn favorite_counts_reconcile_and_report_drift() {
    let db = TestDb::generate(5, 200);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    let first = run(&w, Kind::FavoriteCounts, json!({})).await;
    assert_eq!(first["initial"], true);
    assert_eq!(first["drifted"], 0);
    assert_eq!(run(&w, Kind::FavoriteCounts, json!({})).await["drifted"], 0);
    // A counter went wrong, and a favorite was removed behind the counts' back.
    let conn = db.conn();
    conn.execute(
        "UPDATE favorite_counts SET favorites = 999 WHERE content_id = 1",
        [],
    )
    .unwrap();
    let (user, content): (i64, i64) = conn
        .query_row(
            "SELECT user_id, content_id FROM favorites WHERE content_id <> 1 ORDER BY user_id, content_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    conn.execute(
        "DELETE FROM favorites WHERE user_id = ?1 AND content_id = ?2",
        [user, content],
    )
    .unwrap();
    let r = run(&w, Kind::FavoriteCounts, json!({})).await;
    assert_eq!(r["drifted"], 2, "{r}");
    let examples = r["examples"].as_array().unwrap();
    assert!(
        examples
            .iter()
            .any(|e| e["content_id"] == 1 && e["stored"] == 999),
        "{r}"
    );
    assert!(examples.iter().any(|e| e["content_id"] == content), "{r}");
    assert_eq!(
        db.count(&format!(
            "SELECT favorites FROM favorite_counts WHERE content_id = {content}"
        )),
        db.count(&format!(
            "SELECT COUNT(*) FROM favorites WHERE content_id = {content}"
        ))
    );
    assert_eq!(w.metrics().drift.get(), 2);
}

#[tokio::test]
async fn weekly_digest_is_sent_once_per_user_per_iso_week() {
    let db = TestDb::generate(9, 120);
    let clock = Clock::manual(DATASET_NOW + DAY); // Monday 2025-06-02, week 23
    let file = db.file("digest.jsonl");
    let w = worker(
        &db,
        settings(&db.path),
        Arc::new(FileNotifier::open(&file).unwrap()),
        &clock,
    )
    .await;
    let users = db.count("SELECT COUNT(*) FROM preferences WHERE email_opt_in = 1");
    assert!(users > 0);
    let r = run(&w, Kind::WeeklyDigest, json!({"items": 3})).await;
    assert_eq!(r["week"], "2025-W23");
    assert_eq!(r["delivered"], users);
    let sent = FileNotifier::read_all(&file).unwrap();
    assert_eq!(sent.len() as i64, users);
    assert!(
        sent.iter()
            .all(|n| n.body["items"].as_array().unwrap().len() == 3)
    );
    // The personalised order is the ranking's: scores never increase down the list.
    for n in &sent {
        let scores: Vec<f64> = n.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|p| p[0] >= p[1]), "{scores:?}");
    }
    clock.advance(DAY * 3);
    let again = run(&w, Kind::WeeklyDigest, json!({})).await;
    assert_eq!(
        (again["delivered"].clone(), again["already_sent"].clone()),
        (json!(0), json!(users))
    );
    clock.advance(DAY * 7);
    let next = run(&w, Kind::WeeklyDigest, json!({})).await;
    assert_eq!(next["week"], "2025-W24");
    assert_eq!(next["delivered"], users);
    assert_eq!(
        FileNotifier::read_all(&file).unwrap().len() as i64,
        2 * users
    );
}

#[tokio::test]
async fn session_cleanup_deletes_expired_sessions_only() {
    let db = TestDb::generate(2, 300);
    let clock = Clock::manual(DATASET_NOW);
    let w = worker(&db, settings(&db.path), Arc::new(LogNotifier), &clock).await;
    db.conn()
        .execute(
            "INSERT INTO sessions (token, user_id, created_at, expires_at) VALUES ('live', 1, ?1, ?2)",
            [DATASET_NOW, DATASET_NOW + DAY],
        )
        .unwrap();
    let expired = db.count(&format!(
        "SELECT COUNT(*) FROM sessions WHERE expires_at <= {DATASET_NOW}"
    ));
    assert!(expired > 0);
    assert_eq!(
        run(&w, Kind::SessionCleanup, json!({})).await,
        json!({"deleted": expired})
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM sessions"), 1);
    assert_eq!(
        run(&w, Kind::SessionCleanup, json!({})).await,
        json!({"deleted": 0})
    );
}
