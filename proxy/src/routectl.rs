//! Route control: the one path by which a route's mode or canary percent changes at run
//! time — manual commands (admin API, `ficus route`) and the autopilot alike.
//!
//! A decision is validated by building the whole table with it (a dry run), written to
//! the overlay state file (overlay.rs), and applied by the reload task; if that reload
//! fails, the previous state file is restored. Decisions are serialised by one lock.
//! Manual decisions pause the autopilot for the route (`paused`), except `resume`.
//!
//! The autopilot decides from a snapshot of the table and then waits for the lock, so its
//! changes are conditional ([`Change::expect`]): under the lock, a route that a manual
//! command paused or moved in the meantime is left alone ([`DecideError::Superseded`]).
//!
//! A decision starts from routes.toml as it is on disk (a pending edit is reloaded
//! first). [`pause_offline`] is the one other writer of the state file: `ficus route set
//! --write` when no proxy answers.

use std::sync::Arc;

use serde::Serialize;

use crate::config::file::Mode;
use crate::config::reload::{ReloadHandle, ReloadReport, Trigger};
use crate::config::{self, RouteTable};
use crate::overlay::{Base, Overlay, RouteState};
use crate::state::Shared;

static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub mode: Option<Mode>,
    pub percent: Option<f64>,
    pub paused: Option<bool>,
    /// Autopilot step to record (`Some(None)`: back to the start).
    pub step: Option<Option<usize>>,
    pub by: String,
    pub reason: String,
    /// Apply only if, under the lock, the route still stands at this position and its
    /// autopilot is not paused. The autopilot sets it to the snapshot it decided from,
    /// so a manual command that landed in between wins.
    pub expect: Option<Position>,
}

/// A route's mode and percent, before or after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    pub mode: Mode,
    pub percent: Option<f64>,
}

/// The outcome of an applied decision.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub route: String,
    pub from: Position,
    pub to: Position,
    pub paused: bool,
    pub by: String,
    pub reason: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("cannot write the state file: {0}")]
    Io(#[from] std::io::Error),
    #[error("reload failed: {}", .0.join("; "))]
    Reload(Vec<String>),
    /// A conditional change ([`Change::expect`]) whose condition no longer holds.
    #[error("superseded: {0}")]
    Superseded(String),
}

/// Where a route stands in `table` (the overlay already applied).
pub fn position(table: &RouteTable, route: &str) -> Option<Position> {
    let r = table.file.routes.iter().find(|r| r.name == route)?;
    Some(Position {
        mode: r.mode,
        percent: (r.mode == Mode::Canary)
            .then(|| r.canary.as_ref().map(|c| c.percent))
            .flatten(),
    })
}

/// `ficus route set --write` on an autopilot route when no proxy answers: records, in the
/// state file beside `config`, a decision pausing the autopilot at what the edited file
/// says (`at`, also its `base`), and appends the event to the log. Call it *before* the
/// edited file replaces routes.toml: until then the entry is stale and ignored, and a
/// proxy that starts or reloads afterwards finds it in force.
pub fn pause_offline(
    config: &std::path::Path,
    route: &str,
    at: Base,
    by: &str,
    reason: &str,
) -> Result<(), DecideError> {
    let path = crate::overlay::path_for(config);
    let mut overlay = Overlay::read(&path).map_err(|e| DecideError::Invalid(vec![e]))?;
    // Where the route stands now (the current file and its decisions), for the event.
    let from = config::load(config, &crate::metrics::Metrics::new())
        .ok()
        .and_then(|t| position(&t, route));
    let to = Position {
        mode: at.mode,
        percent: at.percent.filter(|_| at.mode == Mode::Canary),
    };
    overlay.routes.insert(
        route.to_owned(),
        RouteState {
            mode: to.mode,
            percent: to.percent,
            paused: true,
            step: None,
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: crate::overlay::now(),
            base: at,
        },
    );
    overlay.write(&path)?;
    crate::events::EventLog::open(config).record(crate::events::Event {
        at: crate::overlay::now(),
        kind: "route".into(),
        actor: by.to_owned(),
        route: Some(route.to_owned()),
        from: from.map(describe),
        to: Some(describe(to)),
        reason: reason.to_owned(),
    });
    Ok(())
}

