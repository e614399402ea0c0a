//! Process-wide state shared by the data plane, the admin API and the reload task.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::RouteTable;
use crate::config::table::Listen;
use crate::metrics::Metrics;
use crate::shadow::ShadowContext;

/// Lifecycle of the process, broadcast to every worker and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Accepting and serving.
    Running,
    /// No longer accepting; HTTP/1 responses carry `Connection: close`.
    Draining,
    /// Every connection is asked to shut down gracefully (idle ones close now).
    CloseIdle,
}

pub struct Shared {
    /// The table in force. Only the reload task stores into it; a request loads it once.
    pub table: ArcSwap<RouteTable>,
    pub metrics: Metrics,
    /// Addresses the listeners are really bound to (a `[listen]` change needs a restart).
    pub bound: Listen,
    pub last_reload_error: Mutex<Option<Vec<String>>>,
    pub pending_restart: Mutex<Vec<String>>,
    pub access_log: Option<crate::access_log::Format>,
    pub shadow: Arc<ShadowContext>,
    /// Audit log of route changes (`GET /admin/events`).
    pub events: crate::events::EventLog,
    /// TLS termination of the public listener, when `[listen.tls]` was set at start.
    pub tls: std::sync::OnceLock<Arc<crate::tls::Terminator>>,
    draining: AtomicBool,
    phase: watch::Sender<Phase>,
}

impl Shared {
    pub fn new(
        table: RouteTable,
        metrics: Metrics,
        bound: Listen,
        access_log: Option<crate::access_log::Format>,
        shadow: Arc<ShadowContext>,
        events: crate::events::EventLog,
    ) -> Self {
        metrics.set_config_version(&table.version);
        Shared {
            table: ArcSwap::from_pointee(table),
            metrics,
            bound,
            last_reload_error: Mutex::new(None),
            pending_restart: Mutex::new(Vec::new()),
            access_log,
            shadow,
            events,
            tls: std::sync::OnceLock::new(),
            draining: AtomicBool::new(false),
            phase: watch::channel(Phase::Running).0,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn set_phase(&self, phase: Phase) {
        if phase >= Phase::Draining {
            self.draining.store(true, Ordering::Relaxed);
        }
        self.phase.send_if_modified(|p| {
            let advance = phase > *p;
            if advance {
                *p = phase;
            }
            advance
        });
    }

    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    pub fn current_phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// Resolves once the process reaches `phase` (or the sender is gone).
pub async fn reached(rx: &mut watch::Receiver<Phase>, phase: Phase) {
    let reached = rx.wait_for(|p| *p >= phase).await.is_ok();
    if !reached {
        std::future::pending::<()>().await;
    }
}
