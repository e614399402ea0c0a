//! The migration dashboard: the page and its assets on the admin listener, and the JSON
//! it polls, computed from real traffic.

use http::Request;
use http_body_util::Full;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_json_reflects_traffic_and_the_page_is_self_contained() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    new.set(Behaviour::Broken);
    let text = format!(
        "{}[upstreams.new]\nurl = \"{}\"\n\n[[routes]]\nname = \"doc\"\npath = \"/doc\"\nmode = \"shadow\"\nextracted = \"new\"\n[routes.shadow]\nignore = [\"/generated_at\"]\n\n[[routes]]\nname = \"other\"\npath = \"/other\"\nmode = \"extracted\"\nextracted = \"new\"\n",
        routes_toml(&[("legacy", &legacy)], ""),
        new.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, text).unwrap();
    let proxy = TestProxy::spawn_env(&config, &[("FICUS_DASHBOARD_EVERY_MS", "100")]);
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &proxy.url("/doc")).await.status, 200);
    }
    for _ in 0..5 {
        assert_eq!(get(&c, &proxy.url("/other")).await.status, 200);
    }
    let mut d = serde_json::Value::Null;
    for _ in 0..400 {
        d = get(&c, &proxy.admin_url("/admin/dashboard")).await.json();
        let doc = &d["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "doc")
            .unwrap()
            .clone();
        if doc["totals"]["compared"] == 20 && doc["history"].as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let route = |name: &str| {
        d["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let doc = route("doc");
    assert_eq!(doc["mode"], "shadow");
    assert_eq!(doc["totals"]["legacy"]["requests"], 20, "{d}");
    assert_eq!(doc["totals"]["compared"], 20, "{d}");
    assert_eq!(
        doc["totals"]["mismatches"], 20,
        "the broken candidate differs every time"
    );
    assert_eq!(doc["totals"]["match_rate"], 0.0);
    assert!(doc["totals"]["legacy"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(doc["history"].as_array().unwrap().len() >= 2);
    let other = route("other");
    assert_eq!(other["totals"]["extracted"]["requests"], 5);
    assert_eq!(d["progress"]["by_mode"]["shadow"], 1);
    assert_eq!(d["progress"]["by_mode"]["extracted"], 1);
    // 5 of the 25 real requests went to an extracted service (shadow copies do not count).
    assert_eq!(d["progress"]["extracted_share"], 0.2, "{d}");
    // Progress over time: every sample has the routes by mode (the page's mode chart).
    let history = d["progress"]["history"].as_array().unwrap();
    assert!(!history.is_empty(), "{d}");
    for point in history {
        assert_eq!(point["by_mode"]["shadow"], 1, "{point}");
        assert_eq!(point["by_mode"]["extracted"], 1, "{point}");
    }

    // The page and its assets, from the binary, nothing from elsewhere.
    let page = get(&c, &proxy.admin_url("/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8_lossy(&page.body);
    for tag in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(tag), "external asset in the page: {tag}");
    }
    for asset in ["/dashboard.js", "/dashboard.css"] {
        assert!(html.contains(asset));
        let got = get(&c, &proxy.admin_url(asset)).await;
        assert_eq!(got.status, 200, "{asset}");
        // Text only: no sink that parses HTML or code (the CSP forbids inline code anyway).
        let text = String::from_utf8_lossy(&got.body);
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "setHTMLUnsafe",
            "document.write",
            "eval(",
            "new Function",
            "createContextualFragment",
        ] {
            assert!(!text.contains(sink), "{asset} uses {sink}");
        }
    }
    // Route names reach URLs only through encodeURIComponent / URLSearchParams.
    let js = String::from_utf8_lossy(&get(&c, &proxy.admin_url("/dashboard.js")).await.body)
        .into_owned();
    assert!(js.contains("encodeURIComponent(name)"));
    assert!(
        !js.contains("/${name}") && !js.contains("route=${"),
        "a route name interpolated into a URL unencoded"
    );
    // Not on the public listener.
    let public = send(
        &c,
        Request::get(proxy.url("/dashboard.js"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(upstream_of(&public), "legacy");
}
