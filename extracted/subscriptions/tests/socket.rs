//! One real-socket test: bound to 127.0.0.1:0, spoken to over HTTP, dry run included.

use crate::support::{dump, service, user_in};

#[tokio::test]
async fn cancel_over_a_real_socket() {
    let (router, db) = service();
    let user = user_in(&db, fitness_data::models::SubscriptionStatus::Trial).await;
    let running = service_kit::start(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/users/{user}/subscription/cancel", running.url());
    let before = dump(&db).await;
    let res = http
        .post(&url)
        .header("x-ficus-subject", user.to_string())
        .header("x-ficus-shadow", "dry-run")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(dump(&db).await, before);
    let res = http
        .post(&url)
        .header("x-ficus-subject", user.to_string())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    running.stop().await.unwrap();
}
