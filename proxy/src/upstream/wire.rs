//! The exchange for requests without a body: an HTTP/1.1 client that the requesting
//! connection's task drives itself, on pooled connections of its thread.
//!
//! hyper's client connection is a task of its own: a request crosses a channel to it and
//! the response comes back through a oneshot, so every exchange wakes a second task twice
//! and polls hyper's dispatcher on both sides (docs/decisions/0005-bodiless-exchange.md).
//! Here the client connection's task writes the request head, reads the response head and
//! streams the response body straight from the upstream socket. Requests with a body
//! (whose body may have to be written while the response is read) and upgrades go
//! through hyper (`upstream::send`).
//!
//! What this client does, matching hyper's where hyper has a rule:
//! - The request head: method, target (origin-form), `HTTP/1.1`, then the headers as
//!   given, less `Transfer-Encoding` (the request has no body to frame).
//! - The response head is parsed by httparse: at most [`MAX_HEADERS`] headers and
//!   [`MAX_HEAD`] bytes. Interim `1xx` responses are skipped; `101` is refused (upgrades
//!   never come here); an HTTP/1.0 response with `Transfer-Encoding` is refused.
//! - Body framing (RFC 9112 6.3): none for `HEAD`, `204` and `304`; chunked when
//!   `Transfer-Encoding` ends in `chunked` (trailers are passed on); read until close
//!   for another `Transfer-Encoding` or when neither header is present; otherwise
//!   `Content-Length`, whose repeated values must agree. A response with
//!   `Transfer-Encoding` loses its `Content-Length` header (HEAD, 204, 304 too).
//! - Keep-alive: HTTP/1.1 unless a `Connection` header says `close`; HTTP/1.0 only with
//!   `keep-alive`. A connection goes back to the pool only when its body was read to the
//!   end with no byte left over; a body dropped early drops its connection.
//! - A non-canonical reason phrase is not kept (the client gets the canonical one).

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Most response headers accepted (hyper's default too).
pub const MAX_HEADERS: usize = 100;
/// Headers ficus may add to a response on its way to the client (see `parse_head`).
const ADDED_HEADERS: usize = 12;
/// Largest response head (and trailer section) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Room made in the read buffer before a read, when less than a quarter of it is free;
/// doubled (up to [`MAX_READ_SIZE`]) each time a read fills all the room it was given.
const READ_SIZE: usize = 16 * 1024;
const MAX_READ_SIZE: usize = 256 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Why an exchange or a body failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("invalid response head: {0}")]
    Head(&'static str),
    #[error("invalid response head: {0}")]
    Parse(#[from] httparse::Error),
    #[error("response head over {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("connection closed before the response head")]
    Closed,
    #[error("connection closed before the response body ended")]
    Incomplete,
    #[error("invalid chunked body: {0}")]
    Chunked(&'static str),
}

/// A pooled connection: the socket, what was read and not yet used, the buffer the
/// request head is written from, and the request timer (see `upstream::Pooled`).
pub(crate) struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// Room to make for the next read (see [`READ_SIZE`]).
    read_size: usize,
    out: Vec<u8>,
    pub(super) timer: Pin<Box<Sleep>>,
}

/// The parsed response head and how its body is framed.
#[derive(Debug)]
pub(crate) struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// How an exchange failed.
pub(super) enum Failed {
    /// Not a byte of the request reached the connection: it may be sent again.
    Unsent(io::Error),
    /// The request was written (or partly), then the connection failed or closed before
    /// a byte of response came back: an idle connection the upstream was closing just
    /// then, typically. Only an idempotent request may be sent again (RFC 9110 9.2.2).
    Dropped(WireError),
    /// Anything else; the request must not be sent again.
    Error(WireError),
    /// No response head before the request's deadline.
    Timeout,
}

impl Conn {
    pub(super) fn new(io: TcpStream, timer: Pin<Box<Sleep>>) -> Self {
        Conn {
            io,
            buf: BytesMut::new(),
            read_size: READ_SIZE,
            out: Vec::new(),
            timer,
        }
    }

    /// Whether an idle connection can take a request: false once the upstream closed it
    /// or sent bytes nobody asked for. Reads only when the socket was reported readable
    /// (tokio clears that after a short read, so normally no syscall is made).
    pub(super) fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes `req`'s head and reads the response head (skipping interim responses),
    /// within the deadline the timer is set to.
    pub(super) async fn exchange<B>(&mut self, req: &Request<B>) -> Result<Head, Failed> {
        encode_head(req, &mut self.out);
        let Conn {
            io,
            buf,
            read_size,
            out,
            timer,
        } = self;
        let mut written = 0;
        let mut received = false;
        let method = req.method();
        std::future::poll_fn(|cx| {
            while written < out.len() {
                match Pin::new(&mut *io).poll_write(cx, &out[written..]) {
                    Poll::Ready(Ok(0)) => {
                        let e = io::Error::from(io::ErrorKind::WriteZero);
                        return Poll::Ready(Err(write_failed(written, e)));
                    }
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(write_failed(written, e))),
                    Poll::Pending => return timer.as_mut().poll(cx).map(|()| Err(Failed::Timeout)),
                }
            }
            loop {
                match parse_head(buf, method) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(Failed::Error(e))),
                }
                if buf.len() >= MAX_HEAD {
                    return Poll::Ready(Err(Failed::Error(WireError::HeadTooLarge)));
                }
                // Nothing of a response yet: a close or failure now may be a stale connection.
                let failed = |e: WireError| {
                    if received {
                        Failed::Error(e)
                    } else {
                        Failed::Dropped(e)
                    }
                };
                match poll_read(io, buf, read_size, cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(failed(WireError::Closed))),
                    Poll::Ready(Ok(_)) => received = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(failed(e.into()))),
                    Poll::Pending => return timer.as_mut().poll(cx).map(|()| Err(Failed::Timeout)),
                }
            }
        })
        .await
    }

    /// Turns the head into the response; returns the connection too when it can be
    /// pooled now (a body already read whole, or none), else the body keeps it.
    pub(super) fn respond(mut self, head: Head, pool: PoolSlot) -> (Response<Body>, Option<Conn>) {
        let Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        } = head;
        let (body, conn) = match framing {
            Framing::None => (Body::Full(None), Some(self)),
            Framing::Length(n) if n <= self.buf.len() as u64 => {
                let data = self.buf.split_to(n as usize).freeze();
                let data = (n > 0).then_some(data);
                (Body::Full(data), Some(self))
            }
            Framing::Length(n) => (
                Body::stream(self, Decoding::Length(n), keep_alive, pool),
                None,
            ),
            Framing::Chunked => (
                Body::stream(self, Decoding::Chunked(Chunk::Size), keep_alive, pool),
                None,
            ),
            Framing::Close => (Body::stream(self, Decoding::Close, false, pool), None),
        };
        let conn = conn.filter(|c| keep_alive && c.buf.is_empty());
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        (resp, conn)
    }
}

