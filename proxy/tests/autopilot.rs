//! The autopilot through a running proxy, on the manual test clock
//! (`FICUS_AUTOPILOT_CLOCK=manual`, `POST /admin/autopilot/tick?seconds=N`).

use http::Request;
use http_body_util::Full;
use serde_json::Value;

use crate::support::*;

const INTERVAL: u64 = 60;

fn routes(legacy: &TestUpstream, new: &TestUpstream) -> String {
    routes_with(legacy, new, "")
}

/// [`routes`] with more `[routes.autopilot]` keys.
fn routes_with(legacy: &TestUpstream, new: &TestUpstream, autopilot: &str) -> String {
    format!(
        r#"{}[upstreams.new]
url = "{}"

[[routes]]
name = "doc"
path = "/doc"
mode = "shadow"
extracted = "new"

[routes.shadow]
ignore = ["/generated_at"]

[routes.canary]
percent = 0
cohort = "header:x-user"
compare = true

[routes.autopilot]
steps = [25, 50, 100]
min_requests = 20
max_mismatch_rate = 0.01
max_error_rate = 0.05
max_p99_ratio = 50.0
interval_seconds = {INTERVAL}
{autopilot}"#,
        routes_toml(&[("legacy", legacy)], ""),
        new.url()
    )
}

struct Pilot {
    proxy: TestProxy,
    client: TestClient,
    sent: u64,
    dir: tempfile::TempDir,
}

