//! Keys from a JWKS URL: fetched on first use, cached per process for the TTL, refetched
//! early on an unknown `kid` at most once per `min_refresh`, and kept when a refresh fails
//! (an identity provider outage must not log every user out).
//!
//! The cache is keyed by URL and lives outside the route table, so a reload does not
//! throw it away. Fetches run on the worker that needs them, bounded by a timeout; at most
//! one fetch per URL is started per `min_refresh`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

use super::jwt::KeySet;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Entry {
    keys: Option<Arc<KeySet>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

static CACHE: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(Default::default);

/// A JWKS URL and its refresh policy.
pub struct Remote {
    pub url: String,
    pub ttl: Duration,
    pub min_refresh: Duration,
}

impl Remote {
    /// Keys to verify a token with key id `kid`: cached when fresh and knowing `kid`,
    /// else fetched (subject to `min_refresh`). `None` when no keys could ever be had.
    pub async fn keys(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let now = Instant::now();
        let (cached, fetch) = {
            let mut cache = CACHE.lock().ok()?;
            let entry = cache.entry(self.url.clone()).or_default();
            let fresh = entry.fetched.is_some_and(|t| now - t < self.ttl);
            let knows_kid = match (&entry.keys, kid) {
                (Some(k), Some(kid)) => k.has_kid(kid),
                (Some(_), None) => true,
                (None, _) => false,
            };
            let may_fetch = entry.attempted.is_none_or(|t| now - t >= self.min_refresh);
            let fetch = (!fresh || !knows_kid) && may_fetch;
            if fetch {
                entry.attempted = Some(now);
            }
            (entry.keys.clone(), fetch)
        };
        if !fetch {
            return cached;
        }
        match fetch_keys(&self.url).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut cache) = CACHE.lock() {
                    let entry = cache.entry(self.url.clone()).or_default();
                    entry.keys = Some(keys.clone());
                    entry.fetched = Some(Instant::now());
                }
                tracing::info!(target: "ficus::auth", url = %self.url, keys = keys.keys.len(), "fetched JWKS");
                Some(keys)
            }
            Err(e) => {
                tracing::warn!(target: "ficus::auth", url = %self.url, error = %e, "JWKS fetch failed; keeping the cached keys");
                cached
            }
        }
    }
}

/// Fetches and parses a JWKS document.
async fn fetch_keys(url: &str) -> Result<KeySet, String> {
    let text = tokio::time::timeout(FETCH_TIMEOUT, get(url))
        .await
        .map_err(|_| format!("timed out after {FETCH_TIMEOUT:?}"))??;
    KeySet::from_jwks(&text)
}

/// A plain HTTP GET (the URL was checked when the table was built).
async fn get(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let authority = uri.authority().ok_or("url has no host")?.clone();
    let addr = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8".to_owned())
}