/// How a position reads in events and messages: "canary 5%", "shadow".
pub fn describe(p: Position) -> String {
    match p.percent {
        Some(pct) if p.mode == Mode::Canary => format!("canary {pct}%"),
        _ => p.mode.as_str().to_owned(),
    }
}

/// Validates, records and applies one decision.
pub async fn decide(
    shared: &Arc<Shared>,
    reload: &ReloadHandle,
    route: &str,
    change: Change,
    trigger: Trigger,
) -> Result<Applied, DecideError> {
    let _guard = LOCK.lock().await;
    // Start from routes.toml as it is on disk: an edit the watcher has not delivered yet
    // (`ficus route set --write` just before this call) is what this decision builds on,
    // and what its `base` must say. Unchanged text is skipped by the reload task.
    let _ = reload.reload(Trigger::File).await;
    let table = shared.table.load_full();
    let from = position(&table, route).ok_or_else(|| DecideError::UnknownRoute(route.into()))?;
    let path = crate::overlay::path_for(&table.source);
    let previous = Overlay::read(&path).map_err(|e| DecideError::Invalid(vec![e]))?;
    let mut overlay = table.overlay.clone();
    let existing = overlay.routes.get(route).cloned();
    if let Some(expected) = change.expect {
        if existing.as_ref().is_some_and(|e| e.paused) {
            return Err(DecideError::Superseded(format!(
                "route {route:?} was paused since the decision was taken"
            )));
        }
        if from != expected {
            return Err(DecideError::Superseded(format!(
                "route {route:?} moved from {} to {} since the decision was taken",
                describe(expected),
                describe(from)
            )));
        }
    }
    // What routes.toml itself says: the base of an applied decision, else the route as is.
    let base = existing.as_ref().map_or(
        Base {
            mode: from.mode,
            percent: table
                .file
                .routes
                .iter()
                .find(|r| r.name == route)
                .and_then(|r| r.canary.as_ref().map(|c| c.percent)),
        },
        |e| e.base,
    );
    let mode = change.mode.unwrap_or(from.mode);
    if change.percent.is_some() && mode != Mode::Canary {
        // Silently dropping the percent would still pause the autopilot and log a no-op.
        return Err(DecideError::Invalid(vec![format!(
            "route {route:?}: percent applies to mode \"canary\" only, and the route would be in {} mode; give mode \"canary\" with it",
            mode.as_str()
        )]));
    }
    let percent = match mode {
        Mode::Canary => change.percent.or(from.percent).or(Some(0.0)),
        _ => None,
    };
    let paused = change
        .paused
        .unwrap_or_else(|| existing.as_ref().is_some_and(|e| e.paused));
    let step = match change.step {
        Some(s) => s,
        None => existing.as_ref().and_then(|e| e.step),
    };
    overlay.routes.insert(
        route.to_owned(),
        RouteState {
            mode,
            percent,
            paused,
            step,
            by: change.by.clone(),
            reason: change.reason.clone(),
            at: crate::overlay::now(),
            base,
        },
    );
    // Dry run: the whole table must build with this decision.
    let text = std::fs::read_to_string(&table.source)?;
    if let Err(errors) = config::build_with_overlay(
        &table.source,
        &text,
        overlay.clone(),
        &crate::metrics::Metrics::new(),
        crate::tls::LastGood::of(shared).as_ref(),
    ) {
        return Err(DecideError::Invalid(
            errors.0.iter().map(|e| e.to_string()).collect(),
        ));
    }
    overlay.write(&path)?;
    let report: Option<ReloadReport> = reload.reload(trigger).await;
    match report {
        Some(r) if r.result != "failure" => {
            shared.events.record(crate::events::Event {
                at: crate::overlay::now(),
                kind: "route".into(),
                actor: change.by.clone(),
                route: Some(route.to_owned()),
                from: Some(describe(from)),
                to: Some(describe(Position { mode, percent })),
                reason: change.reason.clone(),
            });
            Ok(Applied {
                route: route.to_owned(),
                from,
                to: Position { mode, percent },
                paused,
                by: change.by,
                reason: change.reason,
                version: r.version,
            })
        }
        other => {
            // Put the previous decisions back: the table in force did not change.
            previous.write(&path)?;
            Err(DecideError::Reload(
                other
                    .and_then(|r| r.errors)
                    .unwrap_or_else(|| vec!["reload task is not running".into()]),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = r#"legacy = "legacy"
[listen]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"
[upstreams.legacy]
url = "http://127.0.0.1:9"
[upstreams.new]
url = "http://127.0.0.1:9"
[[routes]]
name = "doc"
path = "/doc"
mode = "shadow"
extracted = "new"
[routes.canary]
percent = 0
compare = true
[routes.autopilot]
steps = [25, 50, 100]
"#;

    /// A process's control plane without listeners: the table, the reload task.
    fn control(routes: &str) -> (tempfile::TempDir, Arc<Shared>, ReloadHandle) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, routes).expect("write");
        let metrics = crate::metrics::Metrics::new();
        let table = config::load(&path, &metrics).expect("table");
        let bound = table.listen.clone();
        let shadow = Arc::new(crate::shadow::ShadowContext {
            global_limit: Arc::new(tokio::sync::Semaphore::new(1)),
            recorder: None,
        });
        let shared = Arc::new(Shared::new(
            table,
            metrics,
            bound,
            None,
            shadow,
            crate::events::EventLog::in_memory(),
        ));
        let reload = crate::config::reload::spawn(path, shared.clone());
        (dir, shared, reload)
    }

    fn manual(change: Change) -> Change {
        Change {
            by: "cli".into(),
            reason: "by hand".into(),
            ..change
        }
    }

    /// The autopilot's advance to canary 25%, decided from `snapshot`.
    fn advance(snapshot: Position) -> Change {
        Change {
            mode: Some(Mode::Canary),
            percent: Some(25.0),
            paused: Some(false),
            step: Some(Some(0)),
            by: "autopilot".into(),
            reason: "gates held".into(),
            expect: Some(snapshot),
        }
    }

    fn here(shared: &Shared) -> (Position, bool) {
        let table = shared.table.load();
        let p = position(&table, "doc").expect("route");
        (p, table.overlay.routes.get("doc").is_some_and(|d| d.paused))
    }

    // Regression: the autopilot decided from a snapshot, then waited for the lock; its
    // advance carried `paused: false` and undid a pause that landed in between.
    #[tokio::test]
    async fn a_manual_command_between_snapshot_and_lock_wins_over_the_autopilot() {
        let (_dir, shared, reload) = control(ROUTES);
        let shadow = Position {
            mode: Mode::Shadow,
            percent: None,
        };
        // The autopilot takes its snapshot and decides to advance...
        let snapshot = here(&shared).0;
        assert_eq!(snapshot, shadow);
        // ...a pause lands first...
        let pause = manual(Change {
            paused: Some(true),
            ..Change::default()
        });
        decide(&shared, &reload, "doc", pause, Trigger::Route)
            .await
            .expect("pause");
        // ...then the autopilot gets the lock: its decision is dropped.
        let got = decide(
            &shared,
            &reload,
            "doc",
            advance(snapshot),
            Trigger::Autopilot,
        )
        .await;
        assert!(matches!(got, Err(DecideError::Superseded(_))), "{got:?}");
        assert_eq!(here(&shared), (shadow, true), "still paused, still shadow");

        // Resumed, but moved by hand in between: dropped as well.
        let snapshot = here(&shared).0;
        let set = manual(Change {
            mode: Some(Mode::Canary),
            percent: Some(10.0),
            paused: Some(false),
            ..Change::default()
        });
        decide(&shared, &reload, "doc", set, Trigger::Route)
            .await
            .expect("set");
        let got = decide(
            &shared,
            &reload,
            "doc",
            advance(snapshot),
            Trigger::Autopilot,
        )
        .await;
        assert!(matches!(got, Err(DecideError::Superseded(_))), "{got:?}");
        let canary_10 = Position {
            mode: Mode::Canary,
            percent: Some(10.0),
        };
        assert_eq!(here(&shared), (canary_10, false));
        let actors: Vec<String> = shared
            .events
            .newest(10, Some("doc"))
            .into_iter()
            .map(|e| e.actor)
            .collect();
        assert_eq!(actors, ["cli", "cli"], "dropped decisions leave no event");

        // From a snapshot that still holds, the autopilot's decision applies.
        let applied = decide(
            &shared,
            &reload,
            "doc",
            advance(here(&shared).0),
            Trigger::Autopilot,
        )
        .await
        .expect("advance");
        assert_eq!(applied.from, canary_10);
        assert_eq!(here(&shared).0.percent, Some(25.0));
    }
}
