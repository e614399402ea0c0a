//! The autopilot: moves opted-in routes from shadow through canary steps to extracted
//! while every gate holds, and rolls them back the moment one is breached.
//!
//! Once per tick (every second; or on `POST /admin/autopilot/tick` with the manual test
//! clock, `FICUS_AUTOPILOT_CLOCK=manual`) it reads, for every route with
//! `[routes.autopilot]` in shadow or canary mode and not paused, the counters since the
//! route's current step began — comparisons, requests and 5xx per side, latency
//! histograms — and asks [`gates::judge`]. Decisions go through [`crate::routectl`] like
//! manual ones (state file, reload, event), signed `autopilot`. A breach also pauses the
//! route: after a rollback a human looks before it moves again (`ficus route resume`).
//! Manual commands pause it too, so they always win: a decision is taken from a snapshot
//! and applied only if, under routectl's lock, the route has not been paused or moved
//! since ([`routectl::Change::expect`]); otherwise it is dropped (debug log, no event).

pub mod gates;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::file::Mode;
use crate::config::reload::{ReloadHandle, Trigger};
use crate::config::table::{Route, RouteTable};
use crate::metrics::Buckets;
use crate::routectl::{self, Applied, Change, Position};
use crate::state::Shared;
use gates::{Policy, Verdict, Window};

/// Environment variable selecting the manual clock (tests): `manual`.
pub const CLOCK_ENV: &str = "FICUS_AUTOPILOT_CLOCK";

/// Counter readings at the start of a step.
#[derive(Debug, Clone, Default)]
struct Reading {
    compared: u64,
    mismatches: u64,
    extracted: u64,
    extracted_errors: u64,
    legacy: u64,
    circuit_open: bool,
    extracted_latency: Buckets,
    legacy_latency: Buckets,
}

impl Reading {
    fn of(route: &Route, table: &RouteTable) -> Self {
        let shadow = route
            .canary_compare
            .as_ref()
            .or(route.shadow.as_ref())
            .map(|p| p.metrics.outcome_counts())
            .unwrap_or_default();
        // SHADOW_OUTCOMES: match, mismatch, error, timeout, skipped, dropped.
        let compared = shadow[0] + shadow[1];
        let legacy_counts: u64 = route.metrics.counts().iter().sum();
        match (&route.canary, route.mode) {
            (Some((_, extracted)), Mode::Canary) => {
                let counts = extracted.counts();
                Reading {
                    compared,
                    mismatches: shadow[1],
                    extracted: counts.iter().sum(),
                    extracted_errors: counts[4],
                    legacy: legacy_counts,
                    circuit_open: route
                        .extracted
                        .and_then(|i| table.upstreams.get(i))
                        .is_some_and(|u| u.breaker.is_open()),
                    extracted_latency: extracted.latency(),
                    legacy_latency: route.metrics.latency(),
                }
            }
            _ => {
                let (cand, leg) = route
                    .shadow
                    .as_ref()
                    .map(|p| {
                        (
                            Buckets::of(&p.metrics.candidate_duration),
                            Buckets::of(&p.metrics.legacy_duration),
                        )
                    })
                    .unwrap_or_default();
                Reading {
                    compared,
                    mismatches: shadow[1],
                    extracted: shadow[0] + shadow[1] + shadow[2] + shadow[3],
                    extracted_errors: shadow[2] + shadow[3],
                    legacy: legacy_counts,
                    circuit_open: false,
                    extracted_latency: cand,
                    legacy_latency: leg,
                }
            }
        }
    }

    fn since(&self, start: &Reading) -> Window {
        Window {
            compared: self.compared.saturating_sub(start.compared),
            mismatches: self.mismatches.saturating_sub(start.mismatches),
            extracted: self.extracted.saturating_sub(start.extracted),
            extracted_errors: self.extracted_errors.saturating_sub(start.extracted_errors),
            legacy: self.legacy.saturating_sub(start.legacy),
            circuit_open: self.circuit_open,
            extracted_latency: self.extracted_latency.since(&start.extracted_latency),
            legacy_latency: self.legacy_latency.since(&start.legacy_latency),
        }
    }
}

/// The step a route is in, and since when.
struct Run {
    position: Position,
    started: Duration,
    start: Reading,
}

/// Where the autopilot has a route: the route's mode, or paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Legacy,
    Shadow,
    Canary,
    Extracted,
    /// By a manual command or a rollback: the autopilot leaves the route alone.
    Paused,
}

impl From<Mode> for State {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Legacy => State::Legacy,
            Mode::Shadow => State::Shadow,
            Mode::Canary => State::Canary,
            Mode::Extracted => State::Extracted,
        }
    }
}

/// What the autopilot shows for one route (`GET /admin/autopilot`, dashboard).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: State,
    pub mode: Mode,
    pub percent: Option<f64>,
    pub steps: Vec<f64>,
    /// The next gate to pass, or why nothing happens.
    pub next: String,
    pub window_seconds: u64,
    pub window: Window,
    pub last_decision: Option<String>,
}

