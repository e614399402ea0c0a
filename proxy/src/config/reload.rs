//! Hot reload: every trigger (file watcher, SIGHUP, `POST /admin/reload`) sends a
//! command to one task, which reads the whole file, validates it, and swaps the table.
//!
//! Invariants: only this task stores into `Shared::table`; an invalid file changes
//! nothing that serves traffic; a `[listen]` change is reported as needing a restart,
//! never applied silently and never silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::table::fnv1a;
use crate::state::Shared;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    File,
    Signal,
    Admin,
    /// A manual route command (admin API, `ficus route`).
    Route,
    Autopilot,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
            Trigger::Route => "route",
            Trigger::Autopilot => "autopilot",
        }
    }
}

/// The outcome of one reload, as logged and returned by `POST /admin/reload`.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// "success", "unchanged" or "failure".
    pub result: &'static str,
    pub trigger: Trigger,
    /// Version of the table in force after this reload.
    pub version: String,
    pub errors: Option<Vec<String>>,
    /// Settings that changed in the file but apply only after a restart.
    pub restart_required: Vec<String>,
}

type Command = (Trigger, Option<oneshot::Sender<ReloadReport>>);

/// Sends reload commands to the reload task.
#[derive(Clone)]
pub struct ReloadHandle {
    tx: mpsc::Sender<Command>,
}

impl ReloadHandle {
    /// Reloads and waits for the outcome.
    pub async fn reload(&self, trigger: Trigger) -> Option<ReloadReport> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((trigger, Some(tx))).await.ok()?;
        rx.await.ok()
    }

    /// Asks for a reload without waiting.
    pub fn request(&self, trigger: Trigger) {
        let _ = self.tx.try_send((trigger, None));
    }
}

/// Starts the reload task on the current runtime.
pub fn spawn(path: PathBuf, shared: Arc<Shared>) -> ReloadHandle {
    let (tx, mut rx) = mpsc::channel::<Command>(64);
    tokio::spawn(async move {
        let mut last_text: Option<u64> = std::fs::read(&path).ok().map(|b| fnv1a(&b));
        while let Some((trigger, reply)) = rx.recv().await {
            let now = std::fs::read(&path).ok().map(|b| fnv1a(&b));
            // Directory events also fire for unrelated files: skip if the text is the same.
            if trigger == Trigger::File && now.is_some() && now == last_text {
                continue;
            }
            last_text = now;
            let report = reload_once(&path, &shared, trigger);
            if let Some(reply) = reply {
                let _ = reply.send(report);
            }
        }
    });
    ReloadHandle { tx }
}

fn reload_once(path: &Path, shared: &Shared, trigger: Trigger) -> ReloadReport {
    let current = shared.table.load_full();
    let keep = crate::tls::LastGood::of(shared);
    match super::load_keeping(path, &shared.metrics, keep.as_ref()) {
        Err(errors) => {
            shared.metrics.reloads.with_label_values(&["failure"]).inc();
            let messages = errors.messages();
            tracing::error!(?trigger, errors = %errors, "routes file rejected; the previous table keeps serving");
            if let Ok(mut last) = shared.last_reload_error.lock() {
                *last = Some(messages.clone());
            }
            shared.events.record(crate::events::Event {
                at: crate::overlay::now(),
                kind: "reload_failed".into(),
                actor: trigger.as_str().into(),
                route: None,
                from: None,
                to: None,
                reason: format!(
                    "routes file rejected ({} error{}), the previous table keeps serving: {}",
                    messages.len(),
                    if messages.len() == 1 { "" } else { "s" },
                    messages.first().map(String::as_str).unwrap_or("")
                ),
            });
            ReloadReport {
                result: "failure",
                trigger,
                version: current.version.clone(),
                errors: Some(messages),
                restart_required: Vec::new(),
            }
        }
        Ok(table) => {
            if let Ok(mut last) = shared.last_reload_error.lock() {
                *last = None;
            }
            let mut restart_required = Vec::new();
            let (new, bound) = (&table.listen, &shared.bound);
            if !same_addr(new.proxy, bound.proxy) {
                restart_required.push(format!("listen.proxy ({} -> {})", bound.proxy, new.proxy));
            }
            if !same_addr(new.admin, bound.admin) {
                restart_required.push(format!("listen.admin ({} -> {})", bound.admin, new.admin));
            }
            match (shared.tls.get(), &table.tls) {
                (Some(term), Some(settings)) => term.install(settings.certs.clone()),
                (None, None) => {}
                (Some(_), None) => restart_required.push("listen.tls (removed)".into()),
                (None, Some(_)) => restart_required.push("listen.tls (added)".into()),
            }
            if let (Some(old), Some(new)) = (&current.tls, &table.tls) {
                if old.tls13_only != new.tls13_only {
                    restart_required.push("listen.tls.min_version".into());
                }
            }
            if !restart_required.is_empty() {
                tracing::warn!(changes = ?restart_required, "listen addresses changed: applied the rest; restart ficus to move the listeners");
            }
            if let Ok(mut pending) = shared.pending_restart.lock() {
                pending.clone_from(&restart_required);
            }
            if table.version == current.version {
                shared
                    .metrics
                    .reloads
                    .with_label_values(&["unchanged"])
                    .inc();
                tracing::info!(?trigger, version = %table.version, "routes file unchanged");
                return ReloadReport {
                    result: "unchanged",
                    trigger,
                    version: table.version,
                    errors: None,
                    restart_required,
                };
            }
            let version = table.version.clone();
            shared.metrics.set_config_version(&version);
            // Route commands and the autopilot record their own, richer events.
            if !matches!(trigger, Trigger::Route | Trigger::Autopilot) {
                for e in
                    crate::events::diff(&current, &table, trigger.as_str(), crate::overlay::now())
                {
                    shared.events.record(e);
                }
            }
            shared.table.store(Arc::new(table));
            // Learned-noise comparators were built on the previous rules.
            if let Some(recorder) = &shared.shadow.recorder {
                recorder.reset_comparators();
            }
            shared.metrics.reloads.with_label_values(&["success"]).inc();
            tracing::info!(?trigger, from = %current.version, to = %version, "route table reloaded");
            ReloadReport {
                result: "success",
                trigger,
                version,
                errors: None,
                restart_required,
            }
        }
    }
}

/// A configured port 0 ("any free port") matches whatever port was bound.
pub fn same_addr(configured: std::net::SocketAddr, bound: std::net::SocketAddr) -> bool {
    configured == bound || (configured.port() == 0 && configured.ip() == bound.ip())
}

/// Watches the routes file for changes, including editors' write-to-temp-and-rename and
/// Kubernetes ConfigMap symlink swaps: it watches the directory of the path and of its
/// resolved target, and reloads when the file's text changes.
pub fn watch(path: &Path, handle: ReloadHandle) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })?;
    let mut dirs = Vec::new();
    let parent = |p: &Path| {
        p.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".").to_owned()
            } else {
                d.to_owned()
            }
        })
    };
    dirs.extend(parent(path));
    if let Ok(target) = std::fs::canonicalize(path) {
        dirs.extend(parent(&target));
    }
    dirs.dedup();
    for dir in &dirs {
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of events (write, rename, chmod) settle before reading the file.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
            handle.request(Trigger::File);
        }
    });
    Ok(watcher)
}
