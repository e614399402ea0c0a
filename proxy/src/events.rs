//! The audit log of route changes: who or what changed which route, from what to what,
//! why, when (`GET /admin/events`).
//!
//! Sources: route decisions (manual commands and the autopilot, routectl.rs), and reloads
//! of routes.toml (one event per route whose mode or canary percent changed, per route
//! added or removed, and one per rejected file). Events are appended to
//! `ficus-events.jsonl` beside routes.toml, one JSON object per line, so they survive
//! restarts; the newest [`KEEP`] are kept in memory for the API. The file is rotated
//! when it reaches [`ROTATE_BYTES`]: renamed to `ficus-events.jsonl.1` (replacing the
//! previous one), so the log takes at most about twice that on disk.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::RouteTable;

/// File name of the log, in the directory of routes.toml.
pub const FILE_NAME: &str = "ficus-events.jsonl";
/// Events kept in memory (and read back at start).
pub const KEEP: usize = 1000;
/// Size at which the file is rotated (about 30,000 events).
pub const ROTATE_BYTES: u64 = 8 << 20;

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time, seconds.
    pub at: f64,
    /// "route" (a route changed), "reload_failed".
    pub kind: String,
    /// "autopilot", "cli:USER@HOST", "admin" (or any `by` an admin API caller sent:
    /// informational, the admin listener is unauthenticated), "file", "signal", ... (a
    /// reload's trigger).
    pub actor: String,
    pub route: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: String,
}

/// The log of one process.
pub struct EventLog {
    path: Option<PathBuf>,
    rotate_at: u64,
    /// Also serialises appends and rotation.
    recent: Mutex<VecDeque<Event>>,
}

/// The rotated file of `path`.
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

impl EventLog {
    /// Opens the log beside `routes`, reading back its newest events.
    pub fn open(routes: &Path) -> Self {
        Self::open_rotating_at(routes, ROTATE_BYTES)
    }

    /// [`EventLog::open`] with another rotation size (tests).
    pub fn open_rotating_at(routes: &Path, rotate_at: u64) -> Self {
        let path = routes.parent().unwrap_or(Path::new(".")).join(FILE_NAME);
        let mut recent = VecDeque::new();
        // The rotated file first: it holds the older events.
        for file in [rotated(&path), path.clone()] {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<Event>(line) {
                    if recent.len() == KEEP {
                        recent.pop_front();
                    }
                    recent.push_back(e);
                }
            }
        }
        EventLog {
            path: Some(path),
            rotate_at,
            recent: Mutex::new(recent),
        }
    }

    /// A log that keeps events in memory only.
    pub fn in_memory() -> Self {
        EventLog {
            path: None,
            rotate_at: ROTATE_BYTES,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Records an event (a failure to append to the file is logged, not fatal).
    pub fn record(&self, event: Event) {
        tracing::info!(
            target: "ficus::events",
            actor = %event.actor,
            route = event.route.as_deref().unwrap_or("-"),
            from = event.from.as_deref().unwrap_or("-"),
            to = event.to.as_deref().unwrap_or("-"),
            reason = %event.reason,
            "route event"
        );
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        if let Some(path) = &self.path {
            if let Err(e) = self.append(path, &event) {
                tracing::warn!(path = %path.display(), error = %e, "cannot append to the event log");
            }
        }
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back(event);
    }

    /// Appends one line, rotating the file first when it has reached the size limit.
    /// Called with the `recent` lock held, so two appends never race a rotation.
    fn append(&self, path: &Path, event: &Event) -> std::io::Result<()> {
        let full = std::fs::metadata(path).is_ok_and(|m| m.len() >= self.rotate_at);
        if full {
            std::fs::rename(path, rotated(path))?;
        }
        let line = serde_json::to_string(event).unwrap_or_default();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")
    }

    /// The newest events first, optionally of one route.
    pub fn newest(&self, limit: usize, route: Option<&str>) -> Vec<Event> {
        self.recent
            .lock()
            .map(|r| {
                r.iter()
                    .rev()
                    .filter(|e| route.is_none_or(|name| e.route.as_deref() == Some(name)))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a route stands, as events describe it: "canary 5%", "shadow".
pub fn describe(table: &RouteTable, route: &str) -> Option<String> {
    crate::routectl::position(table, route).map(crate::routectl::describe)
}

/// Events for the routes that differ between two tables.
pub fn diff(old: &RouteTable, new: &RouteTable, actor: &str, at: f64) -> Vec<Event> {
    let mut out = Vec::new();
    let event = |route: &str, from: Option<String>, to: Option<String>, reason: &str| Event {
        at,
        kind: "route".into(),
        actor: actor.to_owned(),
        route: Some(route.to_owned()),
        from,
        to,
        reason: reason.to_owned(),
    };
    for r in &new.file.routes {
        let before = describe(old, &r.name);
        let after = describe(new, &r.name);
        match (&before, &after) {
            (None, _) => out.push(event(&r.name, None, after, "route added to routes.toml")),
            (Some(b), Some(a)) if a != b => out.push(event(
                &r.name,
                before.clone(),
                after.clone(),
                "routes.toml changed",
            )),
            _ => {}
        }
    }
    for r in &old.file.routes {
        if !new.file.routes.iter().any(|n| n.name == r.name) {
            out.push(event(
                &r.name,
                describe(old, &r.name),
                None,
                "route removed from routes.toml",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(route: &str, n: usize) -> Event {
        Event {
            at: n as f64,
            kind: "route".into(),
            actor: "test".into(),
            route: Some(route.into()),
            from: Some("legacy".into()),
            to: Some("shadow".into()),
            reason: format!("#{n}"),
        }
    }

    #[test]
    fn events_survive_a_restart_newest_first() {
        let dir = tempfile::tempdir().expect("dir");
        let routes = dir.path().join("routes.toml");
        let log = EventLog::open(&routes);
        log.record(event("a", 1));
        log.record(event("b", 2));
        log.record(event("a", 3));
        let again = EventLog::open(&routes);
        let reasons: Vec<String> = again
            .newest(10, None)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(reasons, ["#3", "#2", "#1"]);
        let only_a: Vec<String> = again
            .newest(10, Some("a"))
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(only_a, ["#3", "#1"]);
        assert_eq!(again.newest(1, None).len(), 1);
    }

    #[test]
    fn the_file_rotates_and_a_restart_still_reads_both() {
        let dir = tempfile::tempdir().expect("dir");
        let routes = dir.path().join("routes.toml");
        let log = EventLog::open_rotating_at(&routes, 500);
        for n in 0..20 {
            log.record(event("a", n));
        }
        let path = dir.path().join(FILE_NAME);
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) < 500 + 200, "rotated: {}", size(&path));
        assert!(size(&rotated(&path)) >= 500);
        // Only the two newest files exist; the newest events are still all there.
        let again = EventLog::open_rotating_at(&routes, 500);
        let newest: Vec<String> = again
            .newest(3, None)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(newest, ["#19", "#18", "#17"]);
        let kept = again.newest(100, None).len();
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        assert_eq!(kept, lines(&path) + lines(&rotated(&path)));
        assert!(kept < 20, "the oldest went with the second rotation");
    }
}
