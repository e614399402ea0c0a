//! Login, logout and the two ways to authenticate.

use reqwest::Method;
use reqwest::header::SET_COOKIE;
use serde_json::json;

use crate::support::{TestLegacy, assert_error, json};

#[tokio::test]
async fn login_returns_a_session_cookie_and_a_jwt() {
    let t = TestLegacy::start().await;
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .json(&json!({"email": "user5@fitness.example", "password": "password5"}))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("legacy_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let (status, body) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["user_id"], 5);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let claims = fitness_legacy::auth::verify_jwt(
        fitness_legacy::state::DEFAULT_JWT_SECRET,
        body["token"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.email.as_str()),
        ("5", "user5@fitness.example")
    );
    assert_eq!(body.as_object().unwrap().len(), 7);
}

#[tokio::test]
async fn wrong_password_is_401_and_missing_field_is_422() {
    let t = TestLegacy::start().await;
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .json(&json!({"email": "user5@fitness.example", "password": "password6"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthorized", "invalid email or password").await;
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .json(&json!({"email": "user5@fitness.example"}))
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        422,
        "validation_failed",
        "invalid body: missing field `password` at line 1 column 33",
    )
    .await;
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, body) = json(res).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
}

#[tokio::test]
async fn cookie_and_bearer_both_authenticate_and_logout_ends_the_session() {
    let t = TestLegacy::start().await;
    let (session, jwt) = t.login(7).await;
    let res = t
        .with_cookie(Method::GET, "/api/users/7/favorites", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = t
        .with_bearer(Method::GET, "/api/users/7/favorites", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = t
        .with_cookie(Method::POST, "/api/auth/logout", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let res = t
        .with_cookie(Method::GET, "/api/users/7/favorites", &session)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        401,
        "unauthorized",
        "session cookie is unknown or expired; log in again",
    )
    .await;
}

#[tokio::test]
async fn no_credentials_or_a_forged_jwt_is_401() {
    let t = TestLegacy::start().await;
    let res = t.get("/api/users/7/favorites").await;
    assert_error(
        res,
        401,
        "unauthorized",
        "authentication required: send the legacy_session cookie or an Authorization: Bearer token",
    )
    .await;
    let forged = fitness_legacy::auth::issue_jwt(
        "not-the-secret",
        7,
        "x",
        fitness_data::models::Role::Admin,
        fitness_data::time::now_unix(),
    )
    .unwrap();
    let res = t
        .with_bearer(Method::GET, "/api/users/7/favorites", &forged)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        401,
        "unauthorized",
        "invalid bearer token: InvalidSignature",
    )
    .await;
}

#[tokio::test]
async fn login_also_sets_the_jwt_as_a_cookie_which_authenticates() {
    let t = TestLegacy::start().await;
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .json(&json!({"email": "user5@fitness.example", "password": "password5"}))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("legacy_session="));
    let (_, body) = json(res).await;
    let token = body["token"].as_str().unwrap();
    assert!(
        cookies[1].starts_with(&format!("fitness_token={token};")),
        "{cookies:?}"
    );
    let res = t
        .http
        .get(t.url("/api/users/5/favorites"))
        .header("cookie", format!("fitness_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = t
        .http
        .get(t.url("/api/users/5/favorites"))
        .header("cookie", "fitness_token=forged.jwt.value")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
