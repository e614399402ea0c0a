//! Clients for upstream services: per-thread HTTP/1.1 connection pools and the exchange.
//!
//! Each worker thread runs its own current-thread runtime and owns its pools (a
//! thread-local map keyed by [`Upstream::pool_key`]), so checkout and checkin take no
//! lock. A pooled connection is checked in as soon as the response head arrives; it is
//! reused only once hyper reports it ready, i.e. after the previous body has finished.
//! Pools are keyed by authority, so a reload that keeps an upstream keeps its pool.

mod pool;

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::Upstream;
use crate::server::body::UpstreamBody;

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
    Protocol {
        authority: String,
        source: hyper::Error,
    },
}

impl UpstreamError {
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

/// A pooled connection and its request timer.
///
/// The timer lives as long as the connection and is moved to each request's deadline.
/// Deadlines only grow, so the move is one atomic update in tokio's timer (the wheel
/// entry is re-filed when the old deadline passes), where a timer per request cost two
/// locked insertions and removals in the timer wheel.
pub(crate) struct Pooled {
    sender: Sender,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

async fn connect(up: &Upstream, upgrades: bool) -> Result<Sender, UpstreamError> {
    let connect = async {
        let stream = TcpStream::connect(up.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    let stream = match tokio::time::timeout(up.connect_timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(UpstreamError::Connect {
                authority: up.authority.clone(),
                source,
            });
        }
        Err(_) => {
            return Err(UpstreamError::ConnectTimeout {
                authority: up.authority.clone(),
                after: up.connect_timeout,
            });
        }
    };
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| UpstreamError::Protocol {
            authority: up.authority.clone(),
            source,
        })?;
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
/// request timeout counts from `started`.
///
/// A request that was never written (stale pooled connection) is retried once on a
/// fresh connection; anything else is reported, never retried, so no request is sent twice.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn send(
    up: &Upstream,
    mut req: Request<UpstreamBody>,
    started: std::time::Instant,
) -> impl Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + '_ {
    // A block using `req` in place: an `async fn` would hold a second copy of it (see
    // server::service::handle).
    async move {
        // The deadline counts from when the request arrived (saves a clock read).
        let deadline = tokio::time::Instant::from_std(started) + up.request_timeout;
        let mut retried = false;
        loop {
            let (mut conn, reused) = match pool::checkout(up.pool_key) {
                Some(mut c) => {
                    c.timer.as_mut().reset(deadline);
                    (c, true)
                }
                // Boxed: connecting is rare, and its large future would otherwise bloat every request's.
                None => (
                    Pooled {
                        sender: Box::pin(connect(up, false))
                            .await
                            .map_err(|e| e.count(up))?,
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
                    if let std::task::Poll::Ready(r) = send.as_mut().poll(cx) {
                        return std::task::Poll::Ready(Ok(r));
                    }
                    timer.as_mut().poll(cx).map(Err)
                })
                .await
            };
            match sent {
                Ok(Ok(resp)) => {
                    pool::checkin(up, conn);
                    return Ok(resp);
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(unsent) if reused && !retried => {
                        retried = true;
                        req = unsent;
                    }
                    _ => {
                        let source = e.into_error();
                        return Err(UpstreamError::Protocol {
                            authority: up.authority.clone(),
                            source,
                        }
                        .count(up));
                    }
                },
                Err(_) => {
                    return Err(UpstreamError::Timeout {
                        authority: up.authority.clone(),
                        after: up.request_timeout,
                    }
                    .count(up));
                }
            }
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
        Ok(Err(source)) => Err(UpstreamError::Protocol {
            authority: up.authority.clone(),
            source,
        }
        .count(up)),
        Err(_) => Err(UpstreamError::Timeout {
            authority: up.authority.clone(),
            after: up.request_timeout,
        }
        .count(up)),
    }
}

#[cfg(test)]
mod tests;
