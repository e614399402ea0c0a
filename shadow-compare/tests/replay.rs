//! `shadow-compare replay` against two real HTTP servers bound to 127.0.0.1:0 in the test.

use std::process::Command;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_shadow-compare");

/// Serve `app` on an ephemeral loopback port; returns the base URL. The server task ends
/// with the test's runtime.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn app(candidate: bool) -> Router {
    let json_response = |value: Value| {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
    };
    Router::new()
        .route(
            "/api/same",
            get(move || async move { json_response(json!({"ok": true, "n": [1, 2]})) }),
        )
        .route(
            "/api/items",
            get(move || async move {
                let (score, stamp) = if candidate { (0.4, "b") } else { (0.5, "a") };
                json_response(json!({
                    "generated_at": stamp,
                    "items": [{"id": 1, "score": score}, {"id": 2, "score": 0.1}],
                }))
            }),
        )
        .route(
            "/api/echo",
            post(move |body: Bytes| async move {
                let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                json_response(json!({ "received": received }))
            }),
        )
        .route(
            "/api/status",
            get(move || async move {
                if candidate {
                    (StatusCode::NOT_FOUND, "missing")
                } else {
                    (StatusCode::OK, "here")
                }
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_against_two_servers() {
    let legacy = serve(app(false)).await;
    let candidate = serve(app(true)).await;
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        [
            r#"{"method": "GET", "path": "/api/same"}"#,
            r#"{"method": "GET", "path": "/api/items", "headers": {"accept": "application/json"}}"#,
            "",
            r#"{"method": "POST", "path": "/api/echo", "body": {"x": 1}, "recorded_at": "ignored"}"#,
            r#"{"method": "GET", "path": "/api/status"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = dir.path().join("report.json");

    let args: Vec<String> = [
        "replay",
        "--requests",
        &requests.to_string_lossy(),
        "--legacy",
        &legacy,
        "--candidate",
        &candidate,
        "--out",
        &out.to_string_lossy(),
        "--concurrency",
        "2",
        "--ignore",
        "/generated_at",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.is_empty(),
        "no progress bar when not a terminal: {stderr}"
    );

    let out_text = out.to_string_lossy().into_owned();
    let stdout = stdout.replace(&out_text, "[REPORT]");
    insta::assert_snapshot!("replay_summary", stdout);

    let report = std::fs::read_to_string(&out)
        .unwrap()
        .replace(&legacy, "[LEGACY]")
        .replace(&candidate, "[CANDIDATE]");
    let parsed: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(parsed["total"], 4);
    assert_eq!(parsed["matched"], 2);
    assert_eq!(parsed["mismatched"], 2);
    insta::assert_snapshot!("replay_report", report);
}

#[test]
fn bad_request_line_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        "{\"method\": \"GET\", \"path\": \"/ok\"}\n{\"path\": \"/no-method\"}\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["replay", "--requests"])
        .arg(&requests)
        .args([
            "--legacy",
            "http://127.0.0.1:1",
            "--candidate",
            "http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("requests.jsonl:2: expected {\"method\""),
        "{stderr}"
    );
    assert!(stderr.contains("missing field `method`"), "{stderr}");
}
