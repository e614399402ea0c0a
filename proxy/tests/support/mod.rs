//! Test support: real upstream servers and a real `ficus` process, all on 127.0.0.1
//! with ephemeral ports. Everything shuts down on drop.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body_len: usize,
    pub peer: SocketAddr,
}

/// A real HTTP/1.1 server that records requests. Behaviour by path:
/// `/slow/{ms}` waits, `/big/{bytes}` streams that many bytes, `/echo` streams the body
/// back, `/trailers` answers with trailers, `/ws` accepts an upgrade and echoes bytes,
/// `/status/{code}` answers that status; anything else answers JSON naming the upstream.
pub struct TestUpstream {
    pub name: String,
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    /// Requests being answered now, and the most ever at once.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    pub max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

/// How a [`TestUpstream`] answers `/doc`-style requests (and, for `Hang`, everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// Never answers.
    Hang,
    /// `/doc` has a wrong score at /items/1/score.
    Broken,
    /// Not HTTP at all: closes the connection (new connections only).
    Garbage,
    /// Every request, on every connection, is answered 503 (after being recorded).
    Unavailable,
}

/// The `/doc` body: equal across upstreams except `generated_at` (and the Broken fault).
fn doc(broken: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let score2 = if broken { 0.75 } else { 0.25 };
    format!(
        r#"{{"id": 1, "items": [{{"id": 1, "score": 0.5}}, {{"id": 2, "score": {score2}}}], "generated_at": "{now}"}}"#
    )
}

