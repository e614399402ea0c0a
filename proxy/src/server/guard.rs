//! A read-only watcher on each HTTP/1 client connection, for the two checks hyper's parser
//! cannot report to the service:
//!
//! - **Conflicting framing** (request smuggling): a head with both `Content-Length` and
//!   `Transfer-Encoding`, or with more than one `Content-Length` line. hyper accepts them
//!   (chunked wins and the length is dropped from the header map; equal lengths are
//!   merged), so the service never sees them. The guard follows the request framing
//!   (heads, fixed-length and chunked bodies) to number the heads and records the first bad
//!   one; the service answers that request 400 and closes the connection
//!   ([`ConnGuard::next_request`]).
//! - **Slow heads** (slowloris): a request head that has begun but is not complete within
//!   `limits.header_read_timeout_ms` of its first byte is answered 408 and the connection
//!   closed. An idle keep-alive connection (no request in progress) is closed after
//!   `limits.idle_timeout_ms` by [`idle_watch`], one timer per connection.
//!
//! The guard never changes, delays or buffers a byte in either direction (a partial head
//! is copied, not held back). When it cannot follow the framing (a head hyper will refuse
//! anyway, an upgrade, `CONNECT`) it stops watching the connection for good: it fails open
//! to hyper's own checks, never closed. The 408 is written only when no response is in
//! progress and everything hyper wrote has been flushed, so it can never interleave with
//! another response.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::limits::DEFAULT_MAX_HEADERS;
use crate::state::Shared;

/// Why a request's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// `Content-Length` and `Transfer-Encoding` in one head.
    LengthAndChunked,
    /// More than one `Content-Length` line (equal values included).
    DuplicateLength,
}

impl FramingError {
    /// Label of `ficus_rejected_total{reason}`.
    pub fn reason(self) -> &'static str {
        match self {
            FramingError::LengthAndChunked => "conflicting_framing",
            FramingError::DuplicateLength => "duplicate_content_length",
        }
    }

    /// Client-safe message.
    pub fn message(self) -> &'static str {
        match self {
            FramingError::LengthAndChunked => {
                "request has both Content-Length and Transfer-Encoding"
            }
            FramingError::DuplicateLength => "request has more than one Content-Length",
        }
    }

    fn code(self) -> u8 {
        match self {
            FramingError::LengthAndChunked => 1,
            FramingError::DuplicateLength => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(FramingError::LengthAndChunked),
            2 => Some(FramingError::DuplicateLength),
            _ => None,
        }
    }
}

const NO_BAD_HEAD: u64 = u64::MAX;

/// What the guard of one connection shares with the service serving it.
#[derive(Debug)]
pub struct ConnGuard {
    /// Number (from 0) of the first head with bad framing; `NO_BAD_HEAD` when none.
    bad_head: AtomicU64,
    bad_reason: AtomicU8,
    /// Requests handed to the service so far.
    requests: AtomicU64,
    /// Responses hyper has not finished sending.
    in_flight: AtomicUsize,
}

