//! Ficus: a strangler-fig migration proxy.
//!
//! Start at [`run`]. See ARCHITECTURE.md for the request path and the reload path.

pub mod access_log;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod autopilot;
pub mod breaker;
pub mod canary;
pub mod check;
pub mod config;
pub mod events;
pub mod handoff;
pub mod limits;
pub mod metrics;
pub mod overlay;
pub mod request_id;
pub mod route_cli;
pub mod routectl;
pub mod router;
pub mod server;
pub mod shadow;
pub mod state;
pub mod tls;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use config::reload::{self, Trigger};
use config::table::Listen;
use metrics::Metrics;
use state::{Phase, Shared};

/// Options of `ficus run`.
#[derive(Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    /// Worker threads (each with its own current-thread runtime).
    pub threads: usize,
    /// Access log format, or `None` for no access log.
    pub access_log: Option<access_log::Format>,
    /// Unix socket for zero-downtime restarts (see [`handoff`]).
    pub handoff_socket: Option<PathBuf>,
    /// Listeners the caller already bound (an embedding program such as the demo, which
    /// binds `127.0.0.1:0` and writes the ports into the routes file so that no other
    /// process can take a port between choosing and binding it). Used instead of binding
    /// `[listen]`; a handoff from a predecessor still wins.
    pub listeners: Option<PreBound>,
}

/// Already-bound listeners for [`RunOptions::listeners`].
#[derive(Debug)]
pub struct PreBound {
    /// Serves `listen.proxy`.
    pub proxy: std::net::TcpListener,
    /// Serves `listen.admin`.
    pub admin: std::net::TcpListener,
}

