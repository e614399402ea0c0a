//! End-to-end on the fitness platform: the legacy monolith and the content-ranking
//! service over the same generated data, ficus in front with `top-content` in shadow mode.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use content_ranking::store::SqliteStore;
use service_kit::Clock;
use service_kit::sqlite::SqliteDb;
use service_kit::testing::generated_db;

use crate::support::*;

const SEED: u64 = 42;
const USERS: u32 = 300;

/// A test-only fault: the candidate's second item gets a wrong score.
async fn break_second_score(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    if let Some(score) = v.pointer_mut("/items/1/score") {
        *score = serde_json::json!(-1.0);
    }
    let mut resp = Response::from_parts(parts, Body::from(v.to_string()));
    resp.headers_mut().remove("content-length");
    resp
}

async fn platform(broken: bool) -> (fitness_legacy::Running, service_kit::Running) {
    let legacy_state = fitness_legacy::AppState::new(
        generated_db(SEED, USERS).unwrap(),
        fitness_legacy::Config::default(),
    );
    let legacy = fitness_legacy::start(legacy_state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let store = SqliteStore::new(SqliteDb::new(generated_db(SEED, USERS).unwrap()));
    let state = content_ranking::AppState::load(store, Clock::system())
        .await
        .unwrap();
    let mut app = content_ranking::app(state);
    if broken {
        app = app.layer(axum::middleware::map_response(break_second_score));
    }
    let ranking = service_kit::start(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (legacy, ranking)
}

fn routes(legacy: &str, ranking: &str) -> String {
    format!(
        r#"legacy = "legacy"
[listen]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"
[upstreams.legacy]
url = "{legacy}"
[upstreams.ranking]
url = "{ranking}"
[[routes]]
name = "top-content"
path = "/api/content/top"
methods = ["GET"]
mode = "shadow"
extracted = "ranking"
[routes.shadow]
ignore = ["/generated_at"]
"#
    )
}

async fn run_top_requests(proxy: &TestProxy, n: usize) -> serde_json::Value {
    let c = client();
    for i in 0..n {
        let url = match i % 3 {
            0 => proxy.url("/api/content/top"),
            1 => proxy.url(&format!("/api/content/top?limit={}", 5 + i % 20)),
            _ => proxy.url(&format!(
                "/api/content/top?user_id={}&limit=10",
                1 + i % USERS as usize
            )),
        };
        assert_eq!(get(&c, &url).await.status, 200);
    }
    for _ in 0..500 {
        let v = get(&c, &proxy.admin_url("/admin/shadow")).await.json();
        let r = &v["routes"][0];
        if r["match"].as_u64().unwrap_or(0) + r["mismatch"].as_u64().unwrap_or(0) >= n as u64 {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("shadow outcomes did not arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_content_in_shadow_mode_matches_on_the_platform() {
    let (legacy, ranking) = platform(false).await;
    let proxy = TestProxy::start(&routes(&legacy.url(), &ranking.url()));
    let summary = run_top_requests(&proxy, 60).await;
    assert_eq!(summary["match"], 60, "{summary}");
    assert_eq!(summary["match_rate"], 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_candidate_is_caught_with_the_right_pointers() {
    let (legacy, ranking) = platform(true).await;
    let proxy = TestProxy::start(&routes(&legacy.url(), &ranking.url()));
    let summary = run_top_requests(&proxy, 30).await;
    assert_eq!(summary["mismatch"], 30, "{summary}");
    let c = client();
    let fields = get(&c, &proxy.admin_url("/admin/shadow/top-content/fields"))
        .await
        .json();
    assert_eq!(fields["fields"][0]["pointer"], "/items/*/score", "{fields}");
    assert_eq!(
        fields["fields"].as_array().unwrap().len(),
        1,
        "only the injected fault differs: {fields}"
    );
    let diffs = get(
        &c,
        &proxy.admin_url("/admin/shadow/top-content/diffs?limit=1"),
    )
    .await
    .json();
    let d = &diffs["diffs"][0]["report"]["body"]["differences"][0];
    assert_eq!(d["pointer"], "/items/1/score", "{diffs}");
    assert_eq!(d["candidate"], -1.0);
}
