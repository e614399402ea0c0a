//! The migration dashboard: the page on the admin listener's `/` (assets embedded in
//! the binary) and the JSON it polls, `GET /admin/dashboard`.
//!
//! Everything shown is computed from the process's own counters: per route and side
//! (legacy, extracted) the requests, 5xx and latency histogram, and the shadow outcomes.
//! A sampler reads them every few seconds into a bounded history (rates, error rates,
//! p50/p99 and match rates per interval) for the sparklines. Requests refused at the edge
//! (upstream "ficus") are not any side's traffic.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::file::Mode;
use crate::config::table::{Route, RouteTable};
use crate::metrics::Buckets;
use crate::state::Shared;

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
pub const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// Points kept per series (at the default 5 s: half an hour).
pub const HISTORY: usize = 360;
/// Environment variable: sampling period in milliseconds (default 5000).
pub const EVERY_ENV: &str = "FICUS_DASHBOARD_EVERY_MS";

/// Counters of one side of a route.
#[derive(Debug, Clone, Default)]
struct Side {
    by_class: [u64; 5],
    latency: Buckets,
}

impl Side {
    fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    fn since(&self, earlier: &Side) -> Side {
        let mut by_class = [0; 5];
        for (i, c) in by_class.iter_mut().enumerate() {
            *c = self.by_class[i].saturating_sub(earlier.by_class[i]);
        }
        Side {
            by_class,
            latency: self.latency.since(&earlier.latency),
        }
    }

    fn stats(&self, seconds: Option<f64>) -> SideStats {
        let n = self.requests();
        SideStats {
            requests: n,
            rps: seconds.filter(|s| *s > 0.0).map(|s| n as f64 / s),
            error_rate: (n > 0).then(|| self.by_class[4] as f64 / n as f64),
            p50_ms: self.latency.quantile(0.5).map(|s| s * 1000.0),
            p99_ms: self.latency.quantile(0.99).map(|s| s * 1000.0),
        }
    }
}

/// What the page shows for one side.
#[derive(Debug, Clone, Serialize)]
pub struct SideStats {
    pub requests: u64,
    pub rps: Option<f64>,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// A route's counters at one moment.
#[derive(Debug, Clone, Default)]
struct Reading {
    legacy: Side,
    extracted: Side,
    matched: u64,
    mismatched: u64,
}

impl Reading {
    fn of(r: &Route) -> Self {
        let side = |m: &crate::metrics::RouteMetrics| Side {
            by_class: m.counts(),
            latency: m.latency(),
        };
        let shadow = r
            .canary_compare
            .as_ref()
            .or(r.shadow.as_ref())
            .or(r.verify.as_ref())
            .map(|p| (p.metrics.outcome_counts(), p))
            .map(|(c, p)| (c, Some(p)))
            .unwrap_or(([0; 6], None));
        let (legacy, extracted) = match (r.mode, &r.canary) {
            (Mode::Canary, Some((_, ext))) => (side(&r.metrics), side(ext)),
            (Mode::Extracted, _) => (Side::default(), side(&r.metrics)),
            (Mode::Shadow, _) => (
                side(&r.metrics),
                // Shadow copies stand for the extracted side: count, failures, latency.
                Side {
                    by_class: [
                        0,
                        shadow.0[0] + shadow.0[1],
                        0,
                        0,
                        shadow.0[2] + shadow.0[3],
                    ],
                    latency: shadow
                        .1
                        .map(|p| Buckets::of(&p.metrics.candidate_duration))
                        .unwrap_or_default(),
                },
            ),
            _ => (side(&r.metrics), Side::default()),
        };
        Reading {
            legacy,
            extracted,
            matched: shadow.0[0],
            mismatched: shadow.0[1],
        }
    }

    fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            legacy: self.legacy.since(&earlier.legacy),
            extracted: self.extracted.since(&earlier.extracted),
            matched: self.matched.saturating_sub(earlier.matched),
            mismatched: self.mismatched.saturating_sub(earlier.mismatched),
        }
    }

    fn match_rate(&self) -> Option<f64> {
        let n = self.matched + self.mismatched;
        (n > 0).then(|| self.matched as f64 / n as f64)
    }
}

