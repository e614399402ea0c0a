//! The service through `oneshot`: identity rules, validation, 404s, dry runs.

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::json;

use crate::support::{NOW, call, dump, put, req, service, user_with};

fn valid() -> serde_json::Value {
    json!({"categories": ["yoga", "running"], "intensity": "medium", "max_duration_minutes": 45, "email_opt_in": true})
}

#[tokio::test]
async fn get_rules() {
    let (svc, db) = service();
    let (with, without) = (user_with(&db, true).await, user_with(&db, false).await);
    let get = |user: i64, subject: Option<&str>, roles: &str| {
        req(
            "GET",
            &format!("/api/users/{user}/preferences"),
            subject,
            roles,
        )
        .body(Body::empty())
        .unwrap()
    };
    assert_eq!(
        call(&svc, get(with, None, "")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&svc, get(with, Some(&(with + 1).to_string()), "member"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, body) = call(&svc, get(with, Some(&with.to_string()), "member")).await;
    assert_eq!(
        (s, body["user_id"].as_i64()),
        (StatusCode::OK, Some(with)),
        "{body}"
    );
    let (s, body) = call(&svc, get(without, Some("1"), "admin")).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some(format!("preferences of user {without} not found").as_str())
        )
    );
    let (s, body) = call(&svc, get(77_777, Some("1"), "support")).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("user 77777 not found"))
    );
    let bad = req("GET", "/api/users/x1/preferences", Some("1"), "admin")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&svc, bad).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn put_replaces_and_get_returns_it() {
    let (svc, db) = service();
    let user = user_with(&db, false).await;
    let (s, body) = call(&svc, put(user, &valid(), false)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["updated_at"], fitness_data::time::rfc3339(NOW));
    let get = req(
        "GET",
        &format!("/api/users/{user}/preferences"),
        Some(&user.to_string()),
        "",
    )
    .body(Body::empty())
    .unwrap();
    assert_eq!(call(&svc, get).await.1, body);
}

#[tokio::test]
async fn put_validation_is_422_with_every_field() {
    let (svc, db) = service();
    let user = user_with(&db, true).await;
    let before = dump(&db).await;
    let (s, body) = call(
        &svc,
        put(
            user,
            &json!({"categories": ["yoga", "zumba"], "max_duration_minutes": 1, "nickname": "x"}),
            false,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "validation_failed");
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "nickname",
            "categories[1]",
            "max_duration_minutes",
            "email_opt_in"
        ]
    );
    assert_eq!(dump(&db).await, before);
    let broken = req(
        "PUT",
        &format!("/api/users/{user}/preferences"),
        Some(&user.to_string()),
        "",
    )
    .header("content-type", "application/json")
    .body(Body::from("{\"categories\":"))
    .unwrap();
    assert_eq!(call(&svc, broken).await.0, StatusCode::BAD_REQUEST);
    let text = req(
        "PUT",
        &format!("/api/users/{user}/preferences"),
        Some(&user.to_string()),
        "",
    )
    .header("content-type", "text/plain")
    .body(Body::from(valid().to_string()))
    .unwrap();
    assert_eq!(call(&svc, text).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let other = req(
        "PUT",
        &format!("/api/users/{user}/preferences"),
        Some(&(user + 1).to_string()),
        "member",
    )
    .header("content-type", "application/json")
    .body(Body::from(valid().to_string()))
    .unwrap();
    assert_eq!(call(&svc, other).await.0, StatusCode::FORBIDDEN);
    let unknown = req("PUT", "/api/users/88888/preferences", Some("1"), "admin")
        .header("content-type", "application/json")
        .body(Body::from(valid().to_string()))
        .unwrap();
    assert_eq!(call(&svc, unknown).await.0, StatusCode::NOT_FOUND);
    assert_eq!(dump(&db).await, before);
}

#[tokio::test]
async fn dry_run_put_answers_like_a_real_one_and_commits_nothing() {
    for saved in [true, false] {
        let (svc, db) = service();
        let user = user_with(&db, saved).await;
        let before = dump(&db).await;
        let dry = call(&svc, put(user, &valid(), true)).await;
        assert_eq!(dry.0, StatusCode::OK);
        assert_eq!(
            dump(&db).await,
            before,
            "dry run committed (saved = {saved})"
        );
        let real = call(&svc, put(user, &valid(), false)).await;
        assert_eq!(dry, real);
        assert_ne!(dump(&db).await, before);
    }
}

#[tokio::test]
async fn common_endpoints() {
    let (svc, _) = service();
    for (uri, key, want) in [
        ("/healthz", "status", "ok"),
        ("/readyz", "status", "ready"),
        ("/openapi.json", "openapi", "3.1.0"),
    ] {
        let (s, body) = call(&svc, req("GET", uri, None, "").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (s, body[key].as_str()),
            (StatusCode::OK, Some(want)),
            "{uri}"
        );
    }
    call(
        &svc,
        req("GET", "/api/users/1/preferences", None, "")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let (_, text) = call(
        &svc,
        req("GET", "/metrics", None, "")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        text.as_str().unwrap().contains(
            r#"route="/api/users/{id}/preferences",service="preferences",status="401"} 1"#
        )
    );
}
