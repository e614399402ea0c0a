//! Clients for upstream services: per-thread HTTP/1.1 connection pools and the exchange.
//!
//! Each worker thread runs its own current-thread runtime and owns its pools (a
//! thread-local map keyed by [`Upstream::pool_key`]), so checkout and checkin take no
//! lock. Pools are keyed by authority, so a reload that keeps an upstream keeps its pool.
//!
//! Two clients share them. A request without a body (most of them) goes through
//! [`wire`], driven by the requesting task itself; its connection is pooled again when the
//! response body has been read. A request with a body goes through hyper's
//! `client::conn::http1`, whose connection runs as a task; it is checked in as soon as
//! the response head arrives and reused once hyper reports it ready, i.e. after the
//! previous body has finished.

mod pool;
pub mod wire;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::Upstream;
use crate::server::body::{BoxError, UpstreamBody};

pub use pool::prune;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect to {authority} failed: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("connect to {authority} timed out after {after:?}")]
    ConnectTimeout { authority: String, after: Duration },
    #[error("no response headers from {authority} within {after:?}")]
    Timeout { authority: String, after: Duration },
    #[error("exchange with {authority} failed: {source}")]
    Protocol { authority: String, source: BoxError },
}

impl UpstreamError {
    fn protocol(up: &Upstream, source: impl Into<BoxError>) -> Self {
        UpstreamError::Protocol {
            authority: up.authority.clone(),
            source: source.into(),
        }
    }

    fn timeout(up: &Upstream) -> Self {
        UpstreamError::Timeout {
            authority: up.authority.clone(),
            after: up.request_timeout,
        }
    }

    /// Label for `ficus_upstream_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::ConnectTimeout { .. } => "connect_timeout",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Protocol { .. } => "protocol",
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout { .. } | UpstreamError::Timeout { .. }
        )
    }

    fn count(self, up: &Upstream) -> Self {
        match &self {
            UpstreamError::Connect { .. } => up.metrics.connect.inc(),
            UpstreamError::ConnectTimeout { .. } => up.metrics.connect_timeout.inc(),
            UpstreamError::Timeout { .. } => up.metrics.timeout.inc(),
            UpstreamError::Protocol { .. } => up.metrics.protocol.inc(),
        }
        self
    }
}

type Sender = http1::SendRequest<UpstreamBody>;

/// A response body from an upstream, read by either client.
#[derive(Debug)]
pub enum Body {
    Hyper(Incoming),
    Wire(wire::Body),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Wire(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Hyper(b) => b.is_end_stream(),
            Body::Wire(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Hyper(b) => b.size_hint(),
            Body::Wire(b) => b.size_hint(),
        }
    }
}

/// A pooled hyper connection and its request timer.
///
/// The timer lives as long as the connection and is moved to each request's deadline.
/// Deadlines only grow, so the move is one atomic update in tokio's timer (the wheel
/// entry is re-filed when the old deadline passes), where a timer per request cost two
/// locked insertions and removals in the timer wheel. [`wire::Conn`] keeps one the same way.
pub(crate) struct Pooled {
    sender: Sender,
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// Opens a TCP connection to `up` within its connect timeout.
async fn dial(up: &Upstream) -> Result<TcpStream, UpstreamError> {
    let connect = async {
        let stream = TcpStream::connect(up.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    match tokio::time::timeout(up.connect_timeout, connect).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(UpstreamError::Connect {
            authority: up.authority.clone(),
            source,
        }),
        Err(_) => Err(UpstreamError::ConnectTimeout {
            authority: up.authority.clone(),
            after: up.connect_timeout,
        }),
    }
}

async fn connect(up: &Upstream, upgrades: bool) -> Result<Sender, UpstreamError> {
    let stream = dial(up).await?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| UpstreamError::protocol(up, source))?;
    if upgrades {
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
    } else {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
    }
    Ok(sender)
}

/// Sends `req` to `up` and returns the response head with its streaming body; the
/// request timeout counts from `started` and runs until the response head arrives.
///
/// A request that was never written (stale pooled connection) is retried once on a
/// fresh connection. A bodiless idempotent request (GET, HEAD, PUT, DELETE, OPTIONS,
/// TRACE) is also retried once when a pooled connection closed or failed before a byte
/// of the response came back (the upstream closing an idle connection as the request
/// arrived). Anything else is reported, never retried.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn send(
    up: &Upstream,
    req: Request<UpstreamBody>,
    started: std::time::Instant,
) -> impl Future<Output = Result<Response<Body>, UpstreamError>> + Send + '_ {
    // A block using `req` in place: an `async fn` would hold a second copy of it (see
    // server::service::handle).
    async move {
        // The deadline counts from when the request arrived (saves a clock read).
        let deadline = tokio::time::Instant::from_std(started) + up.request_timeout;
        if http_body::Body::is_end_stream(req.body()) {
            send_bodiless(up, req, deadline).await
        } else {
            Box::pin(send_hyper(up, req, deadline)).await
        }
    }
}