/// One point of a route's history.
#[derive(Debug, Clone, Serialize)]
struct RoutePoint {
    t: f64,
    match_rate: Option<f64>,
    legacy_rps: f64,
    extracted_rps: f64,
    extracted_error_rate: Option<f64>,
}

/// One point of the migration's history.
#[derive(Debug, Clone, Serialize)]
struct ProgressPoint {
    t: f64,
    /// Share of real requests (not shadow copies) answered by extracted services.
    extracted_share: Option<f64>,
    /// Routes by mode at that moment.
    by_mode: BTreeMap<&'static str, usize>,
}

#[derive(Default)]
struct Samples {
    last: Option<(Instant, HashMap<String, Reading>, u64)>,
    routes: HashMap<String, VecDeque<RoutePoint>>,
    progress: VecDeque<ProgressPoint>,
}

/// The sampler and the history it keeps.
pub struct Dashboard {
    pub every: Duration,
    samples: Mutex<Samples>,
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

/// Real requests of the catch-all (never extracted).
fn default_requests(table: &RouteTable) -> u64 {
    table.default_metrics.counts().iter().sum()
}

fn by_mode(table: &RouteTable) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::from([
        ("legacy", 0),
        ("shadow", 0),
        ("canary", 0),
        ("extracted", 0),
    ]);
    for r in &table.routes {
        *m.entry(r.mode.as_str()).or_default() += 1;
    }
    m
}

