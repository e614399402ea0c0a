//! `ficus route set|pause|resume|rollback` against a running proxy, the state file that
//! records decisions (and survives restarts), and `set --write` editing routes.toml.

use std::time::Duration;

use crate::support::*;

fn routes(legacy: &TestUpstream, new: &TestUpstream) -> String {
    format!(
        "{}[upstreams.new]\nurl = \"{}\"\n\n# the canary candidate\n[[routes]]\nname = \"feed\"   # keep this comment\npath = \"/feed/{{*rest}}\"\nmode = \"shadow\"\nextracted = \"new\"\n",
        routes_toml(&[("legacy", legacy)], ""),
        new.url()
    )
}

use crate::support::{CLI_ACTOR as ACTOR, ficus_cli as ficus};

async fn answered_by(c: &TestClient, proxy: &TestProxy) -> String {
    upstream_of(&get(c, &proxy.url("/feed/x")).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_commands_take_effect_persist_and_lose_to_file_edits() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("routes.toml");
    std::fs::write(&config, routes(&legacy, &new)).unwrap();
    let proxy = TestProxy::spawn(&config, &[]);
    let admin = format!("http://{}", proxy.admin);
    let c = client();
    assert_eq!(answered_by(&c, &proxy).await, "legacy");

    let (ok, out, err) = ficus(&[
        "route",
        "set",
        "feed",
        "--mode",
        "canary",
        "--percent",
        "100",
        "--admin",
        &admin,
        "--reason",
        "step one",
    ]);
    assert!(ok, "{out}{err}");
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied["from"]["mode"], "shadow");
    assert_eq!(
        applied["to"],
        serde_json::json!({"mode": "canary", "percent": 100.0})
    );
    assert_eq!(
        answered_by(&c, &proxy).await,
        "new",
        "applied before the command returned"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ficus-state.json")).unwrap())
            .unwrap();
    assert_eq!(state["routes"]["feed"]["by"], ACTOR);
    assert_eq!(state["routes"]["feed"]["reason"], "step one");
    assert_eq!(
        state["routes"]["feed"]["paused"], true,
        "manual changes pause the autopilot"
    );
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("mode = \"shadow\""),
        "routes.toml is never rewritten by a run-time command"
    );

    // Invalid: refused, nothing changes.
    let (ok, _, err) = ficus(&[
        "route",
        "set",
        "feed",
        "--percent",
        "250",
        "--admin",
        &admin,
    ]);
    assert!(!ok);
    assert!(err.contains("percent"), "{err}");
    let (ok, _, err) = ficus(&[
        "route", "set", "nope", "--mode", "legacy", "--admin", &admin,
    ]);
    assert!(!ok && err.contains("no route named"), "{err}");
    assert_eq!(answered_by(&c, &proxy).await, "new");

    // The decision survives a restart.
    drop(proxy);
    let proxy = TestProxy::spawn(&config, &[]);
    let admin = format!("http://{}", proxy.admin);
    assert_eq!(answered_by(&c, &proxy).await, "new");
    let table = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(table["routes"][0]["decision"]["mode"], "canary");

    let (ok, out, err) = ficus(&["route", "rollback", "feed", "--admin", &admin]);
    assert!(ok, "{out}{err}");
    assert_eq!(answered_by(&c, &proxy).await, "legacy");
    let (ok, _, _) = ficus(&["route", "resume", "feed", "--admin", &admin]);
    assert!(ok);
    let table = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(table["routes"][0]["decision"]["paused"], false);
    assert_eq!(table["routes"][0]["mode"], "legacy");

    // Editing the route in routes.toml wins over the recorded decision.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("mode = \"shadow\"", "mode = \"extracted\"");
    std::fs::write(&config, text).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered_by(&c, &proxy).await != "new" {
        assert!(
            std::time::Instant::now() < deadline,
            "file edit not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let table = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(table["stale_decisions"], serde_json::json!(["feed"]));
    assert!(table["routes"][0]["decision"].is_null());
    // Every change is in the event log, newest first, across the restart (the filter
    // is URL-decoded: "f%65ed" is "feed").
    let events = get(&c, &proxy.admin_url("/admin/events?route=f%65ed"))
        .await
        .json();
    let seen: Vec<(String, String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["from"].as_str().unwrap_or("-").to_owned(),
                e["to"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let want = [
        ("file", "legacy", "extracted"),
        (ACTOR, "legacy", "legacy"),
        (ACTOR, "canary 100%", "legacy"),
        (ACTOR, "shadow", "canary 100%"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, f, t)| (a.to_string(), f.to_string(), t.to_string()))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(events["events"][2]["reason"], "manual rollback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_write_edits_routes_toml_in_place_and_the_proxy_follows() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("routes.toml");
    let before = routes(&legacy, &new);
    std::fs::write(&config, &before).unwrap();
    let proxy = TestProxy::spawn(&config, &[]);
    let c = client();
    let cfg = config.to_str().unwrap();

    let (ok, out, err) = ficus(&[
        "route",
        "set",
        "feed",
        "--mode",
        "canary",
        "--percent",
        "100",
        "--write",
        "--config",
        cfg,
    ]);
    assert!(ok, "{out}{err}");
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(
        after.contains("name = \"feed\"   # keep this comment"),
        "{after}"
    );
    assert!(after.contains("# the canary candidate"), "{after}");
    assert!(
        after.contains("mode = \"canary\"") && after.contains("percent = 100"),
        "{after}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered_by(&c, &proxy).await != "new" {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy did not reload the edit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An edit that would not validate is refused and the file left alone.
    let (ok, _, err) = ficus(&[
        "route",
        "set",
        "feed",
        "--percent",
        "101",
        "--write",
        "--config",
        cfg,
    ]);
    assert!(!ok && err.contains("does not validate"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), after);
}

// Regression: `set --percent N` on a route that stays in shadow mode was accepted by the
// API, dropped the percent, still paused the autopilot and logged "shadow -> shadow"
// (`--write` refused the same input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_without_canary_mode_is_refused_by_the_api_and_the_cli() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("routes.toml");
    std::fs::write(&config, routes(&legacy, &new)).unwrap();
    let proxy = TestProxy::spawn(&config, &[]);
    let admin = format!("http://{}", proxy.admin);
    let c = client();
    let url = proxy.admin_url("/admin/routes/feed");

    for (body, want) in [
        (
            r#"{"percent": 10}"#,
            "route \"feed\": percent applies to mode \"canary\" only, and the route would be in shadow mode",
        ),
        (
            r#"{"mode": "extracted", "percent": 10}"#,
            "percent applies to mode \"canary\" only, and the route would be in extracted mode",
        ),
        (
            r#"{"mode": "canary", "percent": 250}"#,
            "canary.percent = 250 must be between 0 and 100",
        ),
        (
            r#"{"mode": "canary", "percent": -1}"#,
            "canary.percent = -1 must be between 0 and 100",
        ),
    ] {
        let got = post(&c, &url, body).await;
        assert_eq!(got.status, 422, "{body}: {:?}", got.body);
        let v = got.json();
        assert_eq!(v["error"], "the change does not validate");
        let errors: Vec<&str> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let errors = errors.join("\n");
        assert!(errors.contains(want), "{body}: {errors}");
    }
    let (ok, _, err) = ficus(&["route", "set", "feed", "--percent", "10", "--admin", &admin]);
    assert!(!ok);
    assert!(
        err.contains("422") && err.contains("percent applies to mode \"canary\" only"),
        "{err}"
    );
    // Nothing was recorded: no decision, autopilot not paused, no event.
    assert!(!tmp.path().join("ficus-state.json").exists());
    let table = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(table["routes"][0]["mode"], "shadow");
    assert!(table["routes"][0]["decision"].is_null());
    let events = get(&c, &proxy.admin_url("/admin/events?route=feed"))
        .await
        .json();
    assert_eq!(events["events"], serde_json::json!([]), "{events}");
}
