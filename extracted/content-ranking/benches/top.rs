//! `GET /api/content/top` load test: legacy vs content-ranking on the demo dataset (10,000
//! users, 2,000 items), both in-process on 127.0.0.1:0, real HTTP/1.1 over loopback, a
//! bounded number of requests from a fixed number of concurrent clients.
//!
//! Run: `cargo bench -p content-ranking --bench top` (env `BENCH_CONCURRENCY`, default 8;
//! `BENCH_LEGACY_REQUESTS`, default 400; `BENCH_RANKING_REQUESTS`, default 8000).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn db() -> fitness_data::rusqlite::Connection {
    let mut c = fitness_data::open_in_memory().unwrap();
    fitness_data::generate(&mut c, &fitness_data::GenerateConfig::default()).unwrap();
    c
}

/// Half anonymous `limit=10`, half personalised `limit=20` for spread users.
fn uri(i: usize) -> String {
    if i % 2 == 0 {
        "/api/content/top?limit=10".to_owned()
    } else {
        format!(
            "/api/content/top?limit=20&user_id={}",
            1 + (i * 7919) % 10_000
        )
    }
}

struct Result {
    requests: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
}

async fn load(base: &str, total: usize, concurrency: usize) -> Result {
    let http = reqwest::Client::new();
    // Warm up: connections, caches.
    for i in 0..concurrency * 2 {
        let res = http.get(format!("{base}{}", uri(i))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let http = http.clone();
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = worker;
            while i < total {
                let t = Instant::now();
                let res = http.get(format!("{base}{}", uri(i))).send().await.unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                lat.push(t.elapsed());
                i += concurrency;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Result {
        requests: all.len(),
        wall,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let concurrency = env_num("BENCH_CONCURRENCY", 8);
    let legacy_n = env_num("BENCH_LEGACY_REQUESTS", 400);
    let ranking_n = env_num("BENCH_RANKING_REQUESTS", 8000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let legacy = fitness_legacy::start(
            fitness_legacy::AppState::new(db(), fitness_legacy::Config::default()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let state = content_ranking::AppState::load(
            content_ranking::store::SqliteStore::new(service_kit::sqlite::SqliteDb::new(db())),
            service_kit::Clock::system(),
        )
        .await
        .unwrap();
        let ranking = service_kit::start(content_ranking::app(state), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let l = load(&legacy.url(), legacy_n, concurrency).await;
        let r = load(&ranking.url(), ranking_n, concurrency).await;
        println!("GET /api/content/top, 10,000 users / 2,000 items, {concurrency} concurrent clients, half personalised");
        println!("| server | requests | p50 ms | p99 ms | req/s |");
        println!("| --- | --- | --- | --- | --- |");
        for (name, x) in [("legacy", &l), ("content-ranking", &r)] {
            println!(
                "| {name} | {} | {} | {} | {:.0} |",
                x.requests,
                ms(x.p50),
                ms(x.p99),
                x.requests as f64 / x.wall.as_secs_f64()
            );
        }
        let speedup = (r.requests as f64 / r.wall.as_secs_f64()) / (l.requests as f64 / l.wall.as_secs_f64());
        println!("throughput ratio content-ranking / legacy: {speedup:.1}x; p50 ratio: {:.1}x", l.p50.as_secs_f64() / r.p50.as_secs_f64());
        legacy.stop().await.unwrap();
        ranking.stop().await.unwrap();
    });
}
