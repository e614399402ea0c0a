//! A body wrapper that streams through unchanged and keeps a bounded copy for the shadow.
//!
//! The copy is delivered on a oneshot channel when the body ends. If the body is larger
//! than the bound the copy is dropped and `Overflow` is delivered instead; if the body
//! fails or is dropped early, the channel is dropped. The wrapped stream never waits
//! on the receiver.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// What the shadow gets of a body.
#[derive(Debug)]
pub enum Captured {
    Complete(Bytes),
    Overflow,
}

#[derive(Debug)]
pub struct Tee<B> {
    inner: B,
    buf: Option<BytesMut>,
    max: usize,
    tx: Option<oneshot::Sender<Captured>>,
}

impl<B: Body> Tee<B> {
    pub fn new(inner: B, max: usize) -> (Self, oneshot::Receiver<Captured>) {
        let (tx, rx) = oneshot::channel();
        let mut tee = Tee {
            inner,
            buf: Some(BytesMut::new()),
            max,
            tx: Some(tx),
        };
        // hyper may never poll a body that is empty from the start: deliver now.
        if tee.inner.is_end_stream() {
            tee.finish();
        }
        (tee, rx)
    }
}

impl<B> Tee<B> {
    fn finish(&mut self) {
        if let Some(tx) = self.tx.take() {
            let captured = match self.buf.take() {
                Some(b) => Captured::Complete(b.freeze()),
                None => Captured::Overflow,
            };
            let _ = tx.send(captured);
        }
    }
}

impl<B> Body for Tee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(buf)) = (frame.data_ref(), this.buf.as_mut()) {
                    if buf.len() + data.len() > this.max {
                        this.buf = None;
                    } else {
                        buf.extend_from_slice(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None) => this.finish(),
            Poll::Ready(Some(Err(_))) => this.tx = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
