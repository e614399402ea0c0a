//! Graceful shutdown and zero-downtime restart by socket handoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Request;
use http_body_util::Full;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handoff_restart_under_load_fails_no_request() {
    let a = TestUpstream::start("legacy").await;
    let routes = routes_toml(&[("legacy", &a)], "");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let sock = tmp.path().join("ficus.sock");
    let sock_arg = sock.to_str().unwrap().to_owned();
    let mut old = TestProxy::spawn(&config, &["--handoff-socket", &sock_arg]);
    let url = old.url("/work");
    let done = Arc::new(AtomicUsize::new(0));
    const REQUESTS: usize = 4_000;
    const TASKS: usize = 8;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (url, done) = (url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let c = if t % 2 == 0 {
                client()
            } else {
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build_http()
            };
            let mut failures = Vec::new();
            for _ in 0..REQUESTS / TASKS {
                match c
                    .request(Request::get(&url).body(Full::default()).unwrap())
                    .await
                {
                    Ok(r) if r.status() == 200 => {}
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("{e:?}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            failures
        }));
    }
    while done.load(Ordering::SeqCst) < REQUESTS / 4 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The new process takes the sockets over; the old one drains and exits by itself.
    let new = TestProxy::spawn(&config, &["--handoff-socket", &sock_arg]);
    assert_eq!(new.proxy, old.proxy, "same listening socket");
    let status = tokio::task::spawn_blocking(move || {
        let status = old.wait_exit();
        (status, old)
    });
    let (status, old) = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "old ficus exit: {status:?}");
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let served = |p: &TestProxy| {
        p.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["target"] == "ficus::access")
            .count()
    };
    // The old process flushed its access log on exit; the new one flushes every 200 ms.
    for _ in 0..500 {
        if served(&old) + served(&new) >= REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (by_old, by_new) = (served(&old), served(&new));
    assert!(
        by_old > 0 && by_new > 0,
        "old served {by_old}, new served {by_new}"
    );
    assert_eq!(by_old + by_new, REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests() {
    let a = TestUpstream::start("legacy").await;
    let mut proxy = TestProxy::start(&routes_toml(&[("legacy", &a)], ""));
    let url = proxy.url("/slow/700");
    let slow = tokio::spawn(async move { get(&client(), &url).await.status });
    while a.count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.signal("TERM");
    assert_eq!(slow.await.unwrap(), 200, "in-flight request completed");
    let status = tokio::task::spawn_blocking(move || proxy.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}