impl Dashboard {
    pub fn from_env() -> Arc<Self> {
        let ms = std::env::var(EVERY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(5000);
        Arc::new(Dashboard {
            every: Duration::from_millis(ms),
            samples: Mutex::new(Samples::default()),
        })
    }

    /// Takes one sample of every route.
    pub fn sample(&self, table: &RouteTable) {
        let now = Instant::now();
        let t = crate::overlay::now();
        let readings: HashMap<String, Reading> = table
            .routes
            .iter()
            .map(|r| (r.name.clone(), Reading::of(r)))
            .collect();
        let default_now = default_requests(table);
        let Ok(mut s) = self.samples.lock() else {
            return;
        };
        if let Some((then, before, default_before)) = &s.last {
            let secs = (now - *then).as_secs_f64();
            let (mut extracted, mut total) = (0u64, default_now.saturating_sub(*default_before));
            let mut points = Vec::new();
            for r in &table.routes {
                let Some(cur) = readings.get(&r.name) else {
                    continue;
                };
                let d = before
                    .get(&r.name)
                    .map_or_else(|| cur.clone(), |b| cur.since(b));
                let ext_real = if r.mode == Mode::Shadow {
                    0
                } else {
                    d.extracted.requests()
                };
                extracted += ext_real;
                total += d.legacy.requests() + ext_real;
                let ext = d.extracted.stats(Some(secs));
                points.push((
                    r.name.clone(),
                    RoutePoint {
                        t,
                        match_rate: d.match_rate(),
                        legacy_rps: d.legacy.requests() as f64 / secs.max(1e-9),
                        extracted_rps: ext.rps.unwrap_or(0.0),
                        extracted_error_rate: ext.error_rate,
                    },
                ));
            }
            for (name, p) in points {
                push(s.routes.entry(name).or_default(), p);
            }
            s.routes
                .retain(|name, _| table.routes.iter().any(|r| &r.name == name));
            push(
                &mut s.progress,
                ProgressPoint {
                    t,
                    extracted_share: (total > 0).then(|| extracted as f64 / total as f64),
                    by_mode: by_mode(table),
                },
            );
        }
        s.last = Some((now, readings, default_now));
    }

    /// The JSON of `GET /admin/dashboard`.
    ///
    /// A route's autopilot status is that of the autopilot's last tick, which may predate
    /// a decision already applied to the table: it is shown at the table's position then
    /// (see [`current`]), so the mode and the autopilot state never disagree.
    pub fn render(&self, shared: &Shared, autopilot: &crate::autopilot::Autopilot) -> Value {
        let table = shared.table.load_full();
        let s = self.samples.lock();
        let auto = autopilot.status();
        let mut extracted_total = 0u64;
        let mut all_total = default_requests(&table);
        let routes: Vec<Value> = table
            .routes
            .iter()
            .map(|r| {
                let cur = Reading::of(r);
                if r.mode != Mode::Shadow {
                    extracted_total += cur.extracted.requests();
                    all_total += cur.extracted.requests();
                }
                all_total += cur.legacy.requests();
                let recent = s.as_ref().ok().and_then(|s| {
                    let (then, before, _) = s.last.as_ref()?;
                    let b = before.get(&r.name)?;
                    let d = cur.since(b);
                    let secs = then.elapsed().as_secs_f64();
                    Some(json!({
                        "seconds": secs,
                        "legacy": d.legacy.stats(Some(secs)),
                        "extracted": d.extracted.stats(Some(secs)),
                        "match_rate": d.match_rate(),
                    }))
                });
                let history = s
                    .as_ref()
                    .ok()
                    .and_then(|s| s.routes.get(&r.name).map(|h| h.iter().cloned().collect::<Vec<_>>()))
                    .unwrap_or_default();
                json!({
                    "name": r.name,
                    "path": r.pattern.as_str(),
                    "mode": r.mode.as_str(),
                    "percent": r.canary.as_ref().filter(|_| r.mode == Mode::Canary).map(|(p, _)| p.percent),
                    "shadowed": r.mode == Mode::Shadow || r.canary_compare.is_some() && r.mode == Mode::Canary || r.verify.is_some() && r.mode == Mode::Extracted,
                    "autopilot": auto.get(&r.name).map(|status| current(status, r, &table)),
                    "decision": table.overlay.routes.get(&r.name),
                    "totals": {
                        "legacy": cur.legacy.stats(None),
                        "extracted": cur.extracted.stats(None),
                        "compared": cur.matched + cur.mismatched,
                        "mismatches": cur.mismatched,
                        "match_rate": cur.match_rate(),
                    },
                    "recent": recent,
                    "history": history,
                })
            })
            .collect();
        let progress_history = s
            .as_ref()
            .ok()
            .map(|s| s.progress.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        json!({
            "now": crate::overlay::now(),
            "version": table.version,
            "authentication": if table.auth.is_some() { "on" } else { "off" },
            "every_seconds": self.every.as_secs_f64(),
            "progress": {
                "routes": table.routes.len(),
                "by_mode": by_mode(&table),
                "extracted_share": (all_total > 0).then(|| extracted_total as f64 / all_total as f64),
                "history": progress_history,
            },
            "routes": routes,
        })
    }
}

/// Samples on its period until the process drains.
pub fn spawn(dashboard: Arc<Dashboard>, shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(dashboard.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if shared.current_phase() != crate::state::Phase::Running {
                break;
            }
            dashboard.sample(&shared.table.load());
        }
    });
}

/// `status` as of the table's position of `route`: when the autopilot's last tick saw the
/// route elsewhere (a decision was applied since), the status of a window that opens now.
fn current(
    status: &crate::autopilot::Status,
    route: &crate::config::table::Route,
    table: &RouteTable,
) -> crate::autopilot::Status {
    let mut status = status.clone();
    let (Some(policy), Some(at)) = (
        route.autopilot.as_ref(),
        crate::routectl::position(table, &route.name),
    ) else {
        return status;
    };
    let paused = table
        .overlay
        .routes
        .get(&route.name)
        .is_some_and(|d| d.paused);
    let state_paused = status.state == crate::autopilot::State::Paused;
    if status.mode != at.mode || status.percent != at.percent || state_paused != paused {
        crate::autopilot::moved(&mut status, policy, at, paused);
    }
    status
}
