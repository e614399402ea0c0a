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
    /// The TLS client for an `https://` URL.
    pub tls: Option<tokio_rustls::TlsConnector>,
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
        // Boxed: a fetch is rare, and its large future (an HTTP client exchange) would
        // otherwise be part of every authenticated request's future, copied with it.
        match Box::pin(fetch_keys(&self.url, self.tls.as_ref())).await {
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
async fn fetch_keys(url: &str, tls: Option<&tokio_rustls::TlsConnector>) -> Result<KeySet, String> {
    let text = tokio::time::timeout(FETCH_TIMEOUT, get(url, tls))
        .await
        .map_err(|_| format!("timed out after {FETCH_TIMEOUT:?}"))??;
    KeySet::from_jwks(&text)
}

/// The TLS client of an `https://` JWKS URL: the system's roots, or the CAs of `ca_file`.
pub fn client_tls(ca_file: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificate found".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn handshake<S>(io: S) -> Result<Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A GET over HTTP or HTTPS (the URL was checked when the table was built).
async fn get(url: &str, tls: Option<&tokio_rustls::TlsConnector>) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let authority = uri.authority().ok_or("url has no host")?.clone();
    let https = uri.scheme_str() == Some("https");
    let addr = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:{}", authority.host(), if https { 443 } else { 80 }),
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut sender = match (https, tls) {
        (true, Some(tls)) => {
            let name = rustls_pki_types::ServerName::try_from(authority.host().to_owned())
                .map_err(|e| format!("server name: {e}"))?;
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            handshake(stream).await?
        }
        (true, None) => return Err("https URL without a TLS client".into()),
        (false, _) => handshake(stream).await?,
    };
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