/// The autopilot of one proxy process.
pub struct Autopilot {
    manual: bool,
    /// Manual clock: time advanced by ticks. Real clock: time since start.
    started: Instant,
    offset: Mutex<Duration>,
    runs: Mutex<HashMap<String, Run>>,
    status: Mutex<BTreeMap<String, Status>>,
    last: Mutex<HashMap<String, String>>,
}

impl Autopilot {
    /// With `manual`, time moves only when [`Autopilot::advance`] is called.
    pub fn new(manual: bool) -> Arc<Self> {
        Arc::new(Autopilot {
            manual,
            started: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            runs: Mutex::new(HashMap::new()),
            status: Mutex::new(BTreeMap::new()),
            last: Mutex::new(HashMap::new()),
        })
    }

    /// From the environment ([`CLOCK_ENV`]).
    pub fn from_env() -> Arc<Self> {
        Self::new(std::env::var(CLOCK_ENV).is_ok_and(|v| v == "manual"))
    }

    pub fn is_manual(&self) -> bool {
        self.manual
    }

    fn now(&self) -> Duration {
        let offset = self.offset.lock().map(|o| *o).unwrap_or_default();
        if self.manual {
            offset
        } else {
            self.started.elapsed() + offset
        }
    }

    /// Moves the manual clock forward.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += by;
        }
    }

    /// Status of every autopilot route.
    pub fn status(&self) -> BTreeMap<String, Status> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Judges every autopilot route once and applies the decisions.
    pub async fn tick(&self, shared: &Arc<Shared>, reload: &ReloadHandle) -> Vec<Applied> {
        let table = shared.table.load_full();
        let now = self.now();
        let mut wanted: Vec<(String, Change)> = Vec::new();
        let mut statuses = BTreeMap::new();
        {
            let Ok(mut runs) = self.runs.lock() else {
                return Vec::new();
            };
            runs.retain(|name, _| table.routes.iter().any(|r| &r.name == name));
            for route in &table.routes {
                let Some(policy) = &route.autopilot else {
                    continue;
                };
                let Some(position) = routectl::position(&table, &route.name) else {
                    continue;
                };
                let paused = table
                    .overlay
                    .routes
                    .get(&route.name)
                    .is_some_and(|d| d.paused);
                let last = self
                    .last
                    .lock()
                    .ok()
                    .and_then(|l| l.get(&route.name).cloned());
                let mut status = Status {
                    state: position.mode.into(),
                    mode: position.mode,
                    percent: position.percent,
                    steps: policy.steps.clone(),
                    next: String::new(),
                    window_seconds: 0,
                    window: Window::default(),
                    last_decision: last,
                };
                if let Some((state, next)) = idle_state(paused, position.mode) {
                    runs.remove(&route.name);
                    status.state = state;
                    status.next = next.into();
                    statuses.insert(route.name.clone(), status);
                    continue;
                }
                let reading = Reading::of(route, &table);
                let run = runs.entry(route.name.clone()).or_insert_with(|| Run {
                    position,
                    started: now,
                    start: reading.clone(),
                });
                if run.position != position {
                    *run = Run {
                        position,
                        started: now,
                        start: reading.clone(),
                    };
                }
                let elapsed = now.saturating_sub(run.started);
                let window = reading.since(&run.start);
                let verdict = gates::judge(policy, &window, elapsed);
                status.window_seconds = elapsed.as_secs();
                status.window = window.clone();
                let step = step_index(&policy.steps, position);
                match verdict {
                    Verdict::Wait(why) => status.next = why,
                    Verdict::Advance => {
                        let next = match step {
                            None => 0,
                            Some(i) => i + 1,
                        };
                        match policy.steps.get(next) {
                            Some(&p) => {
                                let (mode, percent) = if p >= 100.0 {
                                    (Mode::Extracted, None)
                                } else {
                                    (Mode::Canary, Some(p))
                                };
                                status.next = format!("advancing to {}", describe(mode, percent));
                                wanted.push((
                                    route.name.clone(),
                                    Change {
                                        mode: Some(mode),
                                        percent,
                                        paused: Some(false),
                                        step: Some(Some(next)),
                                        expect: Some(position),
                                        by: "autopilot".into(),
                                        reason: format!(
                                            "gates held for {}s: {} compared, {} mismatches, {} extracted requests, {} errors",
                                            elapsed.as_secs(),
                                            window.compared,
                                            window.mismatches,
                                            window.extracted,
                                            window.extracted_errors
                                        ),
                                    },
                                ));
                            }
                            None => status.next = "at the last step".into(),
                        }
                    }
                    Verdict::Breach(why) => {
                        let (mode, percent, new_step) = match (policy.to_previous, step) {
                            (true, Some(i)) if i > 0 => {
                                (Mode::Canary, Some(policy.steps[i - 1]), Some(i - 1))
                            }
                            (true, Some(_)) => (Mode::Shadow, None, None),
                            _ => (Mode::Legacy, None, None),
                        };
                        status.next = format!("rolling back to {}", describe(mode, percent));
                        wanted.push((
                            route.name.clone(),
                            Change {
                                mode: Some(mode),
                                percent,
                                paused: Some(true),
                                step: Some(new_step),
                                expect: Some(position),
                                by: "autopilot".into(),
                                reason: format!("gate breached: {why}"),
                            },
                        ));
                    }
                }
                statuses.insert(route.name.clone(), status);
            }
        }
        if let Ok(mut s) = self.status.lock() {
            *s = statuses;
        }
        let mut applied = Vec::new();
        for (route, change) in wanted {
            let reason = change.reason.clone();
            let pauses = change.paused == Some(true);
            match routectl::decide(shared, reload, &route, change, Trigger::Autopilot).await {
                Ok(a) => {
                    tracing::info!(
                        target: "ficus::autopilot",
                        route = %route,
                        from = ?a.from,
                        to = ?a.to,
                        reason = %reason,
                        "autopilot decision"
                    );
                    let decision = format!(
                        "{} -> {}: {reason}",
                        describe(a.from.mode, a.from.percent),
                        describe(a.to.mode, a.to.percent)
                    );
                    if let Ok(mut l) = self.last.lock() {
                        l.insert(route.clone(), decision.clone());
                    }
                    // The next step's window opens now, on the new table's counters.
                    let table = shared.table.load_full();
                    if let (Some(r), Ok(mut runs)) = (
                        table.routes.iter().find(|r| r.name == route),
                        self.runs.lock(),
                    ) {
                        runs.insert(
                            route.clone(),
                            Run {
                                position: a.to,
                                started: self.now(),
                                start: Reading::of(r, &table),
                            },
                        );
                    }
                    // The status says where the route is now, not where the tick found it
                    // (the dashboard shows both side by side).
                    if let (Some(policy), Ok(mut s)) = (
                        table
                            .routes
                            .iter()
                            .find(|r| r.name == route)
                            .and_then(|r| r.autopilot.as_ref()),
                        self.status.lock(),
                    ) {
                        if let Some(status) = s.get_mut(&route) {
                            moved(status, policy, a.to, pauses);
                            status.last_decision = Some(decision);
                        }
                    }
                    applied.push(a);
                }
                Err(routectl::DecideError::Superseded(why)) => {
                    // A manual command landed between the snapshot and the lock: it wins.
                    tracing::debug!(target: "ficus::autopilot", route = %route, %why, "autopilot decision dropped");
                    if let Ok(mut s) = self.status.lock() {
                        if let Some(status) = s.get_mut(&route) {
                            status.next =
                                format!("decision dropped, a manual command came first: {why}");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "ficus::autopilot", route = %route, error = %e, "autopilot decision not applied")
                }
            }
        }
        applied
    }
}

