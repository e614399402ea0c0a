//! Happy paths and errors of `/api/users/{id}/...`.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestLegacy, assert_error, json};

#[tokio::test]
async fn profile_read_and_patch() {
    let t = TestLegacy::start().await;
    let text = t.get("/api/users/3").await.text().await.unwrap();
    let positions: Vec<usize> = [
        "\"id\"",
        "\"email\"",
        "\"display_name\"",
        "\"role\"",
        "\"created_at\"",
        "\"updated_at\"",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "stable field order: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["email"], "user3@fitness.example");

    let (_, jwt) = t.login(3).await;
    let res = t
        .with_bearer(Method::PATCH, "/api/users/3", &jwt)
        .json(&json!({"display_name": "  Three  "}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, body["display_name"].as_str()),
        (200, Some("Three"))
    );

    let res = t
        .with_bearer(Method::PATCH, "/api/users/3", &jwt)
        .json(&json!({"display_name": "", "email": "nope"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": "validation_failed", "message": "invalid fields: display_name, email", "fields": [
            {"field": "display_name", "message": "must be 1 to 80 characters, got 0"},
            {"field": "email", "message": "\"nope\" is not an email address"}
        ]})
    );
    let res = t
        .with_bearer(Method::PATCH, "/api/users/3", &jwt)
        .json(&json!({"email": "user4@fitness.example"}))
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        409,
        "conflict",
        "email \"user4@fitness.example\" is already taken",
    )
    .await;
    let res = t
        .with_bearer(Method::PATCH, "/api/users/3", &jwt)
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn unknown_user_is_404_and_bad_id_is_400() {
    let t = TestLegacy::start().await;
    assert_error(
        t.get("/api/users/99999").await,
        404,
        "not_found",
        "user 99999 not found",
    )
    .await;
    let (s, body) = json(t.get("/api/users/abc").await).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_request")));
    assert!(body["message"].as_str().unwrap().contains("abc"), "{body}");
    assert_error(
        t.get("/api/nothing").await,
        404,
        "not_found",
        "no route for GET /api/nothing",
    )
    .await;
    let res = t.http.delete(t.url("/api/content")).send().await.unwrap();
    assert_error(
        res,
        405,
        "method_not_allowed",
        "method DELETE is not allowed on /api/content",
    )
    .await;
}