fn write_failed(written: usize, e: io::Error) -> Failed {
    if written == 0 {
        Failed::Unsent(e)
    } else {
        Failed::Dropped(e.into())
    }
}

/// Reads into `buf`, making room first when little is left (see [`READ_SIZE`]).
fn poll_read(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    read_size: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < *read_size / 4 {
        buf.reserve(*read_size);
    }
    let room = buf.capacity() - buf.len();
    let n = ready!(tokio_util::io::poll_read_buf(Pin::new(io), cx, buf))?;
    if n == room {
        *read_size = (*read_size * 2).min(MAX_READ_SIZE);
    }
    Poll::Ready(Ok(n))
}

/// The request head, written into `out` (cleared first).
fn encode_head<B>(req: &Request<B>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let uri = req.uri();
    match (uri.authority(), uri.path_and_query()) {
        (None, Some(pq)) => out.extend_from_slice(pq.as_str().as_bytes()),
        (None, None) => out.push(b'/'),
        // Absolute-form, as given (hyper's client writes it so too).
        (Some(_), _) => out.extend_from_slice(uri.to_string().as_bytes()),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a response head at the start of `buf` and consumes it; `None` when more bytes
/// are needed. Interim (1xx) responses are consumed and skipped.
fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, WireError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        // Offsets of each header's name and value in the head (it is at most 64 KiB).
        let mut at = [(0u16, 0u16, 0u16, 0u16); MAX_HEADERS];
        let (len, code, version, count) =
            {
                let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
                let mut res = httparse::Response::new(&mut []);
                let len = match httparse::ParserConfig::default()
                    .parse_response_with_uninit_headers(&mut res, buf, &mut headers)?
                {
                    httparse::Status::Complete(len) => len,
                    httparse::Status::Partial => return Ok(None),
                };
                if len > MAX_HEAD {
                    return Err(WireError::HeadTooLarge);
                }
                let (Some(code), Some(version)) = (res.code, res.version) else {
                    return Err(WireError::Head("no status line"));
                };
                let base = buf.as_ptr() as usize;
                for (slot, h) in at.iter_mut().zip(res.headers.iter()) {
                    let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u16;
                    *slot = (
                        offset(h.name.as_bytes()),
                        h.name.len() as u16,
                        offset(h.value),
                        h.value.len() as u16,
                    );
                }
                (len, code, version, res.headers.len())
            };
        let head = buf.split_to(len).freeze();
        let status = StatusCode::from_u16(code).map_err(|_| WireError::Head("bad status code"))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(WireError::Head(
                    "101 to a request that did not ask to upgrade",
                ));
            }
            continue;
        }
        let version = if version == 1 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let mut keep_alive = version == Version::HTTP_11;
        let mut close = false;
        let mut length: Option<u64> = None;
        let mut chunked: Option<bool> = None;
        // Room for the headers ficus adds to a response (`Via`, the hardening headers,
        // `X-Request-Id`, ...): growing the map later would rehash every entry.
        let mut headers = HeaderMap::with_capacity(count + ADDED_HEADERS);
        for &(n, nl, v, vl) in &at[..count] {
            let (n, v) = (n as usize, v as usize);
            let name = HeaderName::from_bytes(&head[n..n + nl as usize])
                .map_err(|_| WireError::Head("bad header name"))?;
            let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl as usize))
                .map_err(|_| WireError::Head("bad header value"))?;
            if name == header::CONTENT_LENGTH {
                let n = parse_length(value.as_bytes())?;
                if length.is_some_and(|l| l != n) {
                    return Err(WireError::Head("differing Content-Length values"));
                }
                length = Some(n);
            } else if name == header::TRANSFER_ENCODING {
                // Chunked only if it is the last coding of the last header.
                chunked = Some(last_token_is(value.as_bytes(), b"chunked"));
            } else if name == header::CONNECTION {
                for token in value.as_bytes().split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            headers.append(name, value);
        }
        if close {
            keep_alive = false;
        }
        if chunked.is_some() {
            // Transfer-Encoding overrides Content-Length, which is not passed on (RFC 9112
            // 6.3), whatever the framing: HEAD, 204 and 304 answers included.
            headers.remove(header::CONTENT_LENGTH);
        }
        let framing = if *method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::None
        } else if let Some(chunked) = chunked {
            if version == Version::HTTP_10 {
                return Err(WireError::Head("Transfer-Encoding in an HTTP/1.0 response"));
            }
            if chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// A response read whole from bytes (see [`read_response`]).
#[derive(Debug)]
pub struct WholeResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    /// Whether the connection could carry another exchange afterwards.
    pub reusable: bool,
}

