//! Route decisions layered over routes.toml: the state file `ficus-state.json` beside it.
//!
//! Manual route commands (`ficus route set|pause|resume|rollback`, the admin API) and the
//! autopilot never rewrite routes.toml; they record a decision here — mode, canary percent,
//! whether the autopilot is paused, who, why, when — and the reload path applies it on
//! top of the file. The file stays the source of truth for everything else, and wins:
//! each decision remembers what the file said when it was taken (`base`); once the file
//! says something else for that route, the decision is stale and ignored.
//!
//! Writes are atomic (temp file + rename), so a crash leaves the old or the new state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::file::{CanaryFile, Mode, RouteFile, RoutesFile};

/// File name of the overlay, in the directory of routes.toml.
pub const FILE_NAME: &str = "ficus-state.json";

/// The overlay file of a routes file.
pub fn path_for(routes: &Path) -> PathBuf {
    routes.parent().unwrap_or(Path::new(".")).join(FILE_NAME)
}

/// What routes.toml said about a route.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Base {
    pub mode: Mode,
    pub percent: Option<f64>,
}

impl Base {
    pub fn of(route: &RouteFile) -> Self {
        Base {
            mode: route.mode,
            percent: route.canary.as_ref().map(|c| c.percent),
        }
    }
}

/// The decision in force for one route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteState {
    pub mode: Mode,
    /// Canary percent, with `mode = "canary"`.
    pub percent: Option<f64>,
    /// The autopilot leaves this route alone (set by every manual command but `resume`).
    #[serde(default)]
    pub paused: bool,
    /// Index into the route's `autopilot.steps` the autopilot is at; `None` before the
    /// first step (shadow).
    #[serde(default)]
    pub step: Option<usize>,
    /// "autopilot", "admin", "cli:USER@HOST", ... (the caller's word, see events.rs).
    pub by: String,
    pub reason: String,
    /// Unix time, seconds.
    pub at: f64,
    /// What routes.toml said when the decision was taken.
    pub base: Base,
}

/// Every decision in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    #[serde(default)]
    pub routes: BTreeMap<String, RouteState>,
}

impl Overlay {
    /// Reads an overlay; a missing file is an empty overlay.
    pub fn read(path: &Path) -> Result<Self, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a ficus state file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overlay::default()),
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        }
    }

    /// Writes atomically: a temp file in the same directory, then a rename.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Applies the decisions to `file`; returns the names of stale ones (ignored).
    pub fn apply(&self, file: &mut RoutesFile) -> Vec<String> {
        let mut stale = Vec::new();
        for (name, state) in &self.routes {
            let Some(route) = file.routes.iter_mut().find(|r| &r.name == name) else {
                stale.push(name.clone());
                continue;
            };
            if Base::of(route) != state.base {
                stale.push(name.clone());
                continue;
            }
            route.mode = state.mode;
            if state.mode == Mode::Canary {
                let canary = route.canary.get_or_insert_with(|| CanaryFile {
                    // A canary the file never described: compare both ways, so gates
                    // and dashboards see mismatches.
                    compare: true,
                    ..CanaryFile::default()
                });
                canary.percent = state.percent.unwrap_or(0.0);
            }
        }
        stale
    }

    /// Drops stale decisions (see [`Overlay::apply`]).
    pub fn prune(&mut self, stale: &[String]) {
        for s in stale {
            self.routes.remove(s);
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> RoutesFile {
        toml::from_str(
            r#"legacy = "legacy"
[listen]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[routes]]
name = "a"
path = "/a"
mode = "shadow"
extracted = "new"
[[routes]]
name = "b"
path = "/b"
"#,
        )
        .expect("file")
    }

    fn state(mode: Mode, percent: Option<f64>, base: Base) -> RouteState {
        RouteState {
            mode,
            percent,
            paused: false,
            step: None,
            by: "test".into(),
            reason: "test".into(),
            at: 0.0,
            base,
        }
    }

    #[test]
    fn decisions_apply_until_the_file_changes_the_route() {
        let mut f = file();
        let mut o = Overlay::default();
        let base = Base {
            mode: Mode::Shadow,
            percent: None,
        };
        o.routes
            .insert("a".into(), state(Mode::Canary, Some(5.0), base));
        o.routes
            .insert("gone".into(), state(Mode::Legacy, None, base));
        assert_eq!(o.apply(&mut f), vec!["gone".to_owned()]);
        assert_eq!(f.routes[0].mode, Mode::Canary);
        let canary = f.routes[0].canary.as_ref().expect("canary");
        assert_eq!(canary.percent, 5.0);
        assert!(canary.compare);

        // Someone edits routes.toml: the file wins, the decision is stale.
        let mut edited = file();
        edited.routes[0].mode = Mode::Extracted;
        assert_eq!(
            o.apply(&mut edited),
            vec!["a".to_owned(), "gone".to_owned()]
        );
        assert_eq!(edited.routes[0].mode, Mode::Extracted);
    }

    #[test]
    fn writes_are_atomic_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Overlay::read(&path), Ok(Overlay::default()));
        let mut o = Overlay::default();
        o.routes.insert(
            "a".into(),
            state(
                Mode::Legacy,
                None,
                Base {
                    mode: Mode::Shadow,
                    percent: None,
                },
            ),
        );
        o.write(&path).expect("write");
        assert_eq!(Overlay::read(&path), Ok(o));
        std::fs::write(&path, "{nope").expect("write");
        assert!(Overlay::read(&path).is_err());
    }
}