impl Pilot {
    fn start(text: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), text).unwrap();
        Self::start_in(dir)
    }

    /// Starts a proxy on the routes.toml (and state file) already in `dir`.
    fn start_in(dir: tempfile::TempDir) -> Self {
        Pilot {
            proxy: Self::spawn(&dir.path().join("routes.toml")),
            client: client(),
            sent: 0,
            dir,
        }
    }

    fn spawn(config: &std::path::Path) -> TestProxy {
        TestProxy::spawn_env(config, &[("FICUS_AUTOPILOT_CLOCK", "manual")])
    }

    /// Stops the proxy, then starts a new process on the same routes.toml and state file.
    fn restart(self) -> Self {
        let Pilot {
            proxy,
            client,
            sent,
            dir,
        } = self;
        drop(proxy);
        Pilot {
            proxy: Self::spawn(&dir.path().join("routes.toml")),
            client,
            sent,
            dir,
        }
    }

    async fn admin(&self, path: &str, body: &str) -> Value {
        let got = post(&self.client, &self.proxy.admin_url(path), body).await;
        assert_eq!(got.status, 200, "{:?}", got.body);
        got.json()
    }

    /// The first tick opens the route's first window (the real clock ticks every second).
    async fn open(&self) {
        let t = self.tick(0).await;
        assert_eq!(t["routes"]["doc"]["window"]["compared"], 0, "{t}");
    }

    /// `n` requests from distinct cohorts.
    async fn traffic(&mut self, n: u64) {
        for _ in 0..n {
            self.sent += 1;
            let req = Request::get(self.proxy.url("/doc"))
                .header("x-user", format!("user-{}", self.sent))
                .body(Full::default())
                .unwrap();
            assert_eq!(send(&self.client, req).await.status, 200);
        }
    }

    async fn tick(&self, seconds: u64) -> Value {
        let req = Request::post(
            self.proxy
                .admin_url(&format!("/admin/autopilot/tick?seconds={seconds}")),
        )
        .body(Full::default())
        .unwrap();
        let got = send(&self.client, req).await;
        assert_eq!(got.status, 200, "{:?}", got.body);
        got.json()
    }

    /// Ticks without moving the clock until the window has `n` of everything (the
    /// comparisons finish after the responses), bounded.
    async fn settle(&self, n: u64) -> Value {
        let mut last = Value::Null;
        for _ in 0..2000 {
            let t = self.tick(0).await;
            last = t.clone();
            let w = &t["routes"]["doc"]["window"];
            let have = ["compared", "extracted", "legacy"]
                .iter()
                .map(|k| w[*k].as_u64().unwrap_or(0))
                .min()
                .unwrap_or(0);
            if have >= n || !t["applied"].as_array().unwrap().is_empty() {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the window never filled: {last}");
    }

    async fn mode(&self) -> (String, Option<f64>) {
        let t = get(&self.client, &self.proxy.admin_url("/admin/routes"))
            .await
            .json();
        (
            t["routes"][0]["mode"].as_str().unwrap().to_owned(),
            t["routes"][0]["canary_percent"].as_f64(),
        )
    }
}

/// One step: traffic, a full window, a tick; returns the decisions applied.
async fn step(p: &mut Pilot, requests: u64) -> Value {
    p.traffic(requests).await;
    p.settle(20).await;
    p.tick(INTERVAL).await["applied"].clone()
}

/// Traffic after a fault: the decisions applied once the window has filled, or after one
/// more second on the autopilot's clock (less than one interval).
async fn within_one_interval(p: &mut Pilot, requests: u64) -> Value {
    p.traffic(requests).await;
    let t = p.settle(20).await;
    if t["applied"].as_array().unwrap().is_empty() {
        p.tick(1).await["applied"].clone()
    } else {
        t["applied"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_candidate_is_walked_to_extracted() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes(&legacy, &new));
    p.open().await;

    p.traffic(30).await;
    let t = p.settle(20).await;
    assert_eq!(t["routes"]["doc"]["state"], "shadow");
    // Enough requests, but the window is young: wait.
    assert!(
        t["routes"]["doc"]["next"]
            .as_str()
            .unwrap()
            .contains("of 60s"),
        "{t}"
    );
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["applied"][0]["to"]["mode"], "canary", "{t}");
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));
    // The status says where the route is now (the dashboard shows the mode and the
    // autopilot state side by side), with the new step's window just opened.
    let status = &t["routes"]["doc"];
    assert_eq!(status["state"], "canary", "{t}");
    assert_eq!(status["percent"], 25.0, "{t}");
    assert_eq!(status["window_seconds"], 0, "{t}");
    assert!(
        !status["next"].as_str().unwrap().starts_with("advancing"),
        "{t}"
    );
    let dashboard = get(&p.client, &p.proxy.admin_url("/admin/dashboard"))
        .await
        .json();
    let row = &dashboard["routes"][0];
    assert_eq!(
        (&row["mode"], &row["autopilot"]["state"]),
        (&"canary".into(), &"canary".into()),
        "{dashboard}"
    );

    for expected in [("canary", Some(50.0)), ("extracted", None)] {
        p.traffic(120).await;
        p.settle(20).await;
        let t = p.tick(INTERVAL).await;
        assert_eq!(t["applied"].as_array().unwrap().len(), 1, "{t}");
        assert_eq!(p.mode().await, (expected.0.into(), expected.1));
    }
    assert!(new.count() > 0);
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["routes"]["doc"]["state"], "extracted");
    let routes = get(&p.client, &p.proxy.admin_url("/admin/routes"))
        .await
        .json();
    assert_eq!(routes["routes"][0]["decision"]["by"], "autopilot");
    assert!(
        routes["routes"][0]["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("gates held")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_data_at_step_25_rolls_back_within_one_interval() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes(&legacy, &new));
    p.open().await;
    step(&mut p, 30).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));

    // The candidate starts answering wrong data.
    new.set(Behaviour::Broken);
    let applied = within_one_interval(&mut p, 40).await;
    assert_eq!(applied[0]["to"]["mode"], "legacy", "{applied}");
    let reason = applied[0]["reason"].as_str().unwrap();
    assert!(reason.contains("gate breached: mismatch rate"), "{reason}");
    assert_eq!(p.mode().await, ("legacy".into(), None));
    let t = p.tick(INTERVAL).await;
    assert_eq!(
        t["routes"]["doc"]["state"], "paused",
        "a rollback waits for a human"
    );
    let before = legacy.count();
    p.traffic(5).await;
    assert_eq!(legacy.count(), before + 5, "every user is back on legacy");
    // The event log says who, what and why.
    let events = get(&p.client, &p.proxy.admin_url("/admin/events?route=doc"))
        .await
        .json();
    let newest = &events["events"][0];
    assert_eq!(newest["actor"], "autopilot", "{events}");
    assert_eq!(newest["from"], "canary 25%");
    assert_eq!(newest["to"], "legacy");
    assert!(
        newest["reason"].as_str().unwrap().contains("mismatch rate"),
        "{events}"
    );
    assert_eq!(events["events"][1]["to"], "canary 25%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_hidden_by_the_fallback_still_roll_back() {
    // The extracted side starts failing at step 25. Users never see it (safe requests fall
    // back to legacy), but the failures count against the extracted side.
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    // The mismatch gate is off (the 503s of compared copies would trip it first): only the
    // error gate can see the failures the fallback hides from users.
    let text = routes(&legacy, &new)
        .replace(
            "[upstreams.new]\n",
            "[upstreams.new]\nbreaker_failures = 1000\n",
        )
        .replace("max_mismatch_rate = 0.01", "max_mismatch_rate = 1.0");
    let mut p = Pilot::start(text);
    p.open().await;
    step(&mut p, 30).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));

    new.set(Behaviour::Unavailable);
    let applied = within_one_interval(&mut p, 40).await;
    assert_eq!(applied[0]["to"]["mode"], "legacy", "{applied}");
    let reason = applied[0]["reason"].as_str().unwrap();
    assert!(reason.contains("gate breached: error rate"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_commands_pause_the_autopilot() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes(&legacy, &new));
    p.open().await;
    let admin = format!("http://{}", p.proxy.admin);
    assert!(cli(&["route", "pause", "doc", "--admin", &admin]).0);
    p.traffic(30).await;
    let t = p.tick(INTERVAL).await;
    assert!(t["applied"].as_array().unwrap().is_empty(), "{t}");
    assert_eq!(t["routes"]["doc"]["state"], "paused");
    assert_eq!(p.mode().await.0, "shadow");
    assert!(cli(&["route", "resume", "doc", "--admin", &admin]).0);
    p.open().await;
    p.traffic(30).await;
    p.settle(20).await;
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["applied"][0]["to"]["mode"], "canary", "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_breach_previous_rolls_back_one_step_not_to_legacy() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes_with(&legacy, &new, "on_breach = \"previous\"\n"));
    p.open().await;
    step(&mut p, 30).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));
    step(&mut p, 120).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(50.0)));

    new.set(Behaviour::Broken);
    let applied = within_one_interval(&mut p, 40).await;
    assert_eq!(
        applied[0]["to"],
        serde_json::json!({"mode": "canary", "percent": 25.0}),
        "back to the step that held, not legacy: {applied}"
    );
    assert!(
        applied[0]["reason"]
            .as_str()
            .unwrap()
            .contains("gate breached: mismatch rate"),
        "{applied}"
    );
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["routes"]["doc"]["state"], "paused", "{t}");
    let routes = get(&p.client, &p.proxy.admin_url("/admin/routes"))
        .await
        .json();
    assert_eq!(routes["routes"][0]["decision"]["step"], 0);
    let events = get(&p.client, &p.proxy.admin_url("/admin/events?route=doc"))
        .await
        .json();
    assert_eq!(events["events"][0]["from"], "canary 50%", "{events}");
    assert_eq!(events["events"][0]["to"], "canary 25%", "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_position_and_pause_survive_a_restart() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes(&legacy, &new));
    p.open().await;
    step(&mut p, 30).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));

    // A new process carries on from canary 25%, not from shadow...
    let mut p = p.restart();
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));
    let t = p.tick(0).await;
    let status = &t["routes"]["doc"];
    assert_eq!(status["state"], "canary", "{t}");
    assert_eq!(status["percent"], 25.0, "{t}");
    assert_eq!(status["window"]["compared"], 0, "a new window: {t}");
    // ...and its next step is 50%.
    let applied = step(&mut p, 120).await;
    assert_eq!(applied[0]["from"]["percent"], 25.0, "{applied}");
    assert_eq!(p.mode().await, ("canary".into(), Some(50.0)));

    // A pause survives too.
    p.admin(
        "/admin/routes/doc/pause",
        r#"{"reason": "hold over the restart"}"#,
    )
    .await;
    let mut p = p.restart();
    let t = p.tick(0).await;
    assert_eq!(t["routes"]["doc"]["state"], "paused", "{t}");
    assert_eq!(t["routes"]["doc"]["percent"], 50.0, "{t}");
    let auto = get(&p.client, &p.proxy.admin_url("/admin/autopilot"))
        .await
        .json();
    assert_eq!(auto["routes"]["doc"]["state"], "paused", "{auto}");
    p.traffic(120).await;
    let t = p.tick(INTERVAL).await;
    assert!(t["applied"].as_array().unwrap().is_empty(), "{t}");
    assert_eq!(p.mode().await, ("canary".into(), Some(50.0)));
    // The event log carries over as well: newest first.
    let events = get(&p.client, &p.proxy.admin_url("/admin/events?route=doc"))
        .await
        .json();
    let to: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["canary 50%", "canary 50%", "canary 25%"], "{events}");
    assert_eq!(events["events"][0]["reason"], "hold over the restart");
}

