//! The data plane: listeners, worker threads, client connections, and draining.
//!
//! Each worker thread runs a current-thread tokio runtime with its own clone of the
//! listening socket, accepts connections, and serves HTTP/1.1 and HTTP/2 (prior
//! knowledge, h2c) on them with hyper-util's auto builder. Requests stay on the thread
//! that accepted their connection, together with that thread's upstream pools.
//!
//! Draining (SIGTERM, SIGINT, or a successor taking the sockets over) happens in phases
//! broadcast through [`Phase`]: stop accepting and mark HTTP/1 responses
//! `Connection: close`; after `drain_idle_ms` ask every connection to shut down gracefully
//! (HTTP/2 GOAWAY, idle HTTP/1 closed); after `grace_period_ms` abort what is left.

pub mod body;
mod gate;
pub mod guard;
pub mod headers;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use std::future::Future;
use std::pin::Pin;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::state::{self, Phase, Shared};
use headers::Peer;
use service::ConnCtx;

/// Binds a listening TCP socket the way a proxy wants it.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// The running worker threads.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` workers accepting on clones of `listener`.
    pub fn start(
        listener: &std::net::TcpListener,
        threads: usize,
        shared: &Arc<Shared>,
    ) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let listener = listener.try_clone()?;
            let shared = shared.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ficus-worker-{i}"))
                    .spawn(move || {
                        if let Err(e) = worker(listener, shared) {
                            tracing::error!(error = %e, "worker stopped");
                        }
                    })?,
            );
        }
        Ok(Workers { handles })
    }

    /// Waits for every worker to finish draining.
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn worker(listener: std::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        // Rebuilt when a reload changes the table, so `[limits]` apply to new connections.
        let mut built_for = shared.table.load_full();
        let mut builder = Arc::new(Builders::new(&built_for.limits));
        let mut phase = shared.phase();
        let mut conns = JoinSet::new();
        let flusher = tokio::spawn(async {
            let mut tick = tokio::time::interval(crate::access_log::FLUSH_EVERY);
            loop {
                tick.tick().await;
                crate::access_log::flush();
            }
        });
        loop {
            tokio::select! {
                biased;
                _ = state::reached(&mut phase, Phase::Draining) => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let table = shared.table.load();
                        if !Arc::ptr_eq(&table, &built_for) {
                            built_for = arc_swap::Guard::into_inner(table);
                            builder = Arc::new(Builders::new(&built_for.limits));
                        }
                        let open = usize::try_from(shared.metrics.connections.get()).unwrap_or(0);
                        if open >= built_for.limits.max_connections {
                            // Closed at once: cheaper for everyone than a queue that times out.
                            shared.metrics.connections_refused.inc();
                            drop(stream);
                            continue;
                        }
                        conns.spawn(serve(stream, peer, builder.clone(), shared.clone()));
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                },
            }
        }
        drop(listener);
        let grace = shared.table.load().server.grace_period;
        let drained =
            tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                connections = conns.len(),
                ?grace,
                "grace period over; closing remaining connections"
            );
            conns.abort_all();
        }
        flusher.abort();
        crate::access_log::flush_and_wait();
        Ok(())
    })
}

struct ConnectionGauge(Arc<Shared>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}

/// The two protocol builders of a worker, configured once, and the HTTP/1 idle bound.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    idle_timeout: std::time::Duration,
}

