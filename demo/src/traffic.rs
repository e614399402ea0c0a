//! A traffic generator that behaves like members of the platform: log in, browse the top
//! content, check the subscription, favourite something, sometimes change preferences.
//! Sends only to the demo's own proxy on loopback; paced, and stops with the process.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub async fn run(proxy: String, users: u32, per_second: u32) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    // The proxy binds after this task starts: wait (bounded) until it accepts, so the
    // first member's login does not fail.
    let addr = proxy.trim_start_matches("http://").to_owned();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    // A small deterministic walk over users so runs are comparable.
    let mut n: u64 = 7;
    loop {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let user = (n >> 33) % u64::from(users.max(1)) + 1;
        let token = login(&client, &proxy, user).await;
        let auth = token.map(|t| format!("Bearer {t}"));
        let categories = ["yoga", "strength", "hiit", "cardio"][(n >> 40) as usize % 4];
        let steps: [(Method, String, Option<String>); 6] = [
            (
                Method::GET,
                format!("/api/content/top?user_id={user}&limit=10"),
                None,
            ),
            (Method::GET, format!("/api/users/{user}/subscription"), None),
            (
                Method::GET,
                "/api/content?category=strength&page=1".to_owned(),
                None,
            ),
            (
                Method::POST,
                format!("/api/users/{user}/favorites"),
                Some(format!("{{\"content_id\": {}}}", (n >> 20) % 2000 + 1)),
            ),
            (Method::GET, format!("/api/users/{user}/preferences"), None),
            (
                Method::PUT,
                format!("/api/users/{user}/preferences"),
                Some(format!(
                    r#"{{"categories": ["{categories}"], "email_opt_in": true}}"#
                )),
            ),
        ];
        for (method, path, body) in steps {
            tick.tick().await;
            let mut req = Request::builder()
                .method(method)
                .uri(format!("{proxy}{path}"));
            if let Some(a) = &auth {
                req = req.header("authorization", a.as_str());
            }
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            let Ok(req) = req.body(Full::new(Bytes::from(body.unwrap_or_default()))) else {
                continue;
            };
            if let Ok(resp) = client.request(req).await {
                let _ = resp.into_body().collect().await;
            }
        }
    }
}

async fn login(client: &HttpClient, proxy: &str, user: u64) -> Option<String> {
    let body =
        format!("{{\"email\":\"user{user}@fitness.example\",\"password\":\"password{user}\"}}");
    let req = Request::post(format!("{proxy}/api/auth/login"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let resp = client.request(req).await.ok()?;
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["token"].as_str().map(str::to_owned)
}
