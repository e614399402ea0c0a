//! How often an upstream connection's task runs per request: the patched hyper
//! (docs/decisions/0004-hyper-patch.md) must not be woken once more after each response
//! body has been read.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::*;
use crate::server::body::UpstreamBody;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Counts the polls of the future it wraps.
struct Polls<F> {
    inner: Pin<Box<F>>,
    count: Arc<AtomicUsize>,
}

impl<F: Future> Future for Polls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.as_mut().poll(cx)
    }
}

/// A keep-alive origin on 127.0.0.1 that answers every request head with one write of a
/// fixed-length response.
async fn origin() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n) = sock.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                if sock.write_all(response).await.is_err() {
                    return;
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_pooled_connection_runs_twice_per_request() {
    let addr = origin().await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream))
        .await
        .unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    tokio::spawn(Polls {
        inner: Box::pin(conn),
        count: polls.clone(),
    });

    let exchange = async |sender: &mut http1::SendRequest<Empty<bytes::Bytes>>| {
        sender.ready().await.unwrap();
        let req = http::Request::get("/").body(Empty::new()).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        // Let every task that was woken run before the next request, as in the proxy,
        // where the next request comes later from the network (here a wake would
        // otherwise merge with the next request's).
        tokio::task::yield_now().await;
    };
    // Warm up: the connection's first polls set it up.
    for _ in 0..5 {
        exchange(&mut sender).await;
    }
    let before = polls.load(Ordering::Relaxed);
    const REQUESTS: usize = 200;
    for _ in 0..REQUESTS {
        exchange(&mut sender).await;
    }
    let per_request = (polls.load(Ordering::Relaxed) - before) as f64 / REQUESTS as f64;
    // One poll writes the request, one reads the response and hands over its body. Stock
    // hyper 1.12 runs the task a third time, woken by the body's reader after the end.
    assert!(
        per_request < 2.5,
        "{per_request:.2} polls of the upstream connection per request"
    );
}

