//! Proxy semantics: headers, bodies, protocols, failures.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn one_upstream() -> (TestUpstream, TestProxy) {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy)], ""));
    (legacy, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_and_forwarding_headers() {
    let (legacy, proxy) = one_upstream().await;
    let req = Request::get(proxy.url("/x"))
        .header("connection", "x-hop-secret")
        .header("x-hop-secret", "must not pass")
        .header("keep-alive", "timeout=1")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-end-to-end", "kept")
        .header("host", "shop.example")
        .body(Full::default())
        .unwrap();
    let got = send(&client(), req).await;
    assert_eq!(got.status, 200);
    let seen = legacy.seen().pop().unwrap();
    let h = &seen.headers;
    for gone in [
        "x-hop-secret",
        "keep-alive",
        "proxy-authorization",
        "expect",
        "upgrade",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream");
    }
    assert_eq!(h["te"], "trailers");
    assert_eq!(h["x-end-to-end"], "kept");
    assert_eq!(h["host"], "shop.example");
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "spoofed XFF from an untrusted peer is replaced"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.example");
    assert_eq!(
        h["forwarded"],
        "for=127.0.0.1;proto=http;host=\"shop.example\""
    );
    assert_eq!(h["via"], "1.1 ficus");
    // Request id generated, sent upstream and returned.
    let id = h["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(got.headers["x-request-id"], id.as_str());
    // Response hop-by-hop headers from the upstream are removed too.
    assert!(!got.headers.contains_key("keep-alive"));
    assert!(!got.headers.contains_key("x-upstream-hop"));
    assert_eq!(got.headers["via"], "1.1 ficus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_request_id_is_kept() {
    let (legacy, proxy) = one_upstream().await;
    let got = send(
        &client(),
        Request::get(proxy.url("/x"))
            .header("x-request-id", "abc-123")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(got.headers["x-request-id"], "abc-123");
    assert_eq!(legacy.seen()[0].headers["x-request-id"], "abc-123");
    // An unacceptable one (spaces) is replaced.
    let got = send(
        &client(),
        Request::get(proxy.url("/x"))
            .header("x-request-id", "a b")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(got.headers["x-request-id"].len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_client() {
    let (legacy, proxy) = one_upstream().await;
    let got = get(&h2_client(), &proxy.url("/h2?x=1")).await;
    assert_eq!(got.status, 200);
    let seen = legacy.seen().pop().unwrap();
    assert_eq!(
        seen.version,
        http::Version::HTTP_11,
        "upstream side is HTTP/1.1"
    );
    assert_eq!(seen.uri, "/h2?x=1", "absolute-form URI becomes origin-form");
    assert_eq!(
        seen.headers["host"],
        proxy.proxy.to_string().as_str(),
        ":authority becomes Host"
    );
    assert_eq!(seen.headers["via"], "2 ficus");
    // Regression: normalising the path of an HTTP/2 request dropped its authority, and
    // with it the Host the upstream receives.
    let got = get(&h2_client(), &proxy.url("/a//./h2?x=1")).await;
    assert_eq!(got.status, 200);
    let seen = legacy.seen().pop().unwrap();
    assert_eq!(seen.uri, "/a/h2?x=1");
    assert_eq!(seen.headers["host"], proxy.proxy.to_string().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways_with_bounded_memory() {
    let (legacy, proxy) = one_upstream().await;
    let c = client();
    const SIZE: usize = 256 * 1024 * 1024;
    // Download.
    let resp = c
        .request(
            Request::get(proxy.url(&format!("/big/{SIZE}")))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(f) = body.frame().await {
        n += f.unwrap().into_data().map(|d| d.len()).unwrap_or(0);
    }
    assert_eq!(n, SIZE);
    // Upload, streamed from a generator without Content-Length (chunked).
    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let stream = futures_util::stream::iter(
        (0..SIZE / chunk.len())
            .map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    );
    let upload_client: hyper_util::client::legacy::Client<_, StreamBody<_>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let resp = upload_client
        .request(
            Request::post(proxy.url("/upload"))
                .body(StreamBody::new(stream))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(legacy.seen().pop().unwrap().body_len, SIZE);
    // 512 MiB went through; the proxy's peak RSS stays far below one body.
    let peak_mib = proxy.rss_peak_kib() / 1024;
    assert!(peak_mib < 64, "proxy peak RSS {peak_mib} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_502_and_timeout_is_504_with_json() {
    let legacy = TestUpstream::start("legacy").await;
    // A port with nothing listening: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = TestProxy::start(&format!(
        "{}\n[upstreams.dead]\nurl = \"http://{dead}\"\n\n[[routes]]\nname = \"dead\"\npath = \"/dead\"\nmode = \"extracted\"\nextracted = \"dead\"\n",
        routes_toml(&[("legacy", &legacy)], "")
            .replace("request_timeout_ms = 2000", "request_timeout_ms = 300")
    ));
    let c = client();
    let got = get(&c, &proxy.url("/dead")).await;
    assert_eq!(got.status, 502);
    assert_eq!(got.headers["content-type"], "application/json");
    let body = got.json();
    assert_eq!(body["error"], "upstream unavailable");
    assert_eq!(
        body["request_id"],
        got.headers["x-request-id"].to_str().unwrap()
    );

    let got = get(&c, &proxy.url("/slow/3000")).await;
    assert_eq!(got.status, 504);
    assert_eq!(got.json()["error"], "upstream timed out");

    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert_eq!(
        counter(
            &m,
            r#"ficus_upstream_errors_total{kind="connect",upstream="dead"}"#
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        counter(
            &m,
            r#"ficus_upstream_errors_total{kind="timeout",upstream="legacy"}"#
        ),
        1.0
    );
    // The proxy is still fine afterwards.
    assert_eq!(get(&c, &proxy.url("/ok")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_style_upgrade_passes_through() {
    let (_legacy, proxy) = one_upstream().await;
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    s.write_all(b"ping through the tunnel").await.unwrap();
    let mut buf = [0u8; 23];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping through the tunnel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_and_trailers() {
    let (legacy, proxy) = one_upstream().await;
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 25];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let mut resp = vec![0u8; 12];
    s.read_exact(&mut resp).await.unwrap();
    assert_eq!(&resp, b"HTTP/1.1 200");
    assert_eq!(legacy.seen()[0].body_len, 5);
    assert!(!legacy.seen()[0].headers.contains_key("expect"));

    // Trailers from the upstream reach a client that accepts them.
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).await.unwrap();
    let lower = all.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{all}");
    assert!(lower.contains("\r\nx-checksum: abc123\r\n"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_not_a_crash() {
    let (_legacy, proxy) = one_upstream().await;
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        .await
        .unwrap();
    let mut all = String::new();
    let _ = s.read_to_string(&mut all).await;
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    let _ = s.read_to_string(&mut all).await;
    assert!(all.is_empty() || all.starts_with("HTTP/1.1 400"), "{all}");
    assert_eq!(get(&client(), &proxy.url("/still-up")).await.status, 200);
}

/// The upstream connection a response came on (the test upstream names it in its JSON).
fn upstream_conn(got: &Got) -> u64 {
    got.json()["conn"]
        .as_u64()
        .expect("a default upstream answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_return_to_the_pool_only_after_a_whole_response() {
    let legacy = TestUpstream::start("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes_toml(&[("legacy", &legacy)], "")).unwrap();
    // One worker: every request uses the same thread's pool.
    let proxy = TestProxy::spawn(&config, &["--threads", "1"]);
    let c = client();
    let first = upstream_conn(&get(&c, &proxy.url("/x")).await);

    // A chunked response (its end is only known from the last chunk), a HEAD (no body at
    // all) and a fixed-length one: the connection is reused after each.
    let got = get(&c, &proxy.url("/trailers")).await;
    assert_eq!(&got.body[..], b"body");
    let head = send(
        &c,
        Request::head(proxy.url("/x"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(get(&c, &proxy.url("/big/100000")).await.body.len(), 100_000);
    assert_eq!(upstream_conn(&get(&c, &proxy.url("/x")).await), first);
    let peers: Vec<u16> = legacy.seen().iter().map(|s| s.peer.port()).collect();
    assert!(
        peers.iter().all(|&p| u64::from(p) == first),
        "one upstream connection for sequential requests: {peers:?}"
    );

    // A client that leaves in the middle of a body: that connection is never reused (the
    // rest of its body would be read as the next response).
    let resp = c
        .request(
            Request::get(proxy.url("/big/200000000"))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    let abandoned = legacy.seen().last().unwrap().peer.port();
    assert_eq!(
        u64::from(abandoned),
        first,
        "the pooled connection was used"
    );
    let after = get(&c, &proxy.url("/x")).await;
    assert_eq!(after.status, 200);
    assert_ne!(upstream_conn(&after), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_upstream_closed_is_replaced_without_an_error() {
    // An upstream that answers one request per connection with keep-alive framing, then
    // closes the connection while the proxy holds it idle.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("{{\"conn\": {}}}", peer.port());
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(resp.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
                drop(stream);
                let _ = closed_tx.send(peer.port());
            });
        }
    });
    let routes = format!(
        "legacy = \"legacy\"\n\n[listen]\nproxy = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n[upstreams.legacy]\nurl = \"http://{addr}\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::spawn(&config, &["--threads", "1"]);
    let c = client();
    for round in 0..5 {
        let got = get(&c, &proxy.url("/x")).await;
        assert_eq!(got.status, 200, "round {round}: {:?}", got.body);
        let conn = upstream_conn(&got);
        // The upstream has closed that connection before the next request is sent.
        assert_eq!(u64::from(closed.recv().await.unwrap()), conn);
    }
    let m = String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
    for kind in ["connect", "connect_timeout", "protocol", "timeout"] {
        let name = format!(r#"ficus_upstream_errors_total{{kind="{kind}",upstream="legacy"}}"#);
        assert_eq!(counter(&m, &name), 0.0, "{m}");
    }
}

/// Reads one response (head and a `content-length` body) from a raw connection.
async fn read_response(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {text}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_and_busy_ones_are_not() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy)],
        "[limits]\nidle_timeout_ms = 300\nheader_read_timeout_ms = 200\n",
    ));
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    // Requests that take longer than the idle timeout are not idle time.
    for _ in 0..2 {
        s.write_all(b"GET /slow/700 HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let got = read_response(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
    // Then nothing: the proxy closes the connection (EOF, no bytes).
    let mut rest = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
}
