//! Content, classes, instructors and health.

use reqwest::Method;

use crate::support::{TestLegacy, assert_error, json};

#[tokio::test]
async fn content_list_filters_and_pages() {
    let t = TestLegacy::start().await;
    let (s, all) = json(t.get("/api/content?per_page=100").await).await;
    assert_eq!(
        (
            s,
            all["total"].as_i64(),
            all["items"].as_array().unwrap().len()
        ),
        (200, Some(100), 100)
    );
    let (_, page) = json(
        t.get("/api/content?category=yoga&intensity=low&max_duration=30&page=1&per_page=2")
            .await,
    )
    .await;
    let expected = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["category"] == "yoga"
                && c["intensity"] == "low"
                && c["duration_minutes"].as_i64().unwrap() <= 30
        })
        .count();
    assert_eq!(page["total"].as_u64().unwrap() as usize, expected);
    assert!(page["items"].as_array().unwrap().len() <= 2);

    assert_error(
        t.get("/api/content?category=chess").await,
        400,
        "bad_request",
        "invalid query: unknown category \"chess\"; expected one of yoga, hiit, strength, cardio, pilates, mobility, meditation, cycling, running, dance",
    )
    .await;
    assert_error(
        t.get("/api/content?per_page=500").await,
        400,
        "bad_request",
        "invalid per_page 500: must be between 1 and 100",
    )
    .await;
    let (s, body) = json(t.get("/api/content?page=two").await).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn content_detail_and_404() {
    let t = TestLegacy::start().await;
    let (s, c) = json(t.get("/api/content/12").await).await;
    assert_eq!((s, c["id"].as_i64()), (200, Some(12)));
    assert!(c["favorites"].is_i64() && c["instructor"]["name"].is_string());
    assert_error(
        t.get("/api/content/100000").await,
        404,
        "not_found",
        "content 100000 not found",
    )
    .await;
}

#[tokio::test]
async fn search_returns_json_on_hits() {
    let t = TestLegacy::start().await;
    let (s, body) = json(t.get("/api/content/search?q=Yoga").await).await;
    assert_eq!(s, 200);
    assert!(body["total"].as_u64().unwrap() > 0);
    assert_eq!(body["query"], "Yoga");
}

#[tokio::test]
async fn classes_list_and_booking() {
    let t = TestLegacy::start().await;
    let (s, list) = json(t.get("/api/classes?limit=200").await).await;
    assert_eq!(s, 200);
    let classes = list["items"].as_array().unwrap();
    assert!(!classes.is_empty());
    let starts: Vec<&str> = classes
        .iter()
        .map(|c| c["starts_at"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "ordered by start");
    let open = classes
        .iter()
        .find(|c| c["booked"].as_i64() < c["capacity"].as_i64())
        .unwrap();
    let id = open["id"].as_i64().unwrap();

    // Pick a user who has not booked it yet.
    let (_, jwt) = t.login(150).await;
    let path = format!("/api/classes/{id}/bookings");
    let res = t
        .with_bearer(Method::POST, &path, &jwt)
        .send()
        .await
        .unwrap();
    let (s, b) = json(res).await;
    if s == 201 {
        assert_eq!(
            (b["class_id"].as_i64(), b["user_id"].as_i64()),
            (Some(id), Some(150))
        );
        let res = t
            .with_bearer(Method::POST, &path, &jwt)
            .send()
            .await
            .unwrap();
        assert_error(
            res,
            409,
            "conflict",
            &format!("user 150 has already booked class {id}"),
        )
        .await;
    } else {
        assert_eq!(s, 409, "{b}");
    }
    let res = t
        .with_bearer(Method::POST, "/api/classes/99999/bookings", &jwt)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found", "class 99999 not found").await;
    assert_error(
        t.get("/api/classes?from=yesterday").await,
        400,
        "bad_request",
        "invalid from \"yesterday\": expected RFC 3339 like 2025-06-01T00:00:00Z",
    )
    .await;
    let (_, later) = json(t.get("/api/classes?from=2025-06-10T00:00:00Z").await).await;
    assert!(
        later["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["starts_at"].as_str().unwrap() >= "2025-06-10T00:00:00Z")
    );
}

#[tokio::test]
async fn full_class_is_409() {
    let conn = crate::support::db(crate::support::SEED, crate::support::USERS);
    let full: Option<i64> = conn
        .query_row(
            "SELECT c.id FROM classes c WHERE c.capacity <= (SELECT COUNT(*) FROM bookings b WHERE b.class_id = c.id) ORDER BY c.id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok();
    let Some(full) = full else { return };
    let outsider: i64 = conn
        .query_row("SELECT MIN(id) FROM users WHERE id NOT IN (SELECT user_id FROM bookings WHERE class_id = ?1)", [full], |r| r.get(0))
        .unwrap();
    let t = TestLegacy::start().await;
    let (_, jwt) = t.login(outsider).await;
    let res = t
        .with_bearer(Method::POST, &format!("/api/classes/{full}/bookings"), &jwt)
        .send()
        .await
        .unwrap();
    let (s, body) = json(res).await;
    assert_eq!(s, 409);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("class {full} is full")),
        "{body}"
    );
}

#[tokio::test]
async fn instructor_and_health() {
    let t = TestLegacy::start().await;
    let (s, i) = json(t.get("/api/instructors/1").await).await;
    assert_eq!((s, i["id"].as_i64()), (200, Some(1)));
    assert!(i["content_count"].is_i64());
    assert_error(
        t.get("/api/instructors/999").await,
        404,
        "not_found",
        "instructor 999 not found",
    )
    .await;
    let (s, h) = json(t.get("/api/health").await).await;
    assert_eq!(
        (s, h["status"].as_str(), h["counts"]["users"].as_i64()),
        (200, Some("ok"), Some(200))
    );
    let (s, h) = json(t.get("/healthz").await).await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));
}
