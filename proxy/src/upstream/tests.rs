//! How often an upstream connection's task runs per request: the patched hyper
//! (docs/decisions/0004-hyper-patch.md) must not be woken once more after each response
//! body has been read.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
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
