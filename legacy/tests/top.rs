//! `GET /api/content/top` follows the documented formula, recomputed here from raw rows.

use fitness_data::rusqlite::Connection;
use serde_json::Value;

use crate::support::{SEED, TestLegacy, USERS, db, json};

struct Expected {
    id: i64,
    score: i64,
    favorites: i64,
}

/// The formula of docs/legacy.md, written again from the raw tables.
fn expected(conn: &Connection, user: Option<i64>) -> Vec<Expected> {
    let reference: i64 = conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'dataset_now'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let prefs: Option<(String, Option<String>, Option<i64>)> = user.and_then(|u| {
        conn.query_row("SELECT categories, intensity, max_duration_minutes FROM preferences WHERE user_id = ?1", [u], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .ok()
    });
    let mut stmt = conn
        .prepare("SELECT id, category, intensity, duration_minutes FROM content")
        .unwrap();
    let content: Vec<(i64, String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out: Vec<Expected> = content
        .into_iter()
        .map(|(id, category, intensity, duration)| {
            let mut s = conn
                .prepare("SELECT created_at FROM favorites WHERE content_id = ?1")
                .unwrap();
            let created: Vec<i64> = s
                .query_map([id], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let base: i64 = created
                .iter()
                .map(|t| {
                    let age_days = (reference - t).max(0) / 86_400;
                    (1_000_000.0 * (-(age_days as f64) / 30.0).exp2()).floor() as i64
                })
                .sum();
            let mut percent = 100;
            if let Some((cats, pref_intensity, max)) = &prefs {
                if cats.split(',').any(|c| c == category) {
                    percent += 50;
                }
                if pref_intensity.as_deref() == Some(intensity.as_str()) {
                    percent += 25;
                }
                if max.is_some_and(|m| duration > m) {
                    percent -= 50;
                }
            }
            Expected {
                id,
                score: base * percent / 100,
                favorites: created.len() as i64,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.id.cmp(&b.id)));
    out
}

fn check(body: &Value, expected: &[Expected], limit: usize) {
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), limit);
    for (i, (item, e)) in items.iter().zip(expected).enumerate() {
        assert_eq!(item["rank"].as_u64(), Some(i as u64 + 1));
        assert_eq!(item["content_id"].as_i64(), Some(e.id), "rank {}", i + 1);
        assert_eq!(
            item["favorites"].as_i64(),
            Some(e.favorites),
            "rank {}",
            i + 1
        );
        assert_eq!(
            item["score"].as_f64(),
            Some(e.score as f64 / 1e6),
            "rank {}",
            i + 1
        );
    }
}

#[tokio::test]
async fn top_matches_the_formula() {
    let conn = db(SEED, USERS);
    let exp = expected(&conn, None);
    let t = TestLegacy::start().await;
    let (s, body) = json(t.get("/api/content/top?limit=25").await).await;
    assert_eq!(s, 200);
    check(&body, &exp, 25);
    assert_eq!(body["personalised"], false);
    assert_eq!(body["reference_time"], "2025-06-01T00:00:00Z");
    let (_, default) = json(t.get("/api/content/top").await).await;
    check(&default, &exp, 10);
}

#[tokio::test]
async fn top_personalised_matches_the_formula() {
    let conn = db(SEED, USERS);
    let user: i64 = conn
        .query_row(
            "SELECT MIN(user_id) FROM preferences WHERE intensity IS NOT NULL AND max_duration_minutes IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let exp = expected(&conn, Some(user));
    assert_ne!(
        exp.iter().take(20).map(|e| e.id).collect::<Vec<_>>(),
        expected(&conn, None)
            .iter()
            .take(20)
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        "preferences should change the ranking"
    );
    let t = TestLegacy::start().await;
    let (s, body) = json(
        t.get(&format!("/api/content/top?limit=20&user_id={user}"))
            .await,
    )
    .await;
    assert_eq!(
        (s, body["user_id"].as_i64(), body["personalised"].as_bool()),
        (200, Some(user), Some(true))
    );
    check(&body, &exp, 20);
}

#[tokio::test]
async fn top_is_deterministic_except_generated_at() {
    let t = TestLegacy::start().await;
    let (_, mut a) = json(t.get("/api/content/top?limit=50&user_id=3").await).await;
    let (_, mut b) = json(t.get("/api/content/top?limit=50&user_id=3").await).await;
    assert!(a["generated_at"].is_string());
    a.as_object_mut().unwrap().remove("generated_at");
    b.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(a, b);
    // Another server over the same seed answers the same.
    let u = TestLegacy::start().await;
    let (_, mut c) = json(u.get("/api/content/top?limit=50&user_id=3").await).await;
    c.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(a, c);
}

#[tokio::test]
async fn top_rejects_bad_parameters() {
    let t = TestLegacy::start().await;
    crate::support::assert_error(
        t.get("/api/content/top?limit=0").await,
        400,
        "bad_request",
        "invalid limit 0: must be between 1 and 100",
    )
    .await;
    crate::support::assert_error(
        t.get("/api/content/top?user_id=424242").await,
        404,
        "not_found",
        "user 424242 not found",
    )
    .await;
    let (s, _) = json(t.get("/api/content/top?limit=ten").await).await;
    assert_eq!(s, 400);
}
