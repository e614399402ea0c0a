//! One real-socket test: the service bound to 127.0.0.1:0, spoken to over HTTP.

use content_ranking::app;

use crate::support::state;

#[tokio::test]
async fn serves_over_a_real_socket_and_stops() {
    let running = service_kit::start(app(state(5, 80).await), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .get(format!(
            "{}/api/content/top?limit=3&user_id=2",
            running.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    assert_eq!(body["user_id"], 2);
    running.stop().await.unwrap();
}
