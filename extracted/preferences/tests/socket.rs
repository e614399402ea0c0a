//! One real-socket test: bound to 127.0.0.1:0, spoken to over HTTP, dry run included.

use crate::support::{dump, service, user_with};

#[tokio::test]
async fn put_over_a_real_socket() {
    let (router, db) = service();
    let user = user_with(&db, true).await;
    let running = service_kit::start(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/users/{user}/preferences", running.url());
    let body = serde_json::json!({"categories": ["dance"], "email_opt_in": false});
    let before = dump(&db).await;
    let res = http
        .put(&url)
        .header("x-ficus-subject", user.to_string())
        .header("x-ficus-shadow", "dry-run")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(dump(&db).await, before);
    let res = http
        .get(&url)
        .header("x-ficus-subject", user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: serde_json::Value = res.json().await.unwrap();
    assert_eq!(got["user_id"], user);
    running.stop().await.unwrap();
}
