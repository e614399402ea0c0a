//! The router driven without a socket (`tower::ServiceExt::oneshot`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::state;

async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = fitness_legacy::app(state()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn healthz() {
    let (s, body) = call(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn login_without_content_type_still_parses() {
    let req = Request::post("/api/auth/login")
        .body(Body::from(
            r#"{"email":"user1@fitness.example","password":"password1"}"#,
        ))
        .unwrap();
    let (s, body) = call(req).await;
    assert_eq!((s, body["role"].as_str()), (StatusCode::OK, Some("admin")));
}

#[tokio::test]
async fn content_page_shape() {
    let (s, body) = call(
        Request::get("/api/content?per_page=3&page=2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            body["page"].as_i64(),
            body["per_page"].as_i64(),
            body["total"].as_i64()
        ),
        (Some(2), Some(3), Some(100))
    );
    assert_eq!(body["items"][0]["id"], 4);
}