/// Runs the proxy until SIGTERM/SIGINT or until a successor takes over, then drains.
pub fn run(opts: RunOptions) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let table = config::load(&opts.config, &metrics).map_err(anyhow::Error::new)?;
    let wanted = table.listen.clone();

    let takeover = match &opts.handoff_socket {
        Some(path) => handoff::take_over(path)?,
        None => None,
    };
    let (proxy, admin, takeover) = match (takeover, opts.listeners) {
        (Some(t), _) => {
            let proxy = adopt_or_bind(t.proxy.try_clone()?, wanted.proxy)?;
            let admin = adopt_or_bind(t.admin.try_clone()?, wanted.admin)?;
            (proxy, admin, Some(t))
        }
        (None, Some(PreBound { proxy, admin })) => {
            proxy.set_nonblocking(true)?;
            admin.set_nonblocking(true)?;
            (proxy, admin, None)
        }
        (None, None) => (
            server::bind(wanted.proxy)
                .with_context(|| format!("bind listen.proxy {}", wanted.proxy))?,
            server::bind(wanted.admin)
                .with_context(|| format!("bind listen.admin {}", wanted.admin))?,
            None,
        ),
    };
    let bound = Listen {
        proxy: proxy.local_addr()?,
        admin: admin.local_addr()?,
        trusted_proxies: wanted.trusted_proxies,
    };
    let shadow = Arc::new(start_shadow(&opts.config, &table));
    let events = events::EventLog::open(&opts.config);
    let shared = Arc::new(Shared::new(
        table,
        metrics,
        bound,
        opts.access_log,
        shadow,
        events,
    ));

    if let Some(settings) = &shared.table.load().tls {
        let terminator =
            tls::Terminator::new(settings).map_err(|e| anyhow::anyhow!("listen.tls: {e}"))?;
        let _ = shared.tls.set(Arc::new(terminator));
    }
    let workers = server::Workers::start(&proxy, opts.threads, &shared)?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    control.block_on(async {
        // Signal handlers first: a SIGHUP right after "ficus listening" must reload, not kill.
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let reload = reload::spawn(opts.config.clone(), shared.clone());
        let _tls_watch = shared
            .tls
            .get()
            .map(|t| tls::watch(t.clone(), shared.clone()));
        let _watcher = match reload::watch(&opts.config, reload.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the routes file; reload with SIGHUP or POST /admin/reload");
                None
            }
        };
        let admin_listener = tokio::net::TcpListener::from_std(admin.try_clone()?)?;
        let autopilot = autopilot::Autopilot::from_env();
        autopilot::spawn(autopilot.clone(), shared.clone(), reload.clone());
        let dashboard = admin::dashboard::Dashboard::from_env();
        admin::dashboard::spawn(dashboard.clone(), shared.clone());
        tokio::spawn(admin::serve(
            admin_listener,
            admin::Admin {
                shared: shared.clone(),
                reload: reload.clone(),
                autopilot,
                dashboard,
            },
        ));

        let (handed_over_tx, mut handed_over) = tokio::sync::mpsc::channel::<()>(1);
        if let Some(path) = &opts.handoff_socket {
            handoff::listen(path, proxy.try_clone()?, admin.try_clone()?, move || {
                let _ = handed_over_tx.try_send(());
            })?;
        }
        if let Some(t) = takeover {
            t.ready().context("tell the previous ficus we are serving")?;
        }

        {
            let table = shared.table.load();
            tracing::info!(
                proxy = %shared.bound.proxy,
                admin = %shared.bound.admin,
                version = %table.version,
                routes = table.routes.len(),
                threads = opts.threads,
                "ficus listening"
            );
            if table.auth.is_none() {
                tracing::warn!(
                    "no [auth] table: authentication is off and every route is public (docs/security.md)"
                );
            }
        }
        let why = loop {
            tokio::select! {
                _ = hup.recv() => reload.request(Trigger::Signal),
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = handed_over.recv() => break "handoff",
            }
        };
        let server = shared.table.load().server.clone();
        tracing::info!(reason = why, grace = ?server.grace_period, "draining");
        shared.set_phase(Phase::Draining);
        tokio::time::sleep(server.drain_idle.min(server.grace_period)).await;
        shared.set_phase(Phase::CloseIdle);
        tokio::task::spawn_blocking(move || workers.join()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// The shadow context: global concurrency limit and the mismatch store. Both are fixed at
/// start; a change of `[shadow]` settings needs a restart (reload reports it).
fn start_shadow(config: &std::path::Path, table: &config::RouteTable) -> shadow::ShadowContext {
    let settings = &table.file.shadow;
    let path = shadow_store_path(config, settings.store.as_deref());
    // A store that cannot be opened must not keep ficus from serving: shadow outcomes are
    // still counted in the metrics, just not stored.
    let recorder = match shadow::recorder::Recorder::start(
        &path,
        settings.samples_per_route.unwrap_or(100),
        settings.sample_body_bytes.unwrap_or(64 * 1024),
    ) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(store = %path.display(), error = %e, "cannot open the shadow store; outcomes will not be stored");
            None
        }
    };
    shadow::ShadowContext {
        global_limit: Arc::new(tokio::sync::Semaphore::new(
            settings.max_concurrency.unwrap_or(256),
        )),
        recorder,
    }
}

/// `[shadow] store`, relative to the routes file's directory (default `ficus-shadow.db`).
pub fn shadow_store_path(config: &std::path::Path, store: Option<&str>) -> PathBuf {
    let dir = config.parent().unwrap_or(std::path::Path::new("."));
    dir.join(store.unwrap_or("ficus-shadow.db"))
}

/// Uses a handed-over listener if it is bound where the config says; binds anew otherwise
/// (a changed `[listen]` is applied by exactly this restart).
fn adopt_or_bind(
    l: std::net::TcpListener,
    wanted: std::net::SocketAddr,
) -> anyhow::Result<std::net::TcpListener> {
    if reload::same_addr(wanted, l.local_addr()?) {
        l.set_nonblocking(true)?;
        Ok(l)
    } else {
        server::bind(wanted).with_context(|| format!("bind {wanted}"))
    }
}
