//! The service through `tower::ServiceExt::oneshot`: shape, validation, refresh, common endpoints.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fitness_data::ranking::TopResponse;

use content_ranking::AppState;
use content_ranking::store::SqliteStore;
use service_kit::Clock;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::generated_db;

use crate::support::{NOW, call, get, service};

#[tokio::test]
async fn top_has_the_legacy_shape() {
    let svc = service(3, 120).await;
    let (status, body) = get(&svc, "/api/content/top?limit=5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let top: TopResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(top.items.len(), 5);
    assert_eq!(top.generated_at.0, NOW);
    assert_eq!(top.limit, 5);
    assert!(!top.personalised);
    assert_eq!(
        top.items.iter().map(|i| i.rank).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec![
            "generated_at",
            "items",
            "limit",
            "personalised",
            "reference_time",
            "user_id"
        ]
    );
}

#[tokio::test]
async fn validation_errors_are_400_and_unknown_user_404() {
    let svc = service(3, 120).await;
    for uri in [
        "/api/content/top?limit=0",
        "/api/content/top?limit=101",
        "/api/content/top?limit=ten",
        "/api/content/top?user_id=me",
    ] {
        let (status, body) = get(&svc, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"], "bad_request");
    }
    let (status, body) = get(&svc, "/api/content/top?user_id=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "user 999999 not found");
}

#[tokio::test]
async fn refresh_needs_a_role_and_honours_dry_run() {
    let svc = service(3, 60).await;
    let post = |headers: &[(&str, &str)]| {
        let mut b = Request::post("/internal/ranking/refresh");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(call(&svc, post(&[])).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &svc,
        post(&[("x-ficus-subject", "5"), ("x-ficus-roles", "member")]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = call(
        &svc,
        post(&[("x-ficus-subject", "jobs"), ("x-ficus-roles", "jobs")]),
    )
    .await;
    assert_eq!(
        (s, body["refreshed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (s, body) = call(
        &svc,
        post(&[
            ("x-ficus-subject", "1"),
            ("x-ficus-roles", "admin"),
            ("x-ficus-shadow", "dry-run"),
        ]),
    )
    .await;
    assert_eq!(
        (s, body["refreshed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

#[tokio::test]
async fn refresh_picks_up_new_favorites() {
    // The snapshot is deliberately stale until a refresh (docs/extracted.md).
    let db = SqliteDb::new(generated_db(4, 50).unwrap());
    let st = AppState::load(SqliteStore::new(db.clone()), Clock::fixed(NOW))
        .await
        .unwrap();
    let before = st.top(None, 100).await.unwrap();
    let last = before.items.last().unwrap().clone();
    let user = 1;
    let content_id = last.content_id;
    let added = db
        .run(move |c| {
            let mut n = 0;
            for u in user..=50 {
                if fitness_data::queries::add_favorite(
                    c,
                    u,
                    content_id,
                    fitness_data::time::DATASET_NOW,
                )
                .is_ok()
                {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
        .unwrap();
    assert!(added > 0);
    assert_eq!(
        st.top(None, 100).await.unwrap().items,
        before.items,
        "stale until refresh"
    );
    st.refresh(true).await.unwrap();
    assert_eq!(
        st.top(None, 100).await.unwrap().items,
        before.items,
        "dry run swaps nothing"
    );
    st.refresh(false).await.unwrap();
    let after = st.top(None, 100).await.unwrap();
    let item = after
        .items
        .iter()
        .find(|i| i.content_id == content_id)
        .unwrap();
    assert_eq!(item.favorites, last.favorites + added);
}

#[tokio::test]
async fn common_endpoints() {
    let svc = service(3, 30).await;
    assert_eq!(get(&svc, "/healthz").await.1["status"], "ok");
    assert_eq!(get(&svc, "/readyz").await.1["status"], "ready");
    let (_, doc) = get(&svc, "/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/content/top"]["get"].is_object());
    get(&svc, "/api/content/top").await;
    let (s, text) = get(&svc, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains(r#"ficus_service_requests_total{method="GET",route="/api/content/top",service="content-ranking",status="200"} 1"#),
        "{text}"
    );
    let (s, body) = get(&svc, "/nope").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = call(
        &svc,
        Request::delete("/api/content/top")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}