#[tokio::test]
async fn favorites_add_list_remove() {
    let t = TestLegacy::start().await;
    let (_, jwt) = t.login(9).await;
    let (_, before) = json(
        t.with_bearer(Method::GET, "/api/users/9/favorites", &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let have: Vec<i64> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["content_id"].as_i64().unwrap())
        .collect();
    let free = (1..=100).find(|c| !have.contains(c)).unwrap();

    let res = t
        .with_bearer(Method::POST, "/api/users/9/favorites", &jwt)
        .json(&json!({"content_id": free}))
        .send()
        .await
        .unwrap();
    let (s, body) = json(res).await;
    assert_eq!(
        (s, body["user_id"].as_i64(), body["content_id"].as_i64()),
        (201, Some(9), Some(free))
    );
    let res = t
        .with_bearer(Method::POST, "/api/users/9/favorites", &jwt)
        .json(&json!({"content_id": free}))
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        409,
        "conflict",
        &format!("content {free} is already a favorite of user 9"),
    )
    .await;
    let res = t
        .with_bearer(Method::POST, "/api/users/9/favorites", &jwt)
        .json(&json!({"content_id": 5000}))
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found", "content 5000 not found").await;

    let (_, after) = json(
        t.with_bearer(Method::GET, "/api/users/9/favorites", &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after["total"].as_u64().unwrap() as usize, have.len() + 1);
    assert_eq!(
        after["items"][0]["content_id"].as_i64(),
        Some(free),
        "newest first"
    );

    let path = format!("/api/users/9/favorites/{free}");
    assert_eq!(
        t.with_bearer(Method::DELETE, &path, &jwt)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let res = t
        .with_bearer(Method::DELETE, &path, &jwt)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        404,
        "not_found",
        &format!("content {free} is not a favorite of user 9"),
    )
    .await;
}

#[tokio::test]
async fn preferences_put_get_and_validation() {
    let t = TestLegacy::start().await;
    let (_, jwt) = t.login(4).await;
    let body = json!({"categories": ["yoga", "hiit"], "intensity": "high", "max_duration_minutes": 30, "email_opt_in": true});
    let (s, put) = json(
        t.with_bearer(Method::PUT, "/api/users/4/preferences", &jwt)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (s, got) = json(
        t.with_bearer(Method::GET, "/api/users/4/preferences", &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, &got), (200, &put));
    assert_eq!(got["categories"], json!(["yoga", "hiit"]));

    let bad = json!({"categories": ["yoga", "yoga", "chess"], "intensity": "extreme", "max_duration_minutes": 1, "email_opt_in": false});
    let (s, err) = json(
        t.with_bearer(Method::PUT, "/api/users/4/preferences", &jwt)
            .json(&bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 422);
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "categories[1]",
            "categories[2]",
            "intensity",
            "max_duration_minutes"
        ]
    );
    assert_eq!(
        err["fields"][2]["message"],
        "unknown intensity \"extreme\"; expected one of low, medium, high"
    );
}

#[tokio::test]
async fn subscription_read_and_cancel() {
    let conn = crate::support::db(crate::support::SEED, crate::support::USERS);
    let (active, expired): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT MIN(user_id) FROM subscriptions WHERE status = 'active'), \
                    (SELECT MIN(user_id) FROM subscriptions WHERE status = 'expired')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let none: i64 = conn
        .query_row(
            "SELECT MIN(id) FROM users WHERE id NOT IN (SELECT user_id FROM subscriptions)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let t = TestLegacy::start().await;
    let (_, jwt) = t.login(active).await;
    let path = format!("/api/users/{active}/subscription");
    let (s, sub) = json(
        t.with_bearer(Method::GET, &path, &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, sub["status"].as_str(), sub["cancelled_at"].is_null()),
        (200, Some("active"), true)
    );

    let (s, sub) = json(
        t.with_bearer(Method::POST, &format!("{path}/cancel"), &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, sub["status"].as_str()), (200, Some("cancelled")));
    assert!(sub["cancelled_at"].is_string());
    let res = t
        .with_bearer(Method::POST, &format!("{path}/cancel"), &jwt)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        409,
        "conflict",
        &format!("subscription of user {active} is already cancelled"),
    )
    .await;
    let res = t
        .with_bearer(
            Method::POST,
            &format!("/api/users/{expired}/subscription/cancel"),
            &jwt,
        )
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        409,
        "conflict",
        &format!("subscription of user {expired} is already expired"),
    )
    .await;
    let res = t
        .with_bearer(
            Method::GET,
            &format!("/api/users/{none}/subscription"),
            &jwt,
        )
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        404,
        "not_found",
        &format!("subscription of user {none} not found"),
    )
    .await;
}

#[tokio::test]
async fn workouts_log_and_list() {
    let t = TestLegacy::start().await;
    let (_, jwt) = t.login(6).await;
    let w = json!({"category": "running", "duration_minutes": 42, "calories": 420, "performed_at": "2030-01-01T07:00:00Z"});
    let (s, created) = json(
        t.with_bearer(Method::POST, "/api/users/6/workouts", &jwt)
            .json(&w)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            s,
            created["category"].as_str(),
            created["performed_at"].as_str()
        ),
        (201, Some("running"), Some("2030-01-01T07:00:00Z"))
    );
    let (s, list) = json(
        t.with_bearer(Method::GET, "/api/users/6/workouts?limit=3", &jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["id"], created["id"], "most recent first");
    assert!(list["items"].as_array().unwrap().len() <= 3);

    let bad = json!({"category": "chess", "duration_minutes": 0, "calories": -1});
    let (s, err) = json(
        t.with_bearer(Method::POST, "/api/users/6/workouts", &jwt)
            .json(&bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, err["message"].as_str()),
        (
            422,
            Some("invalid fields: category, duration_minutes, calories")
        )
    );
    let res = t
        .with_bearer(Method::GET, "/api/users/6/workouts?limit=0", &jwt)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        400,
        "bad_request",
        "invalid limit 0: must be between 1 and 200",
    )
    .await;
}
