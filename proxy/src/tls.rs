//! TLS termination on the public listener (`[listen.tls]`, docs/tls.md).
//!
//! rustls with the aws-lc-rs provider only (the one jsonwebtoken uses too). Certificates
//! come from PEM files and are chosen by SNI: an exact name, then a one-label wildcard
//! (`*.example.com`), else the default certificate. ALPN offers `h2` and `http/1.1`;
//! TLS 1.2 is the floor (`min_version = "1.3"` raises it).
//!
//! The certificate set lives behind an `ArcSwap` in [`SniResolver`]: a reload of
//! routes.toml installs the set it validated, and a watcher re-reads the files when their
//! contents change (renewals), keeping the last good set when the new files do not load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::file::TlsFile;

pub const DEFAULT_HSTS: &str = "max-age=31536000; includeSubDomains";
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The loaded certificates.
#[derive(Debug, Clone)]
pub struct Certs {
    default: Arc<CertifiedKey>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*.` ("example.com").
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Every file read, for change detection.
    files: Vec<PathBuf>,
}

impl Certs {
    /// The certificate for an SNI name (none: the default).
    pub fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return self.default.clone();
        };
        if let Some(c) = self.exact.get(&name) {
            return c.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(c) = self.wildcard.get(parent) {
                return c.clone();
            }
        }
        self.default.clone()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_pair(
    dir: &Path,
    cert: &str,
    key: &str,
    files: &mut Vec<PathBuf>,
) -> Result<CertifiedKey, String> {
    let cert_path = dir.join(cert);
    let key_path = dir.join(key);
    files.push(cert_path.clone());
    files.push(key_path.clone());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no certificate in the file",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key_path.display()))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        format!(
            "{} / {}: {e} (is the key the certificate's?)",
            cert_path.display(),
            key_path.display()
        )
    })
}

/// Reads and checks every certificate of `[listen.tls]`.
pub fn load(file: &TlsFile, dir: &Path) -> Result<Certs, Vec<String>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    let default = load_pair(dir, &file.cert, &file.key, &mut files).map_err(|e| errors.push(e));
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for c in &file.certificates {
        if c.server_names.is_empty() {
            errors.push(format!(
                "listen.tls.certificates: {} needs server_names, e.g. [\"api.example.com\"]",
                c.cert
            ));
        }
        match load_pair(dir, &c.cert, &c.key, &mut files) {
            Ok(k) => {
                let k = Arc::new(k);
                for n in &c.server_names {
                    let n = n.to_ascii_lowercase();
                    let bad = n.is_empty()
                        || n.contains(['/', ':', ' '])
                        || (n.contains('*') && !n.starts_with("*."))
                        || n.chars().skip(1).any(|c| c == '*');
                    if bad {
                        errors.push(format!(
                            "listen.tls.certificates: server name {n:?} must be a host name or \"*.domain\""
                        ));
                    } else if let Some(suffix) = n.strip_prefix("*.") {
                        wildcard.insert(suffix.to_owned(), k.clone());
                    } else {
                        exact.insert(n, k.clone());
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    match (default, errors.is_empty()) {
        (Ok(d), true) => Ok(Certs {
            default: Arc::new(d),
            exact,
            wildcard,
            files,
        }),
        _ => Err(errors),
    }
}

/// Picks a certificate per handshake from the current set.
#[derive(Debug)]
pub struct SniResolver {
    certs: ArcSwap<Certs>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certs.load().pick(hello.server_name()))
    }
}

/// The checked `[listen.tls]`: what the table carries.
pub struct TlsSettings {
    pub certs: Arc<Certs>,
    pub tls13_only: bool,
    pub hsts: Option<HeaderValue>,
    pub handshake_timeout: Duration,
}

/// The certificates serving now and the `[listen.tls]` section they came from: what a
/// reload keeps when the files on disk do not load (say, halfway through a rotation).
pub struct LastGood {
    pub file: TlsFile,
    pub certs: Arc<Certs>,
}

impl LastGood {
    /// What the running process serves, if it terminates TLS.
    pub fn of(shared: &crate::state::Shared) -> Option<Self> {
        let terminator = shared.tls.get()?;
        let table = shared.table.load();
        Some(LastGood {
            file: table.file.listen.tls.clone()?,
            certs: terminator.resolver.certs.load_full(),
        })
    }
}

impl TlsSettings {
    /// Checks `file` and loads its certificates. With `keep`: when `[listen.tls]` is
    /// unchanged and only the files fail to load, the certificates serving now are kept
    /// (logged) instead of refusing the whole routes file, so that a route flip, a rollback
    /// or an autopilot step never waits on a certificate rotation. The certificate watcher
    /// counts and retries the files on its own.
    pub fn build(file: &TlsFile, dir: &Path, keep: Option<&LastGood>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let tls13_only = match file.min_version.as_deref() {
            None | Some("1.2") => false,
            Some("1.3") => true,
            Some(v) => {
                errors.push(format!(
                    "listen.tls.min_version = {v:?} must be \"1.2\" or \"1.3\""
                ));
                false
            }
        };
        let hsts = match file.hsts.as_deref() {
            None => Some(HeaderValue::from_static(DEFAULT_HSTS)),
            Some("") => None,
            Some(v) => match HeaderValue::from_str(v) {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.push("listen.tls.hsts is not a valid header value".into());
                    None
                }
            },
        };
        if file.handshake_timeout_ms == Some(0) {
            errors.push("listen.tls.handshake_timeout_ms must be at least 1".into());
        }
        let certs = match (load(file, dir), keep) {
            (Ok(certs), _) => Ok(certs),
            (Err(e), Some(last)) if last.file == *file => {
                tracing::warn!(target: "ficus::tls", errors = ?e, "certificate files do not load; the routes file is applied and the certificates serving now are kept");
                Ok(Certs::clone(&last.certs))
            }
            (Err(e), _) => {
                errors.extend(e);
                Err(())
            }
        };
        match (certs, errors.is_empty()) {
            (Ok(certs), true) => Ok(TlsSettings {
                certs: Arc::new(certs),
                tls13_only,
                hsts,
                handshake_timeout: file
                    .handshake_timeout_ms
                    .map_or(DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_millis),
            }),
            _ => Err(errors),
        }
    }
}

/// The listener side: one per process, shared by the workers.
pub struct Terminator {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub resolver: Arc<SniResolver>,
}

impl Terminator {
    pub fn new(settings: &TlsSettings) -> Result<Self, String> {
        let resolver = Arc::new(SniResolver {
            certs: ArcSwap::new(settings.certs.clone()),
        });
        let versions: &[&rustls::SupportedProtocolVersion] = if settings.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Terminator {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Installs a new certificate set (new connections use it).
    pub fn install(&self, certs: Arc<Certs>) {
        self.resolver.certs.store(certs);
    }

    fn files(&self) -> Vec<PathBuf> {
        self.resolver.certs.load().files.clone()
    }
}

fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut all = Vec::new();
    for f in files {
        all.extend_from_slice(f.as_os_str().as_encoded_bytes());
        all.push(0);
        all.extend_from_slice(&std::fs::read(f).unwrap_or_default());
        all.push(0);
    }
    crate::config::table::fnv1a(&all)
}

/// Re-reads the certificate files every second; when their contents change, loads them
/// and installs them, or keeps the current set (logged and counted) if they do not load.
pub fn watch(
    terminator: Arc<Terminator>,
    shared: Arc<crate::state::Shared>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = fingerprint(&terminator.files());
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let now = fingerprint(&terminator.files());
            if now == last {
                continue;
            }
            last = now;
            let table = shared.table.load_full();
            let Some(file) = &table.file.listen.tls else {
                continue;
            };
            let dir = table.source.parent().unwrap_or(Path::new("."));
            match load(file, dir) {
                Ok(certs) => {
                    terminator.install(Arc::new(certs));
                    shared.metrics.tls_reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(target: "ficus::tls", "certificates reloaded");
                }
                Err(errors) => {
                    shared
                        .metrics
                        .tls_reloads
                        .with_label_values(&["error"])
                        .inc();
                    tracing::error!(target: "ficus::tls", errors = ?errors, "new certificates do not load; the previous ones keep serving");
                }
            }
        }
    })
}
