//! Hot reload: flips under load, refused bad files, editor renames, ConfigMap symlink swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Request;
use http_body_util::Full;

use crate::support::*;

fn flip_routes(ups: &[(&str, &TestUpstream)], target: &str) -> String {
    let route = if target == "legacy" {
        "[[routes]]\nname = \"flip\"\npath = \"/flip\"\nmode = \"legacy\"\n".to_owned()
    } else {
        format!(
            "[[routes]]\nname = \"flip\"\npath = \"/flip\"\nmode = \"extracted\"\nextracted = \"{target}\"\n"
        )
    };
    routes_toml(ups, &route)
}

async fn version(c: &TestClient, proxy: &TestProxy) -> String {
    get(c, &proxy.admin_url("/admin/routes")).await.json()["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_flips_under_load_lose_nothing() {
    let a = TestUpstream::start("legacy").await;
    let b = TestUpstream::start("b").await;
    let cu = TestUpstream::start("c").await;
    let ups = [("legacy", &a), ("b", &b), ("c", &cu)];
    // Table k routes /flip to ROTATION[k % 4].
    const ROTATION: [&str; 4] = ["legacy", "b", "legacy", "c"];
    let proxy = Arc::new(TestProxy::start(&flip_routes(&ups, ROTATION[0])));
    let committed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    const REQUESTS: usize = 20_000;
    const FLIPS: usize = 200;
    const TASKS: usize = 8;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (proxy, committed, done) = (proxy.clone(), committed.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Half the tasks reuse connections, half open a new one per request.
            let c = if t % 2 == 0 {
                client()
            } else {
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build_http()
            };
            let mut bad = Vec::new();
            for _ in 0..REQUESTS / TASKS {
                let start = committed.load(Ordering::SeqCst);
                let resp = c
                    .request(
                        Request::get(proxy.url("/flip"))
                            .body(Full::default())
                            .unwrap(),
                    )
                    .await;
                let end = committed.load(Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let who = r.headers()["x-upstream"].to_str().unwrap().to_owned();
                        let allowed: Vec<&str> =
                            (start..=end + 1).map(|k| ROTATION[k % 4]).collect();
                        if !allowed.contains(&who.as_str()) {
                            bad.push(format!(
                                "tables {start}..={} allow {allowed:?}, got {who}",
                                end + 1
                            ));
                        }
                    }
                    Ok(r) => bad.push(format!("status {}", r.status())),
                    Err(e) => bad.push(format!("error {e}")),
                }
            }
            bad
        }));
    }

    let c = client();
    let bad_files = [
        ("truncated", "legacy = \"legacy\"\n[listen\n".to_owned()),
        (
            "unknown upstream",
            flip_routes(&ups, "b").replace("extracted = \"b\"", "extracted = \"nope\""),
        ),
        (
            "overlap",
            flip_routes(&ups, "b")
                + "\n[[routes]]\nname = \"flip2\"\npath = \"/flip\"\nmode = \"legacy\"\n",
        ),
    ];
    for k in 1..=FLIPS {
        // Spread the flips over the request stream without sleeping.
        while done.load(Ordering::SeqCst) < k * REQUESTS / (FLIPS + 20) {
            tokio::task::yield_now().await;
        }
        if k % 20 == 0 {
            let (what, text) = &bad_files[(k / 20) % bad_files.len()];
            let before = version(&c, &proxy).await;
            std::fs::write(&proxy.config, text).unwrap();
            let got = reload(&c, &proxy).await;
            assert_eq!(got.status, 422, "{what} file accepted");
            assert_eq!(got.json()["result"], "failure");
            let routes = get(&c, &proxy.admin_url("/admin/routes")).await.json();
            assert_eq!(routes["version"], before.as_str(), "{what}: table changed");
            assert!(
                routes["last_reload_error"].is_array(),
                "{what}: no last_reload_error"
            );
        }
        std::fs::write(&proxy.config, flip_routes(&ups, ROTATION[k % 4])).unwrap();
        let got = reload(&c, &proxy).await;
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        committed.store(k, Ordering::SeqCst);
    }
    let mut bad = Vec::new();
    for t in tasks {
        bad.extend(t.await.unwrap());
    }
    assert!(
        bad.is_empty(),
        "{} bad responses, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(done.load(Ordering::SeqCst), REQUESTS);
    let routes = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert!(routes["last_reload_error"].is_null());
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    // At least the admin reloads of bad files failed (the file watcher may have tried them too).
    assert!(counter(&m, "ficus_config_reloads_total{result=\"failure\"}") >= (FLIPS / 20) as f64);
}

