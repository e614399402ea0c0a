//! Body types of the data plane: enums instead of boxed trait objects, so the hot path
//! neither allocates nor dispatches dynamically for bodies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::shadow::tee::Tee;
use crate::upstream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why Ficus cut a client body short (see [`ClientBody::fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// No data for `body_read_timeout` (a slow or stalled client): 408.
    Timeout,
    /// More bytes than the route's `max_body_bytes`: 413.
    TooLarge,
}

impl BodyFault {
    /// The refusal the client gets: status, the `error` code of the JSON body, and its
    /// message.
    pub fn refusal(self) -> (hyper::StatusCode, &'static str, &'static str) {
        match self {
            BodyFault::Timeout => (
                hyper::StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "request body not received in time",
            ),
            BodyFault::TooLarge => (
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body too large",
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BodyError(&'static str);

/// A client request body with the edge's limits: an idle timeout between frames and a
/// size limit. Used for requests that have a body; bodiless requests skip it.
#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    received: u64,
    max: Option<u64>,
    fault: Arc<AtomicU8>,
}

impl ClientBody {
    pub fn new(inner: Incoming, idle: Duration, max: Option<u64>) -> Self {
        ClientBody {
            inner,
            idle,
            sleep: None,
            received: 0,
            max,
            fault: Arc::new(AtomicU8::new(0)),
        }
    }

    /// A handle to learn, after the exchange, whether the body was cut short and why.
    pub fn fault(&self) -> FaultHandle {
        FaultHandle(self.fault.clone())
    }

    fn fail(&mut self, fault: BodyFault) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.fault.store(fault as u8 + 1, Ordering::Relaxed);
        let msg = match fault {
            BodyFault::Timeout => "client body read timed out",
            BodyFault::TooLarge => "client body over the route's limit",
        };
        Poll::Ready(Some(Err(Box::new(BodyError(msg)))))
    }
}

/// See [`ClientBody::fault`].
#[derive(Debug, Clone)]
pub struct FaultHandle(Arc<AtomicU8>);

impl FaultHandle {
    pub fn get(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(BodyFault::Timeout),
            2 => Some(BodyFault::TooLarge),
            _ => None,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.sleep = None;
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.max.is_some_and(|max| this.received > max) {
                        return this.fail(BodyFault::TooLarge);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.fail(BodyFault::Timeout);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body on its way to an upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// The client's body when it is empty (GET and the like), or of an upgrade.
    Incoming(Incoming),
    /// The client's body, streamed under the edge's limits.
    Client(ClientBody),
    /// The client's body, streamed, with a bounded copy kept for the shadow (boxed: rare,
    /// and every request moves this enum several times).
    Tee(Box<Tee<ClientBody>>),
    /// A body held in memory (the shadow's copy of a request).
    Full(Option<Bytes>),
    /// No body.
    Empty,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Client(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Tee(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            UpstreamBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Incoming(b) => b.is_end_stream(),
            UpstreamBody::Client(b) => b.is_end_stream(),
            UpstreamBody::Tee(b) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.as_ref().is_none_or(Bytes::is_empty),
            UpstreamBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Incoming(b) => b.size_hint(),
            UpstreamBody::Client(b) => b.size_hint(),
            UpstreamBody::Tee(b) => b.size_hint(),
            UpstreamBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            UpstreamBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A response body on its way to the client.
#[derive(Debug)]
pub enum ResponseBody {
    /// The upstream's body, streamed.
    Upstream(upstream::Body),
    /// The upstream's body, streamed, with a bounded copy kept for the shadow (boxed, as
    /// in [`UpstreamBody`]).
    Tee(Box<Tee<upstream::Body>>),
    /// A body the proxy wrote itself (errors, admin API).
    Full(Option<Bytes>),
}

impl ResponseBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ResponseBody::Full(Some(bytes.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Tee(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(b) => b.is_end_stream(),
            ResponseBody::Tee(b) => b.is_end_stream(),
            ResponseBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(b) => b.size_hint(),
            ResponseBody::Tee(b) => b.size_hint(),
            ResponseBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
