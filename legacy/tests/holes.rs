//! The deliberate holes of docs/legacy.md really exist. If one of these fails, the legacy
//! was "fixed" by accident and the edge-protection demo has nothing to close.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, ORIGIN, REFERER};

use crate::support::{TestLegacy, json};

#[tokio::test]
async fn no_auth_profile_read() {
    let t = TestLegacy::start().await;
    let (s, body) = json(t.get("/api/users/17").await).await;
    assert_eq!(
        (s, body["email"].as_str()),
        (200, Some("user17@fitness.example"))
    );
}

#[tokio::test]
async fn any_credentials_read_subscriptions_and_workouts() {
    let t = TestLegacy::start().await;
    for path in ["/api/users/2/subscription", "/api/users/2/workouts"] {
        let res = t
            .http
            .get(t.url(path))
            .header("authorization", "Basic Z3Vlc3M6Z3Vlc3M=")
            .send()
            .await
            .unwrap();
        assert!(
            res.status() == 200 || res.status() == 404,
            "{path}: {}",
            res.status()
        );
        let res = t
            .http
            .get(t.url(path))
            .header("cookie", "legacy_session=made-up")
            .send()
            .await
            .unwrap();
        assert!(
            res.status() == 200 || res.status() == 404,
            "{path}: {}",
            res.status()
        );
        assert_eq!(
            t.get(path).await.status(),
            401,
            "{path} without any credentials"
        );
    }
}

#[tokio::test]
async fn idor_user_a_reads_and_changes_user_b() {
    let t = TestLegacy::start().await;
    let (_, jwt_a) = t.login(10).await;
    let (s, favs) = json(
        t.with_bearer(Method::GET, "/api/users/11/favorites", &jwt_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, favs["user_id"].as_i64()), (200, Some(11)));
    let res = t
        .with_bearer(Method::PATCH, "/api/users/11", &jwt_a)
        .json(&serde_json::json!({"display_name": "owned by user 10"}))
        .send()
        .await
        .unwrap();
    let (s, user) = json(res).await;
    assert_eq!(
        (s, user["id"].as_i64(), user["display_name"].as_str()),
        (200, Some(11), Some("owned by user 10"))
    );
}

#[tokio::test]
async fn cookie_post_from_a_foreign_origin_succeeds() {
    let t = TestLegacy::start().await;
    let (session, _) = t.login(12).await;
    // What a cross-site <form enctype="text/plain"> sends: the browser attaches the cookie,
    // the Origin is the attacker's, the body is JSON in disguise.
    let res = t
        .with_cookie(Method::PUT, "/api/users/12/preferences", &session)
        .header(ORIGIN, "https://evil.example")
        .header(REFERER, "https://evil.example/csrf.html")
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"categories":["dance"],"intensity":null,"max_duration_minutes":null,"email_opt_in":true}"#)
        .send()
        .await
        .unwrap();
    let (s, body) = json(res).await;
    assert_eq!((s, body["categories"][0].as_str()), (200, Some("dance")));
}

#[tokio::test]
async fn search_reflects_q_unescaped() {
    let t = TestLegacy::start().await;
    let payload = "<script>alert(document.cookie)</script>";
    let res = t
        .get("/api/content/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E")
        .await;
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains(payload), "{html}");

    let res = t.get("/api/content/search?q=%3C").await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("<b><</b>"));
}