impl Default for ConnGuard {
    fn default() -> Self {
        ConnGuard {
            bad_head: AtomicU64::new(NO_BAD_HEAD),
            bad_reason: AtomicU8::new(0),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl ConnGuard {
    /// Called by the service once per request, in order: the framing verdict for it.
    /// hyper hands requests over in the order their heads arrived, and the guard has seen
    /// every head before hyper parses it.
    pub fn next_request(&self) -> Option<FramingError> {
        let i = self.requests.fetch_add(1, Ordering::Relaxed);
        if i == self.bad_head.load(Ordering::Relaxed) {
            FramingError::from_code(self.bad_reason.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// Marks a response as in progress until the returned token is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn record(&self, head: u64, why: FramingError) {
        if self.bad_head.load(Ordering::Relaxed) == NO_BAD_HEAD {
            self.bad_reason.store(why.code(), Ordering::Relaxed);
            self.bad_head.store(head, Ordering::Relaxed);
        }
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }
}

/// Checks of an idle connection per `idle_timeout` (see [`idle_watch`]).
const IDLE_CHECKS: u32 = 8;

/// Completes once the connection has had no request in progress, and no new one, for at
/// least `timeout` (at most `timeout` × 1.25): the bound on an idle keep-alive connection.
///
/// One timer per connection, re-armed every `timeout / 8`, instead of hyper's header-read
/// timer, which allocated and registered a timer for every request. A check counts as
/// quiet when nothing is in flight and no request started since the previous check; nine
/// quiet checks in a row close the connection, so the idle time is above eight periods.
pub async fn idle_watch(conn: Arc<ConnGuard>, timeout: Duration) {
    let period = (timeout / IDLE_CHECKS).max(Duration::from_millis(1));
    let sleep = tokio::time::sleep(period);
    tokio::pin!(sleep);
    let mut seen = conn.requests.load(Ordering::Relaxed);
    let mut quiet = 0;
    loop {
        sleep.as_mut().await;
        let requests = conn.requests.load(Ordering::Relaxed);
        if conn.idle() && requests == seen {
            quiet += 1;
            if quiet > IDLE_CHECKS {
                return;
            }
        } else {
            quiet = 0;
            seen = requests;
        }
        sleep.as_mut().reset(tokio::time::Instant::now() + period);
    }
}

/// A response in progress (see [`ConnGuard::start`]).
#[derive(Debug)]
pub struct InFlight(Arc<ConnGuard>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds an [`InFlight`] token until hyper drops it, which hyper
/// does once the body has been sent (or abandoned).
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Where the guard is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests: skipping the empty lines allowed before a head.
    Idle,
    /// Inside a head (its bytes so far are in `Scanner::head`).
    Head,
    /// Inside a body of known length: bytes left.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Not following the framing any more (upgrade, CONNECT, something hyper refuses).
    Opaque,
}

/// States of the chunked-body parser (RFC 9112 §7.1), lenient where hyper is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    SizeStart,
    Size(u64),
    /// Chunk extensions or whitespace after the size, up to the line feed.
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerLine,
    EndLf,
}

/// What feeding a chunk parser ended with.
enum ChunkStep {
    /// All input used, body not finished.
    More(Chunk),
    /// The body ended after `n` bytes of the input.
    Done(usize),
    /// Not a chunked body hyper would accept.
    Bad,
}

fn feed_chunked(mut c: Chunk, data: &[u8]) -> ChunkStep {
    let mut i = 0;
    while i < data.len() {
        if let Chunk::Data(n) = c {
            let take = n.min((data.len() - i) as u64);
            i += take as usize;
            c = if take == n {
                Chunk::DataCr
            } else {
                Chunk::Data(n - take)
            };
            continue;
        }
        let b = data[i];
        i += 1;
        let after_size = |v: u64| {
            if v == 0 {
                Chunk::TrailerStart
            } else {
                Chunk::Data(v)
            }
        };
        c = match c {
            Chunk::SizeStart => match hex(b) {
                Some(d) => Chunk::Size(d),
                None => return ChunkStep::Bad,
            },
            Chunk::Size(v) => match hex(b) {
                Some(d) => match v.checked_mul(16).and_then(|v| v.checked_add(d)) {
                    Some(v) => Chunk::Size(v),
                    None => return ChunkStep::Bad,
                },
                None => match b {
                    b';' | b' ' | b'\t' => Chunk::Ext(v),
                    b'\r' => Chunk::SizeLf(v),
                    b'\n' => after_size(v),
                    _ => return ChunkStep::Bad,
                },
            },
            Chunk::Ext(v) => match b {
                b'\n' => after_size(v),
                _ => Chunk::Ext(v),
            },
            Chunk::SizeLf(v) => match b {
                b'\n' => after_size(v),
                _ => return ChunkStep::Bad,
            },
            // Consumed in bulk above, before a byte is taken; never reached.
            Chunk::Data(_) => Chunk::DataCr,
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                b'\n' => Chunk::SizeStart,
                _ => return ChunkStep::Bad,
            },
            Chunk::DataLf => match b {
                b'\n' => Chunk::SizeStart,
                _ => return ChunkStep::Bad,
            },
            Chunk::TrailerStart => match b {
                b'\r' => Chunk::EndLf,
                b'\n' => return ChunkStep::Done(i),
                _ => Chunk::TrailerLine,
            },
            Chunk::TrailerLine => match b {
                b'\n' => Chunk::TrailerStart,
                _ => Chunk::TrailerLine,
            },
            Chunk::EndLf => match b {
                b'\n' => return ChunkStep::Done(i),
                _ => return ChunkStep::Bad,
            },
        };
    }
    ChunkStep::More(c)
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// How parsing a (possibly partial) head went.
enum Parsed {
    /// The head is complete after this many bytes; `Scanner::state` is set for what follows.
    Complete(usize),
    Partial,
    /// hyper will refuse it, or it is an upgrade: stop following.
    Stop,
}

/// Follows the request framing of one connection.
#[derive(Debug)]
struct Scanner {
    state: State,
    /// The bytes of a head that has not been completed by one read.
    head: Vec<u8>,
    /// Heads completed so far.
    heads: u64,
    max_head_bytes: usize,
    max_headers: usize,
}

impl Scanner {
    fn new(max_head_bytes: usize, max_headers: usize) -> Self {
        Scanner {
            state: State::Idle,
            head: Vec::new(),
            heads: 0,
            max_head_bytes,
            max_headers,
        }
    }

    /// A head has begun and is not complete.
    fn in_partial_head(&self) -> bool {
        self.state == State::Head
    }

    /// Follows `data`, the next bytes hyper reads.
    fn feed(&mut self, mut data: &[u8], conn: &ConnGuard) {
        while !data.is_empty() {
            match self.state {
                State::Opaque => return,
                State::Idle => {
                    let blank = data
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    data = &data[blank..];
                    if !data.is_empty() {
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    let used = if self.head.is_empty() {
                        match self.parse(data, conn) {
                            Parsed::Complete(n) => n,
                            Parsed::Partial => {
                                self.keep_partial(data);
                                return;
                            }
                            Parsed::Stop => {
                                self.state = State::Opaque;
                                return;
                            }
                        }
                    } else {
                        let before = self.head.len();
                        if !self.keep_partial(data) {
                            return;
                        }
                        let head = std::mem::take(&mut self.head);
                        let parsed = self.parse(&head, conn);
                        self.head = head;
                        match parsed {
                            // The earlier bytes alone were partial: the head ends in `data`.
                            Parsed::Complete(n) => {
                                self.head.clear();
                                n.saturating_sub(before)
                            }
                            Parsed::Partial => return,
                            Parsed::Stop => {
                                self.head = Vec::new();
                                self.state = State::Opaque;
                                return;
                            }
                        }
                    };
                    data = data.get(used..).unwrap_or_default();
                }
                State::Length(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.state = if take == n {
                        State::Idle
                    } else {
                        State::Length(n - take)
                    };
                }
                State::Chunked(c) => match feed_chunked(c, data) {
                    ChunkStep::More(c) => {
                        self.state = State::Chunked(c);
                        return;
                    }
                    ChunkStep::Done(n) => {
                        self.state = State::Idle;
                        data = &data[n..];
                    }
                    ChunkStep::Bad => {
                        self.state = State::Opaque;
                        return;
                    }
                },
            }
        }
    }

    /// Appends partial head bytes; past the size hyper allows (it answers 431), stops
    /// following. Returns whether still following.
    fn keep_partial(&mut self, data: &[u8]) -> bool {
        if self.head.len() + data.len() > self.max_head_bytes.saturating_add(1024) {
            self.head = Vec::new();
            self.state = State::Opaque;
            return false;
        }
        self.head.extend_from_slice(data);
        true
    }

    fn parse(&mut self, bytes: &[u8], conn: &ConnGuard) -> Parsed {
        if let Some(n) = plain_head(bytes) {
            self.heads += 1;
            self.state = State::Idle;
            return Parsed::Complete(n);
        }
        // Uninitialised slots: no 3 KiB memset per request head.
        let mut on_stack =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; DEFAULT_MAX_HEADERS];
        let mut on_heap: Vec<MaybeUninit<httparse::Header<'_>>>;
        let headers = if self.max_headers <= on_stack.len() {
            &mut on_stack[..]
        } else {
            on_heap = (0..self.max_headers)
                .map(|_| MaybeUninit::uninit())
                .collect();
            &mut on_heap[..]
        };
        let mut req = httparse::Request::new(&mut []);
        let n = match req.parse_with_uninit_headers(bytes, headers) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::Stop,
        };
        let head = self.heads;
        self.heads += 1;
        let (mut lengths, mut te, mut length, mut chunked, mut upgrade) =
            (0u32, false, None, false, false);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                lengths += 1;
                length = std::str::from_utf8(h.value)
                    .ok()
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = true;
                // As hyper: the last line decides, and chunked must be the last coding.
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        let bad = if te && lengths > 0 {
            Some(FramingError::LengthAndChunked)
        } else if lengths > 1 {
            Some(FramingError::DuplicateLength)
        } else {
            None
        };
        self.state = if let Some(why) = bad {
            conn.record(head, why);
            // The connection ends with this request.
            State::Opaque
        } else if upgrade || req.method == Some("CONNECT") {
            State::Opaque
        } else if te {
            if chunked && req.version == Some(1) {
                State::Chunked(Chunk::SizeStart)
            } else {
                State::Opaque
            }
        } else {
            match (lengths, length) {
                (0, _) | (_, Some(0)) => State::Idle,
                (_, Some(n)) => State::Length(n),
                (_, None) => State::Opaque,
            }
        };
        Parsed::Complete(n)
    }
}

/// The fast path of [`Scanner::parse`], for the usual request: a complete head that is
/// not `CONNECT` and has no line starting with `Content-Length`, `Transfer-Encoding` or
/// `Upgrade` (in any case), so no body and nothing to check follows it. Returns the
/// head's length (up to and including its empty line); `None` leaves the head to
/// httparse, which then decides everything as before.
///
/// A name is matched as a line prefix, whatever follows it, so no spelling hyper could
/// read as one of the three slips through; a false match only costs the slow path. A
/// head hyper will refuse (a bad line, too many headers) may pass as plain: hyper then
/// answers 400 or 431 and closes the connection, so nothing after it is ever read.
fn plain_head(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"CONNECT") {
        return None;
    }
    // The request line: no header name to look for.
    let mut line = memchr::memchr(b'\n', bytes)? + 1;
    loop {
        let end = line + memchr::memchr(b'\n', &bytes[line..])?;
        let text = &bytes[line..end];
        if text.is_empty() || text == b"\r" {
            return Some(end + 1);
        }
        let names: &[u8] = match text[0] | 0x20 {
            b'c' => b"content-length",
            b't' => b"transfer-encoding",
            b'u' => b"upgrade",
            _ => b"",
        };
        if !names.is_empty()
            && text.len() >= names.len()
            && text[..names.len()].eq_ignore_ascii_case(names)
        {
            return None;
        }
        line = end + 1;
    }
}

/// A client connection's I/O with its [`Scanner`] and the slow-head timer.
pub struct Guarded<S> {
    inner: S,
    conn: Arc<ConnGuard>,
    scanner: Scanner,
    shared: Arc<Shared>,
    head_timeout: Duration,
    /// Armed while a head is partial.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    /// The head timer fired while a response was in progress: answer as soon as it ends.
    expired: bool,
    /// hyper wrote bytes it has not flushed yet.
    unflushed: bool,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, conn: Arc<ConnGuard>, shared: Arc<Shared>) -> Self {
        let (head_timeout, max_head_bytes, max_headers) = {
            let table = shared.table.load();
            (
                table.limits.header_read_timeout,
                table.limits.max_header_bytes,
                table.limits.max_headers,
            )
        };
        Guarded {
            inner,
            conn,
            scanner: Scanner::new(max_head_bytes, max_headers),
            shared,
            head_timeout,
            timer: None,
            armed: false,
            expired: false,
            unflushed: false,
        }
    }

    fn arm(&mut self) {
        let deadline = tokio::time::Instant::now() + self.head_timeout;
        match &mut self.timer {
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.armed = true;
        self.expired = false;
    }
}

/// The 408 the guard writes itself: JSON like every error of the proxy.
fn head_timeout_response() -> Vec<u8> {
    let id = crate::request_id::generate();
    let id = id.to_str().unwrap_or("-");
    let body = serde_json::json!({
        "error": "request head not received in time",
        "request_id": id,
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-request-id: {id}\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.armed {
            if let Some(t) = &mut this.timer {
                if t.as_mut().poll(cx).is_ready() {
                    this.armed = false;
                    this.expired = true;
                }
            }
        }
        // The head's time is up; answer only on a quiet connection (no response in
        // flight, nothing unflushed), else when the response in progress has gone.
        if this.expired && this.scanner.in_partial_head() && this.conn.idle() && !this.unflushed {
            this.expired = false;
            this.scanner.state = State::Opaque;
            this.shared.metrics.rejected("header_timeout");
            let resp = head_timeout_response();
            // Best effort: a few hundred bytes on a connection with nothing in flight.
            if let Poll::Ready(Ok(_)) = Pin::new(&mut this.inner).poll_write(cx, &resp) {
                let _ = Pin::new(&mut this.inner).poll_flush(cx);
                let _ = Pin::new(&mut this.inner).poll_shutdown(cx);
            }
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received in time",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let (was_partial, heads) = (this.scanner.in_partial_head(), this.scanner.heads);
        this.scanner.feed(&buf.filled()[before..], &this.conn);
        // A head that ended in this read and a next one that began in it: a new clock.
        let same_head = was_partial && this.scanner.heads == heads;
        match (same_head, this.scanner.in_partial_head()) {
            (_, false) => {
                this.armed = false;
                this.expired = false;
            }
            (false, true) => this.arm(),
            // Still the same head: its clock keeps running.
            (true, true) => {}
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.unflushed |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.unflushed |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.unflushed = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> (Scanner, ConnGuard) {
        let conn = ConnGuard::default();
        let mut s = Scanner::new(32 * 1024, 100);
        for c in chunks {
            s.feed(c, &conn);
        }
        (s, conn)
    }

    fn verdicts(conn: &ConnGuard, n: usize) -> Vec<Option<FramingError>> {
        (0..n).map(|_| conn.next_request()).collect()
    }

    #[test]
    fn counts_heads_across_bodies_and_pipelining() {
        let wire: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n\
POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\ntrailer: t\r\n\r\n\
POST /c HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        // Whole, and split at every byte: the same verdicts.
        for split in 0..=wire.len() {
            let (s, conn) = scan(&[&wire[..split], &wire[split..]]);
            assert_eq!(s.heads, 4, "split at {split}");
            assert_eq!(
                verdicts(&conn, 4),
                [None, None, None, Some(FramingError::LengthAndChunked)],
                "split at {split}"
            );
            assert_eq!(s.state, State::Opaque);
        }
        let (s, _) = scan(&wire.chunks(1).collect::<Vec<_>>());
        assert_eq!(s.heads, 4);
    }

    #[test]
    fn flags_length_with_chunked_in_either_order_and_duplicate_lengths() {
        for (head, why) in [
            (
                "content-length: 4\r\ntransfer-encoding: chunked\r\n",
                FramingError::LengthAndChunked,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                FramingError::LengthAndChunked,
            ),
            (
                "content-length: 4\r\ncontent-length: 4\r\n",
                FramingError::DuplicateLength,
            ),
            (
                "CONTENT-LENGTH: 4\r\ncontent-length: 5\r\n",
                FramingError::DuplicateLength,
            ),
        ] {
            let wire = format!("POST / HTTP/1.1\r\nhost: x\r\n{head}\r\n");
            let (_, conn) = scan(&[wire.as_bytes()]);
            assert_eq!(verdicts(&conn, 1), [Some(why)], "{head}");
        }
    }

    #[test]
    fn a_partial_head_stays_partial_until_its_end() {
        let (s, _) = scan(&[b"GET / HTTP/1.1\r\nhost: x\r\n"]);
        assert!(s.in_partial_head());
        let (s, _) = scan(&[b"\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n", b"\r\n"]);
        assert!(!s.in_partial_head());
        assert_eq!(s.heads, 1);
        // A body in progress is not a head.
        let (s, _) = scan(&[b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc"]);
        assert_eq!(s.state, State::Length(7));
    }

    #[test]
    fn stops_following_what_it_cannot_frame() {
        for wire in [
            &b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"[..],
            b"CONNECT x:443 HTTP/1.1\r\nhost: x\r\n\r\n",
            // A bad line that could be a length goes to httparse, which refuses it.
            b"POST / HTTP/1.1\r\ncontent-length 5\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let (s, conn) = scan(&[wire]);
            assert_eq!(s.state, State::Opaque, "{}", String::from_utf8_lossy(wire));
            assert_eq!(verdicts(&conn, 1), [None]);
        }
        // A head larger than hyper allows (431 from hyper): stop, keep nothing.
        let conn = ConnGuard::default();
        let mut s = Scanner::new(1024, 100);
        s.feed(b"GET / HTTP/1.1\r\n", &conn);
        for _ in 0..100 {
            s.feed(
                b"x-filler: 0123456789012345678901234567890123456789\r\n",
                &conn,
            );
        }
        assert_eq!(s.state, State::Opaque);
        assert!(s.head.capacity() == 0);
    }

    /// httparse's reading of a head, for the fast path to be checked against.
    fn reference(head: &[u8]) -> Result<Option<(usize, bool)>, httparse::Error> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        Ok(match req.parse(head)? {
            httparse::Status::Partial => None,
            httparse::Status::Complete(n) => {
                let framed = req.method == Some("CONNECT")
                    || req.headers.iter().any(|h| {
                        ["content-length", "transfer-encoding", "upgrade"]
                            .iter()
                            .any(|name| h.name.eq_ignore_ascii_case(name))
                    });
                Some((n, framed))
            }
        })
    }

    #[test]
    fn the_fast_path_takes_only_heads_httparse_finds_plain_or_refuses() {
        let request_lines = [
            "GET / HTTP/1.1",
            "POST /a?b=c HTTP/1.1",
            "CONNECT x:443 HTTP/1.1",
            "get / HTTP/1.0",
        ];
        let header_lines = [
            "host: x",
            "Content-Length: 5",
            "CONTENT-LENGTH:0",
            "content-length : 5",
            "content-lengthy: 1",
            "contents: 1",
            "Transfer-Encoding: chunked",
            "tRANSFER-encoding: gzip",
            "Upgrade: websocket",
            "upgrade:",
            "x-upgrade: 1",
            "te: trailers",
            "Connection: upgrade",
            "bad header",
            " content-length: 5",
            "",
        ];
        let mut plain = 0;
        for request in request_lines {
            for a in header_lines {
                for b in header_lines {
                    for c in header_lines {
                        for eol in ["\r\n", "\n"] {
                            let head = format!("{request}{eol}{a}{eol}{b}{eol}{c}{eol}{eol}");
                            let head = head.as_bytes();
                            let Some(n) = plain_head(head) else { continue };
                            plain += 1;
                            let shown = String::from_utf8_lossy(head);
                            match reference(head) {
                                Err(_) => {}
                                Ok(Some((m, framed))) => {
                                    assert_eq!(n, m, "{shown:?}");
                                    assert!(!framed, "{shown:?}");
                                }
                                Ok(None) => panic!("complete for the fast path only: {shown:?}"),
                            }
                        }
                    }
                }
            }
        }
        assert!(plain > 1000, "the fast path is taken ({plain} heads)");
        let usual = b"GET /api/content/top HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET";
        assert_eq!(plain_head(usual), Some(usual.len() - 3));
        // Incomplete: left to the slow path, which keeps it as a partial head.
        assert_eq!(plain_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn more_headers_than_the_stack_holds_when_configured() {
        let filler: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
        let wire = format!(
            "POST / HTTP/1.1\r\n{filler}content-length: 1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let conn = ConnGuard::default();
        let mut s = Scanner::new(32 * 1024, 200);
        s.feed(wire.as_bytes(), &conn);
        assert_eq!(s.heads, 1);
        assert_eq!(verdicts(&conn, 1), [Some(FramingError::LengthAndChunked)]);
        // With the default limit the head is over hyper's count (431): not followed.
        let (s, _) = scan(&[wire.as_bytes()]);
        assert_eq!(s.state, State::Opaque);
    }

    #[test]
    fn chunk_sizes_that_overflow_are_refused() {
        assert!(matches!(
            feed_chunked(Chunk::SizeStart, b"fffffffffffffffff\r\n"),
            ChunkStep::Bad
        ));
        assert!(matches!(
            feed_chunked(Chunk::SizeStart, b"3\r\nabc\r\n0\r\n\r\nGET"),
            ChunkStep::Done(13)
        ));
    }
}