/// The exchange of a request without a body, by [`wire`].
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
fn send_bodiless(
    up: &Upstream,
    req: Request<UpstreamBody>,
    deadline: tokio::time::Instant,
) -> impl Future<Output = Result<Response<Body>, UpstreamError>> + Send + '_ {
    async move {
        let slot = wire::PoolSlot {
            key: up.pool_key,
            max_idle: up.max_idle_per_thread,
        };
        let mut retried = false;
        loop {
            // A retry takes a new connection: the other idle ones may be as stale.
            let pooled = if retried {
                None
            } else {
                pool::checkout_wire(up.pool_key)
            };
            let (mut conn, reused) = match pooled {
                Some(mut c) => {
                    c.timer.as_mut().reset(deadline);
                    (c, true)
                }
                // Boxed: connecting is rare, and its future would otherwise bloat every request's.
                None => {
                    let io = Box::pin(dial(up)).await.map_err(|e| e.count(up))?;
                    (
                        wire::Conn::new(io, Box::pin(tokio::time::sleep_until(deadline))),
                        false,
                    )
                }
            };
            match conn.exchange(&req).await {
                Ok(head) => {
                    let (resp, idle) = conn.respond(head, slot);
                    if let Some(idle) = idle {
                        pool::checkin_wire(slot, idle);
                    }
                    return Ok(resp.map(Body::Wire));
                }
                Err(wire::Failed::Unsent(_)) if reused && !retried => retried = true,
                Err(wire::Failed::Dropped(_))
                    if reused && !retried && req.method().is_idempotent() =>
                {
                    retried = true;
                }
                Err(wire::Failed::Unsent(e)) => {
                    return Err(UpstreamError::protocol(up, e).count(up));
                }
                Err(wire::Failed::Dropped(e) | wire::Failed::Error(e)) => {
                    return Err(UpstreamError::protocol(up, e).count(up));
                }
                Err(wire::Failed::Timeout) => return Err(UpstreamError::timeout(up).count(up)),
            }
        }
    }
}

/// The exchange of a request with a body, by hyper's client.
async fn send_hyper(
    up: &Upstream,
    mut req: Request<UpstreamBody>,
    deadline: tokio::time::Instant,
) -> Result<Response<Body>, UpstreamError> {
    let mut retried = false;
    loop {
        let pooled = if retried {
            None
        } else {
            pool::checkout(up.pool_key)
        };
        let (mut conn, reused) = match pooled {
            Some(mut c) => {
                c.timer.as_mut().reset(deadline);
                (c, true)
            }
            None => (
                Pooled {
                    sender: connect(up, false).await.map_err(|e| e.count(up))?,
                    timer: Box::pin(tokio::time::sleep_until(deadline)),
                },
                false,
            ),
        };
        let sent = {
            let Pooled { sender, timer } = &mut conn;
            let send = sender.try_send_request(req);
            tokio::pin!(send);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = send.as_mut().poll(cx) {
                    return Poll::Ready(Ok(r));
                }
                timer.as_mut().poll(cx).map(Err)
            })
            .await
        };
        match sent {
            Ok(Ok(resp)) => {
                pool::checkin(up, conn);
                return Ok(resp.map(Body::Hyper));
            }
            Ok(Err(mut e)) => match e.take_message() {
                Some(unsent) if reused && !retried => {
                    retried = true;
                    req = unsent;
                }
                _ => return Err(UpstreamError::protocol(up, e.into_error()).count(up)),
            },
            Err(_) => return Err(UpstreamError::timeout(up).count(up)),
        }
    }
}

/// Sends an `Upgrade` request on a dedicated connection (never pooled).
pub async fn send_upgrade(
    up: &Upstream,
    req: Request<UpstreamBody>,
) -> Result<Response<Incoming>, UpstreamError> {
    let mut sender = connect(up, true).await.map_err(|e| e.count(up))?;
    match tokio::time::timeout(up.request_timeout, sender.send_request(req)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(source)) => Err(UpstreamError::protocol(up, source).count(up)),
        Err(_) => Err(UpstreamError::timeout(up).count(up)),
    }
}

#[cfg(test)]
mod tests;
