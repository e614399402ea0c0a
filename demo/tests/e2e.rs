//! End-to-end: the demo stack starts for real (ephemeral ports), serves requests through
//! the proxy, and stops cleanly on SIGINT.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn get(url: &str) -> (u16, String) {
    // A minimal HTTP/1.1 GET over std, enough for a smoke test without another client stack.
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
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

#[test]
fn demo_stack_serves_through_the_proxy_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let routes = concat!(env!("CARGO_MANIFEST_DIR"), "/../routes.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ficus-demo"))
        .args([
            "--ephemeral",
            "--users",
            "200",
            "--routes",
            routes,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("FICUS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut proxy = None;
    let mut admin = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("proxy:") {
            proxy = Some(u.trim().to_owned());
        }
        if let Some(u) = line.trim().strip_prefix("admin:") {
            admin = Some(u.split_whitespace().next().unwrap().to_owned());
        }
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (proxy, admin) = (proxy.unwrap(), admin.unwrap());

    // ficus binds right after the banner: poll (bounded) until it answers.
    let mut top = (0, String::new());
    for _ in 0..200 {
        if std::net::TcpStream::connect(proxy.trim_start_matches("http://")).is_ok() {
            top = get(&format!("{proxy}/api/content/top?limit=3"));
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(top.0, 200, "{}", top.1);
    let v: serde_json::Value = serde_json::from_str(&top.1).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 3);

    let (status, body) = get(&format!("{proxy}/api/users/7/subscription"));
    assert!(status < 500, "{status} {body}");
    let (status, body) = get(&admin);
    assert_eq!(status, 200);
    let routes: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "top-content")
    );

    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exit {status:?}");
}