/// Reads a response to a `method` request from `raw` as the client does (head, then the
/// body by its framing), for tests and the `wire_response` fuzz target. `Ok(None)`: `raw`
/// ends before the response does (a read-to-close body ends with `raw`).
pub fn read_response(raw: &[u8], method: &Method) -> Result<Option<WholeResponse>, WireError> {
    let mut buf = BytesMut::from(raw);
    let Some(head) = parse_head(&mut buf, method)? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    let mut trailers = None;
    let mut reusable = head.keep_alive;
    match head.framing {
        Framing::None => {}
        Framing::Length(n) => {
            if (buf.len() as u64) < n {
                return Ok(None);
            }
            body.extend_from_slice(&buf.split_to(n as usize));
        }
        Framing::Chunked => {
            let mut state = Chunk::Size;
            loop {
                match decode_chunk(&mut state, &mut buf)? {
                    Step::More => return Ok(None),
                    Step::Again => {}
                    Step::Data(d) => body.extend_from_slice(&d),
                    Step::End(t) => {
                        trailers = t;
                        break;
                    }
                }
            }
        }
        Framing::Close => {
            body.extend_from_slice(&buf.split());
            reusable = false;
        }
    }
    Ok(Some(WholeResponse {
        status: head.status,
        headers: head.headers,
        body,
        trailers,
        reusable: reusable && buf.is_empty(),
    }))
}

/// A `Content-Length` value: digits, or a list of equal values ("5, 5").
fn parse_length(value: &[u8]) -> Result<u64, WireError> {
    let mut found: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(WireError::Head("invalid Content-Length"));
        }
        let n = std::str::from_utf8(part)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(WireError::Head("invalid Content-Length"))?;
        if found.is_some_and(|f| f != n) {
            return Err(WireError::Head("differing Content-Length values"));
        }
        found = Some(n);
    }
    found.ok_or(WireError::Head("invalid Content-Length"))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Where a streamed body returns its connection: the pool key and its bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSlot {
    pub key: u64,
    pub max_idle: usize,
}

/// A response body read by this client.
pub enum Body {
    /// Read whole with the head (or empty); its connection is already back in the pool.
    Full(Option<Bytes>),
    /// Still arriving; it holds the connection (boxed: rarer, and larger).
    Stream(Box<Stream>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(b) => f
                .debug_tuple("Full")
                .field(&b.as_ref().map(Bytes::len))
                .finish(),
            Body::Stream(s) => f.debug_tuple("Stream").field(&s.decoding).finish(),
        }
    }
}

pub struct Stream {
    /// `None` once the body ended (the connection was pooled or dropped).
    conn: Option<Conn>,
    decoding: Decoding,
    keep_alive: bool,
    pool: PoolSlot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    /// Bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the upstream closes.
    Close,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Bytes of the current chunk still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers, then the final CRLF.
    Trailers,
}