/// Polls (bounded) until the admin API reports a version other than `old`.
async fn wait_version_change(c: &TestClient, proxy: &TestProxy, old: &str) -> String {
    for _ in 0..500 {
        let v = version(c, proxy).await;
        if v != old {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the proxy did not pick up the change within 5s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_rename_is_picked_up() {
    let a = TestUpstream::start("legacy").await;
    let b = TestUpstream::start("b").await;
    let ups = [("legacy", &a), ("b", &b)];
    let proxy = TestProxy::start(&flip_routes(&ups, "legacy"));
    let c = client();
    let v0 = version(&c, &proxy).await;
    // What vim and most editors do: write a temp file, rename it over the original.
    let tmp = proxy.dir.join(".routes.toml.swp");
    std::fs::write(&tmp, flip_routes(&ups, "b")).unwrap();
    std::fs::rename(&tmp, &proxy.config).unwrap();
    wait_version_change(&c, &proxy, &v0).await;
    assert_eq!(
        get(&c, &proxy.url("/flip")).await.headers["x-upstream"],
        "b"
    );
    // A bad edit saved the same way is refused; the old table keeps serving.
    let v1 = version(&c, &proxy).await;
    std::fs::write(&tmp, "legacy = 1\n").unwrap();
    std::fs::rename(&tmp, &proxy.config).unwrap();
    proxy.wait_log("file reload refused", |v| {
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("routes file rejected")
    });
    assert_eq!(version(&c, &proxy).await, v1);
    assert_eq!(
        get(&c, &proxy.url("/flip")).await.headers["x-upstream"],
        "b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_is_picked_up() {
    let a = TestUpstream::start("legacy").await;
    let b = TestUpstream::start("b").await;
    let ups = [("legacy", &a), ("b", &b)];
    // Kubernetes layout: routes.toml -> ..data/routes.toml, ..data -> ..v1
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("..v1")).unwrap();
    std::fs::write(dir.join("..v1/routes.toml"), flip_routes(&ups, "legacy")).unwrap();
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.toml", dir.join("routes.toml")).unwrap();
    let proxy = TestProxy::spawn(&dir.join("routes.toml"), &[]);
    let c = client();
    let v0 = version(&c, &proxy).await;
    assert_eq!(
        get(&c, &proxy.url("/flip")).await.headers["x-upstream"],
        "legacy"
    );
    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::write(dir.join("..v2/routes.toml"), flip_routes(&ups, "b")).unwrap();
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    wait_version_change(&c, &proxy, &v0).await;
    assert_eq!(
        get(&c, &proxy.url("/flip")).await.headers["x-upstream"],
        "b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_listen_changes_need_a_restart() {
    let a = TestUpstream::start("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &a)], ""));
    proxy.signal("HUP");
    proxy.wait_log("signal reload", |v| v["trigger"] == "Signal");
    let c = client();
    let text = std::fs::read_to_string(&proxy.config)
        .unwrap()
        .replace("admin = \"127.0.0.1:0\"", "admin = \"127.0.0.2:0\"");
    std::fs::write(&proxy.config, text).unwrap();
    let got = reload(&c, &proxy).await;
    assert_eq!(got.status, 200);
    let report = got.json();
    assert!(
        report["restart_required"][0]
            .as_str()
            .unwrap()
            .starts_with("listen.admin"),
        "{report}"
    );
    let routes = get(&c, &proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(
        routes["listen"]["admin"],
        proxy.admin.to_string().as_str(),
        "still on the old address"
    );
    assert!(routes["restart_required"][0].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_pools_survive_an_unrelated_reload() {
    let a = TestUpstream::start("legacy").await;
    let b = TestUpstream::start("b").await;
    let ups = [("legacy", &a), ("b", &b)];
    // One worker: the client's connections all land on the thread that owns the pool.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, flip_routes(&ups, "b")).unwrap();
    let proxy = TestProxy::spawn(&config, &["--threads", "1"]);
    let c = client();
    get(&c, &proxy.url("/x")).await;
    get(&c, &proxy.url("/x")).await;
    let before: Vec<_> = a.seen().iter().map(|s| s.peer).collect();
    assert_eq!(before[0], before[1], "keep-alive to the upstream");
    // Change something unrelated to `legacy`.
    std::fs::write(&proxy.config, flip_routes(&ups, "legacy")).unwrap();
    assert_eq!(reload(&c, &proxy).await.status, 200);
    get(&c, &proxy.url("/x")).await;
    assert_eq!(
        a.seen()[2].peer,
        before[0],
        "the pooled connection was reused after the reload"
    );
}