impl Builders {
    fn new(limits: &crate::limits::Limits) -> Self {
        let mut h1 = http1::Builder::new();
        h1.keep_alive(true)
            // Over either limit hyper answers 431 and closes.
            .max_headers(limits.max_headers)
            .max_header_size(limits.max_header_bytes)
            // No header timer in hyper (it armed one per request): a slow head is answered
            // 408 by guard.rs, an idle keep-alive connection is closed by
            // guard::idle_watch.
            .header_read_timeout(None);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        Builders {
            http1: h1,
            http2: h2,
            idle_timeout: limits.idle_timeout,
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2 with prior knowledge starts with the connection preface; anything else is
/// served as HTTP/1. Peeking (instead of hyper-util's auto builder, which wraps the socket
/// in a rewind buffer for its whole life) keeps the HTTP/1 fast path a plain socket.
async fn is_http2(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 24];
    // A preface split across packets: re-peek a bounded number of times.
    for _ in 0..5000 {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if buf[..n] != H2_PREFACE[..n] {
            return false;
        }
        if n == H2_PREFACE.len() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    false
}

/// A hyper connection that can be asked to shut down gracefully.
trait Graceful: Future {
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    Self: Future,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    Self: Future,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Drives `conn` to completion, asking it to shut down when the process reaches CloseIdle
/// or when `idle` completes (an HTTP/1 connection idle for too long; a graceful shutdown
/// closes it at once, or after the request that has just begun).
///
/// The phase and the idle bound are polled only when they wake the task themselves
/// ([`gate::Gated`]), not on every read and write of the connection.
async fn drive<C, T, E>(conn: C, shared: &Shared, peer: SocketAddr, idle: impl Future<Output = ()>)
where
    C: Graceful<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    enum Stop {
        Drain,
        Idle,
    }
    let mut phase = shared.phase();
    let stop = async {
        tokio::select! {
            biased;
            _ = state::reached(&mut phase, Phase::CloseIdle) => Stop::Drain,
            _ = idle => Stop::Idle,
        }
    };
    tokio::pin!(conn, stop);
    let stop = gate::Gated::new(stop);
    tokio::select! {
        biased;
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "client connection ended with an error");
            }
        }
        why = stop => {
            if let Stop::Idle = why {
                tracing::debug!(%peer, "idle connection closed");
            }
            conn.as_mut().shutdown();
            let _ = conn.await;
        }
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, builders: Arc<Builders>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    shared.metrics.connections.inc();
    let _gauge = ConnectionGauge(shared.clone());
    let trusted = shared
        .table
        .load()
        .listen
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&peer.ip()));
    if let Some(tls) = shared.tls.get().cloned() {
        // Boxed: TLS connections are a separate, larger future; plaintext stays lean.
        Box::pin(serve_tls(stream, peer, trusted, tls, builders, shared)).await;
        return;
    }
    let peer_info = Peer::new(peer, trusted);
    if is_http2(&stream).await {
        serve_h2(stream, peer_info, false, &builders, &shared).await;
    } else {
        serve_h1(stream, peer_info, false, &builders, &shared).await;
    }
}

/// Serves HTTP/2 on `io`.
async fn serve_h2<S>(io: S, peer: Peer, tls: bool, builders: &Builders, shared: &Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        peer,
        tls,
        guard: None,
    });
    let svc = service_fn(move |req| service::handle(req, ctx.clone()));
    drive(
        builders.http2.serve_connection(TokioIo::new(io), svc),
        shared,
        addr,
        std::future::pending(),
    )
    .await;
}

/// Serves HTTP/1.1 on `io`, watched by a [`guard::Guarded`] (framing conflicts, slow
/// heads); every response holds an in-flight token until hyper has sent it.
async fn serve_h1<S>(io: S, peer: Peer, tls: bool, builders: &Builders, shared: &Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let conn = Arc::new(guard::ConnGuard::default());
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        peer,
        tls,
        guard: Some(conn.clone()),
    });
    let tracker = conn.clone();
    let svc = service_fn(move |req| {
        let in_flight = tracker.start();
        let resp = service::handle(req, ctx.clone());
        async move {
            let resp = resp.await?;
            Ok::<_, std::convert::Infallible>(resp.map(|b| guard::Tracked::new(b, in_flight)))
        }
    });
    let idle = guard::idle_watch(conn.clone(), builders.idle_timeout);
    let io = guard::Guarded::new(io, conn, shared.clone());
    drive(
        builders
            .http1
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades(),
        shared,
        addr,
        idle,
    )
    .await;
}

/// A connection on the TLS listener: handshake (bounded), then HTTP/2 if ALPN chose it,
/// else HTTP/1.1.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    trusted: bool,
    tls: Arc<crate::tls::Terminator>,
    builders: Arc<Builders>,
    shared: Arc<Shared>,
) {
    let timeout = shared
        .table
        .load()
        .tls
        .as_ref()
        .map_or(crate::tls::DEFAULT_HANDSHAKE_TIMEOUT, |t| {
            t.handshake_timeout
        });
    let stream = match tokio::time::timeout(timeout, tls.acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            shared.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let peer = Peer::new(peer, trusted);
    if h2 {
        serve_h2(stream, peer, true, &builders, &shared).await;
    } else {
        serve_h1(stream, peer, true, &builders, &shared).await;
    }
}