impl TestUpstream {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::Normal));
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop, mut stopped) = oneshot::channel();
        let (name2, seen2) = (name.to_owned(), seen.clone());
        let (b2, f2, m2) = (behaviour.clone(), in_flight.clone(), max_in_flight.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = &mut stopped => return,
                };
                let (name, seen) = (name2.clone(), seen2.clone());
                let (b, f, m) = (b2.clone(), f2.clone(), m2.clone());
                tokio::spawn(async move {
                    if *b.lock().unwrap() == Behaviour::Garbage {
                        let mut stream = stream;
                        let _ = tokio::io::AsyncWriteExt::write_all(
                            &mut stream,
                            b"\x00\x01garbage\r\n\r\n",
                        )
                        .await;
                        return;
                    }
                    let svc = service_fn(move |req| {
                        let (name, seen, b, f, m) =
                            (name.clone(), seen.clone(), b.clone(), f.clone(), m.clone());
                        async move {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = f.fetch_add(1, SeqCst) + 1;
                            m.fetch_max(now, SeqCst);
                            let behaviour = *b.lock().unwrap();
                            let r = if behaviour == Behaviour::Hang {
                                seen.lock().unwrap().push(Seen {
                                    method: req.method().to_string(),
                                    uri: req.uri().to_string(),
                                    version: req.version(),
                                    headers: req.headers().clone(),
                                    body_len: 0,
                                    peer,
                                });
                                std::future::pending::<Result<Response<Body>, Infallible>>().await
                            } else {
                                let r =
                                    respond(req, name, seen, peer, behaviour == Behaviour::Broken)
                                        .await;
                                r.map(|mut resp| {
                                    if behaviour == Behaviour::Unavailable {
                                        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                                    }
                                    resp
                                })
                            };
                            f.fetch_sub(1, SeqCst);
                            r
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        TestUpstream {
            name: name.to_owned(),
            addr,
            seen,
            behaviour,
            in_flight,
            max_in_flight,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

async fn respond(
    mut req: Request<Incoming>,
    name: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    peer: SocketAddr,
    broken: bool,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut record = Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        version: req.version(),
        headers: req.headers().clone(),
        body_len: 0,
        peer,
    };
    let json = |extra: serde_json::Value| {
        let mut resp = Response::new(full(
            serde_json::json!({"upstream": name, "path": path, "conn": peer.port(), "extra": extra}).to_string(),
        ));
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        resp.headers_mut()
            .insert("x-upstream", name.parse().unwrap());
        resp
    };
    if path == "/ws" {
        seen.lock().unwrap().push(record);
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut resp = Response::new(full(""));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut()
            .insert("upgrade", "echo".parse().unwrap());
        resp.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return Ok(resp);
    }
    if path == "/echo" {
        seen.lock().unwrap().push(record);
        let mut resp = Response::new(req.into_body().boxed());
        resp.headers_mut()
            .insert("x-upstream", name.parse().unwrap());
        return Ok(resp);
    }
    // Drain the body, counting bytes without keeping them.
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map(|f| f.into_data()) {
            if let Ok(d) = data {
                record.body_len += d.len();
            }
        } else {
            break;
        }
    }
    seen.lock().unwrap().push(record);
    if path.starts_with("/doc") {
        let mut resp = Response::new(full(doc(broken)));
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        return Ok(resp);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let mut resp = json(serde_json::Value::Null);
        *resp.status_mut() = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        return Ok(resp);
    }
    if let Some(n) = path.strip_prefix("/big/") {
        let total: usize = n.parse().unwrap_or(0);
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let stream = futures_util::stream::unfold(0usize, move |sent| {
            let chunk = chunk.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let n = chunk.len().min(total - sent);
                Some((
                    Ok::<_, hyper::Error>(Frame::data(chunk.slice(..n))),
                    sent + n,
                ))
            }
        });
        let mut resp = Response::new(StreamBody::new(stream).boxed());
        resp.headers_mut()
            .insert("content-length", total.to_string().parse().unwrap());
        return Ok(resp);
    }
    if path == "/trailers" {
        let frames = vec![
            Ok::<_, hyper::Error>(Frame::data(Bytes::from_static(b"body"))),
            Ok(Frame::trailers({
                let mut t = http::HeaderMap::new();
                t.insert("x-checksum", "abc123".parse().unwrap());
                t
            })),
        ];
        let mut resp = Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
        resp.headers_mut()
            .insert("trailer", "x-checksum".parse().unwrap());
        return Ok(resp);
    }
    let mut resp = json(serde_json::Value::Null);
    // Headers that leak the stack; the proxy removes them.
    resp.headers_mut()
        .insert("server", "Apache/2.2.3 (Legacy)".parse().unwrap());
    resp.headers_mut()
        .insert("x-powered-by", "PHP/5.4".parse().unwrap());
    // Hop-by-hop headers an upstream might send; the proxy must not pass them on.
    resp.headers_mut()
        .insert("keep-alive", "timeout=5".parse().unwrap());
    resp.headers_mut()
        .insert("connection", "x-upstream-hop".parse().unwrap());
    resp.headers_mut()
        .insert("x-upstream-hop", "1".parse().unwrap());
    Ok(resp)
}

/// A `ficus` process with its own routes file in a temp dir.
pub struct TestProxy {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub logs: Arc<Mutex<Vec<serde_json::Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn ficus_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ficus")
}

/// The audit log's `actor` of commands run by [`ficus_cli`] (`cli:$USER@$HOSTNAME`).
pub const CLI_ACTOR: &str = "cli:tester@testhost";

/// Runs `ficus ARGS` as user "tester" on host "testhost": success, stdout, stderr.
pub fn ficus_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(ficus_bin())
        .args(args)
        .env("USER", "tester")
        .env("HOSTNAME", "testhost")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Routes file text with `legacy` and optional extra upstreams, listening on port 0.
pub fn routes_toml(upstreams: &[(&str, &TestUpstream)], routes: &str) -> String {
    let mut s = String::from(
        "legacy = \"legacy\"\n\n[listen]\nproxy = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n",
    );
    s.push_str("[server]\ngrace_period_ms = 5000\ndrain_idle_ms = 200\n\n");
    for (name, up) in upstreams {
        s.push_str(&format!(
            "[upstreams.{name}]\nurl = \"{}\"\nrequest_timeout_ms = 2000\n\n",
            up.url()
        ));
    }
    s.push_str(routes);
    s
}

impl TestProxy {
    pub fn start(routes: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let config = dir.join("routes.toml");
        std::fs::write(&config, routes).unwrap();
        let mut p = Self::spawn(&config, &[]);
        p._tmp = Some(tmp);
        p
    }

    /// Like [`TestProxy::start`], with files written next to routes.toml first.
    pub fn start_with_files(routes: &str, files: &[(&str, &[u8])]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let config = dir.join("routes.toml");
        std::fs::write(&config, routes).unwrap();
        let mut p = Self::spawn(&config, &[]);
        p._tmp = Some(tmp);
        p
    }

    /// Starts `ficus run` on an existing config, with extra arguments.
    pub fn spawn(config: &Path, extra: &[&str]) -> Self {
        Self::spawn_full(config, extra, &[])
    }

    /// Starts `ficus run` on an existing config with extra environment variables.
    pub fn spawn_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn_full(config, &[], env)
    }

    fn spawn_full(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let threads: &[&str] = if extra.contains(&"--threads") {
            &[]
        } else {
            &["--threads", "2"]
        };
        let mut child = Command::new(ficus_bin())
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .args(threads)
            .args(extra)
            .env("FICUS_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v["message"] == "ficus listening" {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((
                            v["proxy"].as_str().unwrap().to_owned(),
                            v["admin"].as_str().unwrap().to_owned(),
                        ));
                    }
                }
                logs2.lock().unwrap().push(v);
            }
        });
        let (proxy, admin) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("ficus did not start listening");
        TestProxy {
            child,
            proxy: proxy.parse().unwrap(),
            admin: admin.parse().unwrap(),
            dir: config.parent().unwrap().to_owned(),
            config: config.to_owned(),
            logs,
            reader: Some(reader),
            _tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) until a log line satisfies `pred`.
    pub fn wait_log(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..600 {
            let found = self.logs.lock().unwrap().iter().find(|v| pred(v)).cloned();
            if let Some(v) = found {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "no log line {what} within 6s; logs: {:?}",
            self.logs.lock().unwrap()
        );
    }

    /// Waits for the process to exit and for its output to be read to the end.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        status
    }

    pub fn rss_peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A response read whole.
pub struct Got {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {:?}", self.body))
    }
}

pub async fn send(client: &TestClient, req: Request<Full<Bytes>>) -> Got {
    let resp = client.request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(client: &TestClient, url: &str) -> Got {
    send(client, Request::get(url).body(Full::default()).unwrap()).await
}

/// `POST /admin/reload` on the proxy's admin listener.
pub async fn reload(c: &TestClient, proxy: &TestProxy) -> Got {
    send(
        c,
        Request::post(proxy.admin_url("/admin/reload"))
            .body(Full::default())
            .unwrap(),
    )
    .await
}

pub async fn post(client: &TestClient, url: &str, body: &str) -> Got {
    send(
        client,
        Request::post(url)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

/// Which upstream answered (from the JSON body of a default upstream response).
pub fn upstream_of(got: &Got) -> String {
    got.json()["upstream"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn counter(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

pub fn labels_sorted(map: HashMap<&str, &str>) -> String {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort();
    v.into_iter()
        .map(|(k, val)| format!("{k}=\"{val}\""))
        .collect::<Vec<_>>()
        .join(",")
}
