//! Canary mode through a running proxy: sticky split, allow/deny, fallback, override.

use http::Request;
use http_body_util::Full;

use crate::support::*;

fn canary_routes(legacy: &TestUpstream, extracted: &str, canary: &str) -> String {
    format!(
        "{}[upstreams.new]\nurl = \"{extracted}\"\nrequest_timeout_ms = 2000\n\n[[routes]]\nname = \"c\"\npath = \"/{{*rest}}\"\nmode = \"canary\"\nextracted = \"new\"\n[routes.canary]\ncohort = \"header:x-user\"\n{canary}\n",
        routes_toml(&[("legacy", legacy)], "")
    )
}

async fn as_user(c: &TestClient, proxy: &TestProxy, method: &str, path: &str, user: &str) -> Got {
    let req = Request::builder()
        .method(method)
        .uri(proxy.url(path))
        .header("x-user", user)
        .header("x-ficus-route", "extracted")
        .body(Full::default())
        .unwrap();
    send(c, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_is_sticky_and_near_the_percent() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let proxy = TestProxy::start(&canary_routes(
        &legacy,
        &new.url(),
        "percent = 30\nallow = [\"vip\"]\ndeny = [\"old\"]",
    ));
    let c = client();
    let mut on_new = 0;
    for user in 0..300 {
        let user = format!("user-{user}");
        let first = as_user(&c, &proxy, "GET", "/a", &user).await.headers["x-upstream"].clone();
        let second = as_user(&c, &proxy, "GET", "/b", &user).await.headers["x-upstream"].clone();
        assert_eq!(first, second, "{user} moved between sides");
        if first == "new" {
            on_new += 1;
        }
    }
    // Binomial(300, 0.3): mean 90, sd ~8; 5 sd either side.
    assert!(
        (50..=130).contains(&on_new),
        "{on_new} of 300 on the new service"
    );
    assert_eq!(
        as_user(&c, &proxy, "GET", "/x", "vip").await.headers["x-upstream"],
        "new"
    );
    assert_eq!(
        as_user(&c, &proxy, "GET", "/x", "old").await.headers["x-upstream"],
        "legacy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_header_is_ignored_without_the_role() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let proxy = TestProxy::start(&canary_routes(
        &legacy,
        &new.url(),
        "percent = 0\noverride_header = \"X-Ficus-Route\"\noverride_roles = [\"staff\"]",
    ));
    let c = client();
    for user in 0..20 {
        let got = as_user(&c, &proxy, "GET", "/x", &format!("u{user}")).await;
        assert_eq!(got.headers["x-upstream"], "legacy");
    }
    assert_eq!(new.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_header_of_any_name_is_never_forwarded() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let proxy = TestProxy::start(&canary_routes(
        &legacy,
        &new.url(),
        "percent = 0\noverride_header = \"Route-To\"\noverride_roles = [\"staff\"]",
    ));
    let c = client();
    let req = Request::get(proxy.url("/x"))
        .header("x-user", "u1")
        .header("route-to", "extracted")
        // A client claiming the role itself: identity headers are the edge's alone.
        .header("x-ficus-roles", "staff")
        .body(Full::default())
        .unwrap();
    let got = send(&c, req).await;
    assert_eq!(got.headers["x-upstream"], "legacy", "no verified role");
    let seen = &legacy.seen()[0];
    assert!(seen.headers.get("route-to").is_none(), "{:?}", seen.headers);
    assert!(seen.headers.get("x-ficus-roles").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_extracted_side_falls_back_for_safe_requests_only() {
    let legacy = TestUpstream::start("legacy").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = TestProxy::start(&canary_routes(
        &legacy,
        &format!("http://{dead}"),
        "percent = 100",
    ));
    let c = client();
    // First, while the circuit is closed: a write is not retried on legacy.
    let got = as_user(&c, &proxy, "POST", "/write", "u1").await;
    assert_eq!(got.status, 502, "a write is not retried on legacy");
    assert_eq!(legacy.count(), 0, "nothing reached legacy for the write");
    for i in 0..50 {
        let got = as_user(&c, &proxy, "GET", &format!("/item/{i}"), &format!("u{i}")).await;
        assert_eq!(got.status, 200, "idempotent requests never see the failure");
        assert_eq!(got.headers["x-upstream"], "legacy");
    }
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        counter(
            &m,
            r#"ficus_canary_fallbacks_total{reason="connect",route="c",upstream="new"}"#
        ) >= 1.0,
        "{m}"
    );

    // A 5xx from the extracted side also falls back.
    let new = TestUpstream::start("new").await;
    let proxy = TestProxy::start(&canary_routes(&legacy, &new.url(), "percent = 100"));
    let got = as_user(&c, &proxy, "GET", "/status/503", "u1").await;
    assert_eq!(new.count(), 1);
    assert_eq!(got.headers["x-upstream"], "legacy");
    // The user never saw the 503, but the extracted side's numbers (error-rate gate,
    // dashboards) do, and the fallback is counted with its reason.
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    let requests = |upstream: &str, class: &str| {
        counter(
            &m,
            &format!(
                r#"ficus_requests_total{{mode="canary",route="c",status="{class}",upstream="{upstream}"}}"#
            ),
        )
    };
    assert_eq!(requests("new", "5xx"), 1.0, "{m}");
    // (The test upstream answers `/status/503` on every side, legacy too.)
    assert_eq!(requests("legacy", "5xx"), 1.0, "{m}");
    assert_eq!(
        counter(
            &m,
            r#"ficus_canary_fallbacks_total{reason="status_5xx",route="c",upstream="new"}"#
        ),
        1.0,
        "{m}"
    );
    // A timeout (request_timeout_ms = 2000) falls back too.
    let hung = TestUpstream::start("hung").await;
    hung.set(Behaviour::Hang);
    let proxy = TestProxy::start(&canary_routes(&legacy, &hung.url(), "percent = 100"));
    let got = as_user(&c, &proxy, "GET", "/slow", "u1").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["x-upstream"], "legacy");
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert_eq!(
        counter(
            &m,
            r#"ficus_canary_fallbacks_total{reason="timeout",route="c",upstream="new"}"#
        ),
        1.0,
        "{m}"
    );
    // With fallback = "none" the 5xx reaches the client.
    let proxy = TestProxy::start(&canary_routes(
        &legacy,
        &new.url(),
        "percent = 100\nfallback = \"none\"",
    ));
    assert_eq!(
        as_user(&c, &proxy, "GET", "/status/503", "u1").await.status,
        503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_skips_a_failing_extracted_side() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let routes = canary_routes(&legacy, &new.url(), "percent = 100").replace(
        "[upstreams.new]\n",
        "[upstreams.new]\nbreaker_failures = 3\nbreaker_cooldown_ms = 600000\n",
    );
    let proxy = TestProxy::start(&routes);
    let c = client();
    for i in 0..10 {
        let got = as_user(&c, &proxy, "GET", "/status/503", &format!("u{i}")).await;
        assert_eq!(got.headers["x-upstream"], "legacy", "request {i}");
    }
    assert_eq!(
        new.count(),
        3,
        "after 3 consecutive failures the extracted side is skipped"
    );
    let routes = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    let up = routes["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "new")
        .unwrap()
        .clone();
    assert_eq!(up["circuit"], "open", "{up}");
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert_eq!(
        counter(&m, r#"ficus_circuit_open{upstream="new"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        counter(&m, r#"ficus_circuit_opened_total{upstream="new"}"#),
        1.0
    );
}

async fn circuit(c: &TestClient, proxy: &TestProxy) -> String {
    let routes = get(c, &proxy.admin_url("/admin/routes")).await.json();
    routes["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "new")
        .map(|u| u["circuit"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_cooldown_one_probe_decides() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let routes = canary_routes(&legacy, &new.url(), "percent = 100").replace(
        "[upstreams.new]\n",
        "[upstreams.new]\nbreaker_failures = 2\nbreaker_cooldown_ms = 300\n",
    );
    let proxy = TestProxy::start(&routes);
    let c = client();
    let half_open = || async {
        // The cool-down runs on the proxy's clock: poll its state, bounded.
        for _ in 0..1000 {
            if circuit(&c, &proxy).await == "half_open" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the breaker never became half-open");
    };
    for user in ["a", "b"] {
        as_user(&c, &proxy, "GET", "/status/503", user).await;
    }
    assert_eq!(circuit(&c, &proxy).await, "open");
    half_open().await;
    // A failing probe opens it again at once.
    let got = as_user(&c, &proxy, "GET", "/status/503", "c").await;
    assert_eq!(got.headers["x-upstream"], "legacy");
    assert_eq!(new.count(), 3, "the probe reached the extracted side");
    assert_eq!(circuit(&c, &proxy).await, "open");
    let got = as_user(&c, &proxy, "GET", "/ok", "d").await;
    assert_eq!(got.headers["x-upstream"], "legacy", "open: skipped");
    assert_eq!(new.count(), 3);
    half_open().await;
    // A healthy probe closes it: the extracted side serves again.
    let got = as_user(&c, &proxy, "GET", "/ok", "e").await;
    assert_eq!(got.headers["x-upstream"], "new");
    assert_eq!(circuit(&c, &proxy).await, "closed");
    let got = as_user(&c, &proxy, "GET", "/ok", "f").await;
    assert_eq!(got.headers["x-upstream"], "new");
}