impl Body {
    fn stream(conn: Conn, decoding: Decoding, keep_alive: bool, pool: PoolSlot) -> Self {
        Body::Stream(Box::new(Stream {
            conn: Some(conn),
            decoding,
            keep_alive,
            pool,
        }))
    }
}

impl Stream {
    /// The body ended: pool the connection if it may be reused.
    fn finish(&mut self) {
        self.decoding = Decoding::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.buf.is_empty() {
                super::pool::checkin_wire(self.pool, conn);
            }
        }
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let buf = &mut conn.buf;
            // Decode what is buffered; `need` says whether more must be read first.
            let need = match &mut self.decoding {
                Decoding::Done => return Poll::Ready(None),
                Decoding::Length(rest) => {
                    if buf.is_empty() {
                        true
                    } else {
                        let n = (*rest).min(buf.len() as u64);
                        let data = buf.split_to(n as usize).freeze();
                        *rest -= n;
                        if *rest == 0 {
                            self.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Decoding::Close => {
                    if buf.is_empty() {
                        true
                    } else {
                        return Poll::Ready(Some(Ok(Frame::data(buf.split().freeze()))));
                    }
                }
                Decoding::Chunked(state) => match decode_chunk(state, buf) {
                    Err(e) => return Poll::Ready(Some(Err(e))),
                    Ok(Step::More) => true,
                    Ok(Step::Again) => false,
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::End(trailers)) => {
                        self.finish();
                        return match trailers {
                            Some(t) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                            None => Poll::Ready(None),
                        };
                    }
                },
            };
            if need {
                match ready!(poll_read(
                    &mut conn.io,
                    &mut conn.buf,
                    &mut conn.read_size,
                    cx
                )) {
                    Ok(0) if self.decoding == Decoding::Close => {
                        self.conn = None;
                        self.decoding = Decoding::Done;
                        return Poll::Ready(None);
                    }
                    Ok(0) => {
                        self.conn = None;
                        self.decoding = Decoding::Done;
                        return Poll::Ready(Some(Err(WireError::Incomplete)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.conn = None;
                        self.decoding = Decoding::Done;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
            }
        }
    }
}

/// One step of the chunked decoder over what is buffered.
#[derive(Debug, PartialEq)]
enum Step {
    /// More bytes must be read.
    More,
    /// The state moved on: decode again.
    Again,
    Data(Bytes),
    /// The body ended, with its trailers if any.
    End(Option<HeaderMap>),
}

fn decode_chunk(state: &mut Chunk, buf: &mut BytesMut) -> Result<Step, WireError> {
    match *state {
        Chunk::Size => match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete((used, size))) => {
                buf.advance(used);
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
                Ok(Step::Again)
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_CHUNK_LINE => Ok(Step::More),
            Ok(httparse::Status::Partial) => Err(WireError::Chunked("chunk-size line too long")),
            Err(_) => Err(WireError::Chunked("bad chunk-size line")),
        },
        Chunk::Data(rest) => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            let n = rest.min(buf.len() as u64);
            let data = buf.split_to(n as usize).freeze();
            *state = if n == rest {
                Chunk::DataEnd
            } else {
                Chunk::Data(rest - n)
            };
            Ok(Step::Data(data))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(Step::More);
            }
            if &buf[..2] != b"\r\n" {
                return Err(WireError::Chunked("no CRLF after chunk data"));
            }
            buf.advance(2);
            *state = Chunk::Size;
            Ok(Step::Again)
        }
        Chunk::Trailers => {
            if buf.starts_with(b"\r\n") {
                buf.advance(2);
                return Ok(Step::End(None));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            match httparse::parse_headers(buf, &mut headers) {
                Ok(httparse::Status::Complete((used, parsed))) => {
                    let mut trailers = HeaderMap::with_capacity(parsed.len());
                    for h in parsed {
                        let name = HeaderName::from_bytes(h.name.as_bytes())
                            .map_err(|_| WireError::Chunked("bad trailer name"))?;
                        let value = HeaderValue::from_bytes(h.value)
                            .map_err(|_| WireError::Chunked("bad trailer value"))?;
                        trailers.append(name, value);
                    }
                    buf.advance(used);
                    Ok(Step::End(Some(trailers)))
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(Step::More),
                Ok(httparse::Status::Partial) => Err(WireError::Chunked("trailers too large")),
                Err(_) => Err(WireError::Chunked("bad trailers")),
            }
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = WireError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            Body::Stream(s) => s.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.decoding == Decoding::Done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(s) => match s.decoding {
                Decoding::Length(n) => {
                    // What is buffered belongs to this body too, but `n` already counts it.
                    SizeHint::with_exact(n)
                }
                Decoding::Done => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