/// The state and next-gate text of a route the autopilot does not judge: paused, not
/// started, or done. `None` for shadow and canary (judged by the gates).
fn idle_state(paused: bool, mode: Mode) -> Option<(State, &'static str)> {
    match (paused, mode) {
        (true, _) => Some((
            State::Paused,
            "paused by a manual command or a rollback; `ficus route resume` hands it back",
        )),
        (false, Mode::Legacy) => Some((
            State::Legacy,
            "not started: set mode = \"shadow\" to begin (ficus route set NAME --mode shadow, then resume)",
        )),
        (false, Mode::Extracted) => Some((State::Extracted, "done: the route is extracted")),
        (false, Mode::Shadow | Mode::Canary) => None,
    }
}

/// Updates `status` for a route that has just moved to `to` (paused or not): its new
/// position, an empty window, and the first gate of that window.
pub fn moved(status: &mut Status, policy: &Policy, to: Position, paused: bool) {
    status.mode = to.mode;
    status.percent = to.percent;
    status.window = Window::default();
    status.window_seconds = 0;
    let (state, next) = match idle_state(paused, to.mode) {
        Some((state, next)) => (state, next.to_owned()),
        None => (
            to.mode.into(),
            match gates::judge(policy, &Window::default(), Duration::ZERO) {
                Verdict::Wait(why) | Verdict::Breach(why) => why,
                Verdict::Advance => "advancing".to_owned(),
            },
        ),
    };
    status.state = state;
    status.next = next;
}

/// Index of the current canary step (`None` in shadow mode). A percent between steps
/// counts as the step below it.
fn step_index(steps: &[f64], p: Position) -> Option<usize> {
    match (p.mode, p.percent) {
        (Mode::Canary, Some(pct)) => steps.iter().rposition(|s| *s <= pct).or(Some(0)),
        _ => None,
    }
}

fn describe(mode: Mode, percent: Option<f64>) -> String {
    routectl::describe(Position { mode, percent })
}

/// Ticks every second on the real clock; with the manual clock, only on request.
pub fn spawn(autopilot: Arc<Autopilot>, shared: Arc<Shared>, reload: ReloadHandle) {
    if autopilot.is_manual() {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if shared.current_phase() != crate::state::Phase::Running {
                break;
            }
            autopilot.tick(&shared, &reload).await;
        }
    });
}
