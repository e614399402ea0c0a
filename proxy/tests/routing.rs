//! Route selection through a running proxy.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_the_most_specific_upstream_and_keep_queries() {
    let legacy = TestUpstream::start("legacy").await;
    let ranking = TestUpstream::start("ranking").await;
    let prefs = TestUpstream::start("prefs").await;
    let proxy = TestProxy::start(&routes_toml(
        &[
            ("legacy", &legacy),
            ("ranking", &ranking),
            ("prefs", &prefs),
        ],
        r#"
[[routes]]
name = "top"
path = "/api/content/top"
methods = ["GET"]
mode = "extracted"
extracted = "ranking"

[[routes]]
name = "prefs"
path = "/api/users/{id}/preferences"
mode = "extracted"
extracted = "prefs"

[[routes]]
name = "prefs-me-legacy"
path = "/api/users/me/preferences"
mode = "legacy"

[[routes]]
name = "content-any"
path = "/api/content/{*rest}"
mode = "extracted"
extracted = "prefs"

[[routes]]
name = "content-item"
path = "/api/content/{id}"
mode = "legacy"
extracted = "ranking"
"#,
    ));
    let c = client();
    let cases = [
        ("GET", "/api/content/top", "ranking"),
        ("HEAD", "/api/content/top", "ranking"),
        ("POST", "/api/content/top", "legacy"), // methods exclude POST: next is {id}, then the catch-all
        ("GET", "/api/users/42/preferences", "prefs"),
        ("PUT", "/api/users/42/preferences", "prefs"),
        ("GET", "/api/users/me/preferences", "legacy"), // literal beats parameter
        ("GET", "/api/content/17", "legacy"),           // parameter beats catch-all
        ("GET", "/api/content/17/reviews", "prefs"),    // only the catch-all matches
        ("GET", "/api/content", "prefs"),               // catch-all matches zero segments
        ("GET", "/api/classes", "legacy"),              // unmatched
        ("DELETE", "/nothing/here", "legacy"),
    ];
    for (method, path, want) in cases {
        let req = http::Request::builder()
            .method(method)
            .uri(proxy.url(path))
            .body(Default::default())
            .unwrap();
        let got = send(&c, req).await;
        assert_eq!(got.status, 200, "{method} {path}");
        assert_eq!(got.headers["x-upstream"], want, "{method} {path}");
    }
    // Query strings reach the upstream untouched.
    get(&c, &proxy.url("/api/content/top?user_id=7&limit=5&q=a%20b")).await;
    let last = ranking.seen().into_iter().last().unwrap();
    assert_eq!(last.uri, "/api/content/top?user_id=7&limit=5&q=a%20b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_by_route_upstream_mode_and_status_class() {
    let legacy = TestUpstream::start("legacy").await;
    let ranking = TestUpstream::start("ranking").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy), ("ranking", &ranking)],
        "[[routes]]\nname = \"top\"\npath = \"/api/content/top\"\nmode = \"extracted\"\nextracted = \"ranking\"\n",
    ));
    let c = client();
    for _ in 0..3 {
        get(&c, &proxy.url("/api/content/top")).await;
    }
    get(&c, &proxy.url("/status/404")).await;
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert_eq!(
        counter(
            &m,
            r#"ficus_requests_total{mode="extracted",route="top",status="2xx",upstream="ranking"}"#
        ),
        3.0,
        "{m}"
    );
    assert_eq!(
        counter(
            &m,
            r#"ficus_requests_total{mode="legacy",route="_default",status="4xx",upstream="legacy"}"#
        ),
        1.0
    );
    assert_eq!(
        counter(
            &m,
            r#"ficus_request_duration_seconds_count{route="top",upstream="ranking"}"#
        ),
        3.0
    );
    assert!(m.contains("ficus_config_info{version="));
    assert!(m.contains("ficus_config_reloads_total{result=\"success\"} 0"));
    assert!(m.contains("ficus_upstream_errors_total") || !m.contains("kind="));
    // The access log has one line per request with the documented fields.
    let line = proxy.wait_log("access line", |v| {
        v["target"] == "ficus::access" && v["status"] == 404
    });
    for field in [
        "route",
        "mode",
        "upstream",
        "status",
        "duration_ms",
        "request_id",
    ] {
        assert!(!line[field].is_null(), "access log lacks {field}: {line}");
    }
}
