//! The service through `oneshot`: identity rules, the state machine, dry runs, validation.

use axum::body::Body;
use axum::http::StatusCode;
use fitness_data::models::SubscriptionStatus::{self, *};
use serde_json::json;

use crate::support::{NOW, call, dump, req, service, user_in};

#[tokio::test]
async fn get_needs_identity_and_ownership() {
    let (svc, db) = service();
    let user = user_in(&db, Active).await;
    let (me, other) = (user.to_string(), (user + 1).to_string());
    let uri = format!("/api/users/{user}/subscription");
    let get = |subject: Option<&str>, roles: &str| {
        req("GET", &uri, subject, roles)
            .body(Body::empty())
            .unwrap()
    };
    let (s, body) = call(&svc, get(None, "")).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(
        call(&svc, get(Some(&other), "member")).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, body) = call(&svc, get(Some(&me), "member")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], user);
    assert_eq!(
        call(&svc, get(Some(&other), "support")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_and_unknown_ids() {
    let (svc, _) = service();
    for bad in ["abc", "0", "-4"] {
        let (s, body) = call(
            &svc,
            req(
                "GET",
                &format!("/api/users/{bad}/subscription"),
                Some("1"),
                "admin",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (s, body) = call(
        &svc,
        req("GET", "/api/users/99999/subscription", Some("1"), "admin")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("user 99999 not found"))
    );
}

async fn cancel(svc: &axum::Router, user: i64, dry: bool) -> (StatusCode, serde_json::Value) {
    let mut b = req(
        "POST",
        &format!("/api/users/{user}/subscription/cancel"),
        Some(&user.to_string()),
        "member",
    );
    if dry {
        b = b.header("x-ficus-shadow", "dry-run");
    }
    call(svc, b.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn cancel_moves_active_to_cancelled_once() {
    let (svc, db) = service();
    let user = user_in(&db, Active).await;
    let (s, body) = cancel(&svc, user, false).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["cancelled_at"], fitness_data::time::rfc3339(NOW));
    let (s, body) = cancel(&svc, user, false).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        (
            body["error"].as_str(),
            body["from"].as_str(),
            body["to"].as_str()
        ),
        (Some("conflict"), Some("cancelled"), Some("cancelled"))
    );
}

#[tokio::test]
async fn expired_cannot_be_cancelled() {
    let (svc, db) = service();
    let user = user_in(&db, Expired).await;
    let (s, body) = cancel(&svc, user, false).await;
    assert_eq!(
        (s, body["from"].as_str()),
        (StatusCode::CONFLICT, Some("expired"))
    );
}

#[tokio::test]
async fn dry_run_cancel_answers_like_a_real_one_and_commits_nothing() {
    for status in [Trial, Active, PastDue, Expired] {
        let (svc, db) = service();
        let user = user_in(&db, status).await;
        let before = dump(&db).await;
        let dry = cancel(&svc, user, true).await;
        assert_eq!(
            dump(&db).await,
            before,
            "dry run from {status} changed the database"
        );
        let real = cancel(&svc, user, false).await;
        assert_eq!(dry, real, "from {status}");
        if status != Expired {
            assert_ne!(
                dump(&db).await,
                before,
                "the real cancel from {status} committed nothing"
            );
        }
    }
}

async fn set(
    svc: &axum::Router,
    user: i64,
    roles: &str,
    body: serde_json::Value,
    dry: bool,
) -> (StatusCode, serde_json::Value) {
    let mut b = req(
        "POST",
        &format!("/api/users/{user}/subscription/status"),
        Some("ops"),
        roles,
    )
    .header("content-type", "application/json");
    if dry {
        b = b.header("x-ficus-shadow", "dry-run");
    }
    call(svc, b.body(Body::from(body.to_string())).unwrap()).await
}

#[tokio::test]
async fn operators_drive_the_state_machine() {
    let (svc, db) = service();
    let user = user_in(&db, PastDue).await;
    assert_eq!(
        set(&svc, user, "member", json!({"status": "active"}), false)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, body) = set(
        &svc,
        user,
        "jobs",
        json!({"status": "paused", "why": 1}),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "validation_failed");
    assert_eq!(body["fields"].as_array().unwrap().len(), 2, "{body}");
    let path: [SubscriptionStatus; 3] = [Active, PastDue, Expired];
    for to in path {
        let (s, body) = set(&svc, user, "jobs", json!({"status": to.as_str()}), false).await;
        assert_eq!(
            (s, body["status"].as_str()),
            (StatusCode::OK, Some(to.as_str())),
            "{body}"
        );
    }
    let (s, body) = set(&svc, user, "admin", json!({"status": "active"}), true).await;
    assert_eq!(
        (s, body["from"].as_str(), body["to"].as_str()),
        (StatusCode::CONFLICT, Some("expired"), Some("active"))
    );
    let text = call(
        &svc,
        req(
            "POST",
            &format!("/api/users/{user}/subscription/status"),
            Some("ops"),
            "admin",
        )
        .header("content-type", "text/plain")
        .body(Body::from("{\"status\":\"expired\"}"))
        .unwrap(),
    )
    .await;
    assert_eq!(text.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_shadow_mode_is_refused_before_any_write() {
    let (svc, db) = service();
    let user = user_in(&db, Active).await;
    let before = dump(&db).await;
    let (s, _) = call(
        &svc,
        req(
            "POST",
            &format!("/api/users/{user}/subscription/cancel"),
            Some(&user.to_string()),
            "",
        )
        .header("x-ficus-shadow", "mirror")
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(dump(&db).await, before);
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
        req("GET", "/api/users/3/subscription", Some("3"), "")
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
    assert!(text.as_str().unwrap().contains(
        r#"route="/api/users/{id}/subscription",service="subscriptions",status="200"} 1"#
    ));
}