use crate::support::CLI_ACTOR as ACTOR;

/// [`ficus_cli`] with stdout and stderr together.
fn cli(args: &[&str]) -> (bool, String) {
    let (ok, out, err) = ficus_cli(args);
    (ok, out + &err)
}

async fn events(p: &Pilot) -> Vec<Value> {
    get(&p.client, &p.proxy.admin_url("/admin/events?route=doc"))
        .await
        .json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

// Regression: `set --write` edited routes.toml, which made the autopilot's recorded
// decision stale; it was dropped with its `paused` flag and the autopilot kept driving
// the route from the written value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_write_on_an_autopilot_route_pauses_it() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let mut p = Pilot::start(routes(&legacy, &new));
    p.open().await;
    step(&mut p, 30).await;
    assert_eq!(p.mode().await, ("canary".into(), Some(25.0)));

    let config = p.dir.path().join("routes.toml");
    let admin = format!("http://{}", p.proxy.admin);
    let (ok, out) = cli(&[
        "route",
        "set",
        "doc",
        "--mode",
        "canary",
        "--percent",
        "10",
        "--write",
        "--config",
        config.to_str().unwrap(),
        "--admin",
        &admin,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("paused the route's autopilot"), "{out}");
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("percent = 10")
    );
    // In force when the command returns, and paused at the written value.
    assert_eq!(p.mode().await, ("canary".into(), Some(10.0)));
    let routes = get(&p.client, &p.proxy.admin_url("/admin/routes"))
        .await
        .json();
    let decision = &routes["routes"][0]["decision"];
    assert_eq!(decision["paused"], true, "{routes}");
    assert_eq!(decision["by"], ACTOR);
    assert_eq!(
        decision["base"],
        serde_json::json!({"mode": "canary", "percent": 10.0}),
        "the decision is taken on the edited file, so it is not stale"
    );
    p.traffic(30).await;
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["routes"]["doc"]["state"], "paused", "{t}");
    assert!(t["applied"].as_array().unwrap().is_empty(), "{t}");
    assert_eq!(p.mode().await, ("canary".into(), Some(10.0)));
    // The event log: the file edit, then the pause, with who and why.
    let events = events(&p).await;
    assert_eq!(events[0]["actor"], ACTOR, "{events:?}");
    assert_eq!(events[0]["to"], "canary 10%");
    let reason = events[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("--write") && reason.contains("autopilot paused"),
        "{reason}"
    );
    assert_eq!(events[1]["actor"], "file", "{events:?}");
    assert_eq!(events[1]["from"], "canary 25%");
    assert_eq!(events[1]["to"], "canary 10%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_write_with_no_proxy_running_records_the_pause_for_the_next_start() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes(&legacy, &new)).unwrap();
    // listen.admin is 127.0.0.1:0 in test files: nothing answers there.
    let (ok, out) = cli(&[
        "route",
        "set",
        "doc",
        "--mode",
        "canary",
        "--percent",
        "10",
        "--write",
        "--config",
        config.to_str().unwrap(),
        "--reason",
        "start small",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("no ficus answered"), "{out}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ficus-state.json")).unwrap())
            .unwrap();
    let entry = &state["routes"]["doc"];
    assert_eq!(entry["paused"], true, "{state}");
    assert_eq!(entry["by"], ACTOR);
    assert_eq!(
        entry["base"],
        serde_json::json!({"mode": "canary", "percent": 10.0})
    );

    let mut p = Pilot::start_in(dir);
    assert_eq!(p.mode().await, ("canary".into(), Some(10.0)));
    p.traffic(30).await;
    let t = p.tick(INTERVAL).await;
    assert_eq!(t["routes"]["doc"]["state"], "paused", "{t}");
    let events = events(&p).await;
    assert_eq!(events[0]["actor"], ACTOR, "{events:?}");
    assert_eq!(events[0]["from"], "shadow");
    assert_eq!(events[0]["to"], "canary 10%");
    assert_eq!(events[0]["reason"], "start small; autopilot paused");
}
