//! Route control: the one path by which a route's mode or canary percent changes at run
//! time — manual commands (admin API, `ficus route`) and the autopilot alike.
//!
//! A decision is validated by building the whole table with it (a dry run), written to
//! the overlay state file (overlay.rs), and applied by the reload task; if that reload
//! fails, the previous state file is restored. Decisions are serialised by one lock.
//! Manual decisions pause the autopilot for the route (`paused`), except `resume`.

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

/// Validates, records and applies one decision.
pub async fn decide(
    shared: &Arc<Shared>,
    reload: &ReloadHandle,
    route: &str,
    change: Change,
    trigger: Trigger,
) -> Result<Applied, DecideError> {
    let _guard = LOCK.lock().await;
    let table = shared.table.load_full();
    let from = position(&table, route).ok_or_else(|| DecideError::UnknownRoute(route.into()))?;
    let path = crate::overlay::path_for(&table.source);
    let previous = Overlay::read(&path).map_err(|e| DecideError::Invalid(vec![e]))?;
    let mut overlay = table.overlay.clone();
    let existing = overlay.routes.get(route).cloned();
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
            let describe = |p: Position| match p.percent {
                Some(pct) if p.mode == Mode::Canary => format!("canary {pct}%"),
                _ => p.mode.as_str().to_owned(),
            };
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