/// What a scripted origin does with the `n`-th request (from 0) on a connection.
#[derive(Clone, Copy)]
enum Act {
    /// Writes the bytes and keeps the connection open.
    Reply(&'static [u8]),
    /// Writes the bytes, then closes.
    ReplyClose(&'static [u8]),
    /// Closes without answering.
    Close,
    /// Reads on and never answers.
    Silent,
}

/// Counters of a scripted origin.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// An origin on 127.0.0.1 that answers by `script(path, n)`, where `n` counts the
/// requests on the connection.
async fn scripted(script: fn(&str, usize) -> Act) -> (std::net::SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counters = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counters.connections.fetch_add(1, Ordering::Relaxed);
            let counters = counters.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut n = 0;
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                        match script(&path, n) {
                            Act::Reply(bytes) => {
                                if sock.write_all(bytes).await.is_err() {
                                    return;
                                }
                            }
                            Act::ReplyClose(bytes) => {
                                let _ = sock.write_all(bytes).await;
                                return;
                            }
                            Act::Close => return,
                            Act::Silent => {}
                        }
                        n += 1;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The upstream `up` of a table whose legacy upstream is `addr`.
fn upstream(addr: std::net::SocketAddr, extra: &str) -> Arc<crate::config::Upstream> {
    let text = format!(
        "legacy = \"up\"\n[listen]\nproxy = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         [upstreams.up]\nurl = \"http://{addr}\"\n{extra}\n"
    );
    let metrics = crate::metrics::Metrics::new();
    let table = crate::config::parse(std::path::Path::new("test.toml"), &text, &metrics).unwrap();
    table.upstreams[0].clone()
}

fn request(method: &str, path: &str) -> Request<UpstreamBody> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "origin")
        .body(UpstreamBody::Empty)
        .unwrap()
}

/// Sends a bodiless request through [`send`]: status, body, trailers.
async fn fetch(
    up: &crate::config::Upstream,
    method: &str,
    path: &str,
) -> Result<(u16, Vec<u8>, Option<http::HeaderMap>), UpstreamError> {
    let resp = send(up, request(method, path), std::time::Instant::now()).await?;
    let status = resp.status().as_u16();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    Ok((status, collected.to_bytes().to_vec(), trailers))
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

#[tokio::test]
async fn bodiless_exchanges_reuse_one_connection_for_every_framing() {
    let (addr, seen) = scripted(|path, _| match path {
        "/chunked" => Act::Reply(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n",
        ),
        "/head" => Act::Reply(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"),
        "/interim" => Act::Reply(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ),
        // Over the first read's 16 KiB: the body streams from the connection.
        "/big" => {
            static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            Act::Reply(BIG.get_or_init(|| {
                let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
                r.extend((0..100_000u32).map(|i| b'a' + (i % 26) as u8));
                r
            }))
        }
        _ => Act::Reply(HELLO),
    })
    .await;
    let up = upstream(addr, "");
    assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    let (status, body, trailers) = fetch(&up, "GET", "/chunked").await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"hello world"[..]));
    assert_eq!(trailers.unwrap()["x-sum"], "11");
    let (status, body, _) = fetch(&up, "HEAD", "/head").await.unwrap();
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(fetch(&up, "GET", "/interim").await.unwrap().0, 204);
    let (_, body, _) = fetch(&up, "GET", "/big").await.unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
    assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    assert_eq!(seen.requests.load(Ordering::Relaxed), 6);
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn connections_that_cannot_be_reused_are_not() {
    let (addr, seen) = scripted(|path, _| match path {
        "/close-delimited" => Act::ReplyClose(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        "/announced" => {
            Act::Reply(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        }
        "/http10" => Act::Reply(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        _ => Act::Reply(HELLO),
    })
    .await;
    let up = upstream(addr, "");
    assert_eq!(
        fetch(&up, "GET", "/close-delimited").await.unwrap().1,
        b"until the end"
    );
    assert_eq!(fetch(&up, "GET", "/announced").await.unwrap().1, b"ok");
    assert_eq!(fetch(&up, "GET", "/http10").await.unwrap().1, b"ok");
    assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    assert_eq!(seen.connections.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_costs_no_request() {
    // Each connection answers once and is then closed, without `Connection: close`.
    let (addr, seen) = scripted(|_, _| Act::ReplyClose(HELLO)).await;
    let up = upstream(addr, "");
    for _ in 0..10 {
        assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    }
    assert_eq!(seen.connections.load(Ordering::Relaxed), 10);
}

#[tokio::test]
async fn only_idempotent_requests_are_sent_again_after_a_dropped_connection() {
    // Each connection answers its first request and drops the second unanswered.
    let (addr, seen) = scripted(|_, n| {
        if n == 0 {
            Act::Reply(HELLO)
        } else {
            Act::Close
        }
    })
    .await;
    let up = upstream(addr, "");
    assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    // The pooled connection drops the GET: sent again on a new connection.
    assert_eq!(fetch(&up, "GET", "/").await.unwrap().1, b"hello");
    assert_eq!(seen.requests.load(Ordering::Relaxed), 3);
    // The new connection drops a bodiless POST: reported, not sent again.
    let err = fetch(&up, "POST", "/").await.unwrap_err();
    assert_eq!(err.kind(), "protocol");
    assert_eq!(seen.requests.load(Ordering::Relaxed), 4);
    assert_eq!(seen.connections.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_silent_upstream_times_out_and_a_bad_head_is_a_protocol_error() {
    let (addr, _) = scripted(|path, _| match path {
        "/silent" => Act::Silent,
        _ => Act::Reply(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"),
    })
    .await;
    let up = upstream(addr, "request_timeout_ms = 200");
    let err = fetch(&up, "GET", "/silent").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = fetch(&up, "GET", "/bad").await.unwrap_err();
    assert_eq!(err.kind(), "protocol", "{err}");
}
