//! End-to-end: the demo stack starts for real (ephemeral ports), serves requests through
//! the proxy, and stops cleanly on SIGINT.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A minimal HTTP/1.1 GET over std (one extra header line), enough for smoke tests.
fn get_with(url: &str, header: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(url: &str) -> (u16, String) {
    get_with(url, "X-Test: 1")
}

struct Demo {
    child: Child,
    proxy: String,
    /// Base URL of the admin API.
    admin: String,
    jobs: String,
}

fn start(routes: &Path, data: &Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ficus-demo"))
        .args(["--ephemeral", "--users", "200", "--routes"])
        .arg(routes)
        .arg("--data-dir")
        .arg(data)
        .env("FICUS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut proxy, mut admin, mut jobs) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("proxy:") {
            proxy = Some(u.trim().to_owned());
        }
        if let Some(u) = line.trim().strip_prefix("admin:") {
            admin = Some(
                u.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches("/admin/routes")
                    .to_owned(),
            );
        }
        if let Some(u) = line.trim().strip_prefix("jobs:") {
            jobs = Some(
                u.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches("/jobs")
                    .to_owned(),
            );
        }
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // Every listener is bound (and held) before the banner, so connections queue until
    // the services and the proxy serve them.
    Demo {
        child,
        proxy: proxy.unwrap(),
        admin: admin.unwrap(),
        jobs: jobs.unwrap(),
    }
}

impl Demo {
    fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "demo exit {status:?}");
    }
}

#[test]
fn demo_stack_serves_through_the_proxy_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let routes = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../routes.toml"));
    let demo = start(routes, dir.path());

    let (status, body) = get(&format!("{}/api/content/top?limit=3", demo.proxy));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 3);

    // top-content runs in shadow mode in routes.toml: content-ranking is compared with legacy.
    let top = |shadow: &serde_json::Value| {
        shadow["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["route"] == "top-content"))
            .cloned()
            .unwrap_or_default()
    };
    let mut shadow = serde_json::Value::Null;
    for _ in 0..400 {
        shadow = serde_json::from_str(&get(&format!("{}/admin/shadow", demo.admin)).1).unwrap();
        let t = top(&shadow);
        if t["match"].as_u64().unwrap_or(0) + t["mismatch"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(top(&shadow)["route"], "top-content", "{shadow}");
    assert_eq!(
        top(&shadow)["match"],
        1,
        "legacy and content-ranking agree: {shadow}"
    );

    // The jobs worker runs beside the services.
    let (status, body) = get(&format!("{}/healthz", demo.jobs));
    assert_eq!(status, 200, "{body}");

    let (status, body) = get(&format!("{}/admin/routes", demo.admin));
    assert_eq!(status, 200);
    let routes: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "top-content")
    );

    // The autopilot drives `subscription` from shadow through canary steps (the dashboard
    // and scripts/browser-test.sh show it): it starts in shadow with a next gate.
    // (Its status appears with the autopilot's first tick.)
    let mut autopilot = serde_json::Value::Null;
    for _ in 0..400 {
        let (status, body) = get(&format!("{}/admin/autopilot", demo.admin));
        assert_eq!(status, 200, "{body}");
        autopilot = serde_json::from_str(&body).unwrap();
        if autopilot["routes"]["subscription"].is_object() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let sub = &autopilot["routes"]["subscription"];
    assert_eq!(sub["state"], "shadow", "{autopilot}");
    assert_eq!(
        sub["steps"],
        serde_json::json!([10.0, 50.0, 100.0]),
        "{autopilot}"
    );
    assert!(
        !sub["next"].as_str().unwrap_or_default().is_empty(),
        "{autopilot}"
    );
    demo.stop();
}

/// With every route flipped to its extracted service, each service answers through the
/// proxy for the caller's own data: the proxy verifies the legacy-issued token and injects
/// the identity the services require. Without a token, with a forged identity header, or
/// for someone else's id, the proxy refuses before any service sees the request.
#[test]
fn each_extracted_service_answers_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../routes.toml")).unwrap();
    let routes = dir.path().join("routes.extracted.toml");
    let flipped = text
        .replace("mode = \"legacy\"", "mode = \"extracted\"")
        .replace("mode = \"shadow\"", "mode = \"extracted\"");
    std::fs::write(&routes, flipped).unwrap();
    let demo = start(&routes, dir.path());
    let (status, body) = get(&format!("{}/api/content/top?limit=2", demo.proxy));
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_json(
        &format!("{}/api/auth/login", demo.proxy),
        r#"{"email":"user7@fitness.example","password":"password7"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let login: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Authorization: Bearer {}", login["token"].as_str().unwrap());
    for (route, path) in [
        ("subscription", "/api/users/7/subscription"),
        ("preferences", "/api/users/7/preferences"),
    ] {
        let (status, body) = get_with(&format!("{}{path}", demo.proxy), &bearer);
        assert!(status == 200 || status == 404, "{path}: {status} {body}");
        assert!(
            !body.contains("x-ficus-subject"),
            "{path}: the service got the verified identity: {body}"
        );
        let (status, _) = get(&format!("{}{path}", demo.proxy));
        assert_eq!(status, 401, "{path}: no token");
        let (status, _) = get_with(&format!("{}{path}", demo.proxy), "X-Ficus-Subject: 7");
        assert_eq!(status, 401, "{path}: a client-sent identity is not a token");
        let other = path.replace("/7/", "/8/");
        let (status, _) = get_with(&format!("{}{other}", demo.proxy), &bearer);
        assert_eq!(status, 403, "{other}: someone else's data");
        // The extracted side answered the one authorised request.
        let (_, metrics) = get(&format!("{}/metrics", demo.admin));
        let answered = metrics.lines().any(|l| {
            l.starts_with("ficus_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && !l.contains("upstream=\"legacy\"")
                && !l.contains("upstream=\"ficus\"")
                && !l.ends_with(" 0")
        });
        assert!(
            answered,
            "{route} not answered by its extracted service:\n{metrics}"
        );
    }
    demo.stop();
}

/// A minimal HTTP/1.1 POST of a JSON body over std.
fn post_json(url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
