//! TLS termination through a running proxy: HTTP/1.1 and h2 over TLS, SNI, minimum
//! version, HSTS, certificate reload, and config errors. Certificates are generated per
//! test with rcgen (a throwaway CA).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::*;

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// (cert PEM, key PEM, cert DER) for `names`.
    fn leaf(&self, names: &[&str]) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        // A resumed session reports the certificate of the first handshake.
        config.resumption = rustls::client::Resumption::disabled();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// One request over TLS; returns (status, headers, body, served cert, ALPN).
async fn fetch(
    proxy: &TestProxy,
    connector: &tokio_rustls::TlsConnector,
    name: &str,
) -> Result<
    (
        http::StatusCode,
        http::HeaderMap,
        Bytes,
        CertificateDer<'static>,
        Option<Vec<u8>>,
    ),
    String,
> {
    let tcp = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    let cert = conn.peer_certificates().unwrap()[0].clone();
    let alpn = conn.alpn_protocol().map(|a| a.to_vec());
    let io = hyper_util::rt::TokioIo::new(tls);
    let req = http::Request::get("/hello")
        .header("host", name)
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = if alpn.as_deref() == Some(b"h2") {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = req;
        *req.uri_mut() = format!("https://{name}/hello").parse().unwrap();
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Ok((parts.status, parts.headers, body, cert, alpn))
}

fn tls_routes(legacy: &TestUpstream, extra: &str) -> String {
    routes_toml(&[("legacy", legacy)], "").replace(
        "admin = \"127.0.0.1:0\"\n",
        &format!("admin = \"127.0.0.1:0\"\n\n[listen.tls]\ncert = \"default.pem\"\nkey = \"default.key\"\n{extra}\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_terminates_with_sni_alpn_and_hsts() {
    let legacy = TestUpstream::start("legacy").await;
    let pki = Pki::new();
    let (d_pem, d_key, d_der) = pki.leaf(&["default.test"]);
    let (a_pem, a_key, a_der) = pki.leaf(&["a.test"]);
    let (w_pem, w_key, w_der) = pki.leaf(&["*.shop.test"]);
    let extra = "[[listen.tls.certificates]]\ncert = \"a.pem\"\nkey = \"a.key\"\nserver_names = [\"a.test\"]\n\n[[listen.tls.certificates]]\ncert = \"w.pem\"\nkey = \"w.key\"\nserver_names = [\"*.shop.test\"]\n";
    let proxy = TestProxy::start_with_files(
        &tls_routes(&legacy, extra),
        &[
            ("default.pem", d_pem.as_bytes()),
            ("default.key", d_key.as_bytes()),
            ("a.pem", a_pem.as_bytes()),
            ("a.key", a_key.as_bytes()),
            ("w.pem", w_pem.as_bytes()),
            ("w.key", w_key.as_bytes()),
        ],
    );
    let h1 = pki.client(ALL, &[b"http/1.1"]);
    let (status, headers, body, cert, alpn) = fetch(&proxy, &h1, "a.test").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(cert, a_der, "SNI a.test gets its certificate");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert!(String::from_utf8_lossy(&body).contains("legacy"));
    let seen = legacy.seen().pop().unwrap();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert!(
        seen.headers["forwarded"]
            .to_str()
            .unwrap()
            .contains("proto=https")
    );

    let h2 = pki.client(ALL, &[b"h2", b"http/1.1"]);
    let (status, _, _, cert, alpn) = fetch(&proxy, &h2, "api.shop.test").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN picks h2");
    assert_eq!(cert, w_der, "wildcard");
    assert_eq!(legacy.seen().pop().unwrap().version, http::Version::HTTP_11);
    // An unknown name gets the default certificate (which the client then rejects).
    let err = fetch(&proxy, &h1, "other.test").await.err().unwrap();
    assert!(
        err.contains("certificate") || err.contains("NotValidForName"),
        "{err}"
    );
    let (_, _, _, cert, _) = fetch(&proxy, &h1, "default.test").await.unwrap();
    assert_eq!(cert, d_der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_13_refuses_a_tls12_client() {
    let legacy = TestUpstream::start("legacy").await;
    let pki = Pki::new();
    let (pem, key, _) = pki.leaf(&["default.test"]);
    let proxy = TestProxy::start_with_files(
        &tls_routes(&legacy, "min_version = \"1.3\""),
        &[
            ("default.pem", pem.as_bytes()),
            ("default.key", key.as_bytes()),
        ],
    );
    let old = pki.client(&[&rustls::version::TLS12], &[]);
    assert!(fetch(&proxy, &old, "default.test").await.is_err());
    let new = pki.client(ALL, &[]);
    assert_eq!(fetch(&proxy, &new, "default.test").await.unwrap().0, 200);
    assert_eq!(legacy.count(), 1);
    // Plain HTTP to a TLS listener is not served.
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert_eq!(legacy.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_when_the_files_change_and_bad_ones_are_kept_out() {
    let legacy = TestUpstream::start("legacy").await;
    let pki = Pki::new();
    let (pem, key, first) = pki.leaf(&["default.test"]);
    let proxy = TestProxy::start_with_files(
        &tls_routes(&legacy, "hsts = \"\""),
        &[
            ("default.pem", pem.as_bytes()),
            ("default.key", key.as_bytes()),
        ],
    );
    let c = pki.client(ALL, &[]);
    let (_, headers, _, cert, _) = fetch(&proxy, &c, "default.test").await.unwrap();
    assert_eq!(cert, first);
    assert!(
        headers.get("strict-transport-security").is_none(),
        "hsts = \"\" disables it"
    );

    // A renewal: new key and certificate, written as editors and cert tools do.
    let (pem2, key2, second) = pki.leaf(&["default.test"]);
    for (name, text) in [("default.key", &key2), ("default.pem", &pem2)] {
        let tmp = proxy.dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, proxy.dir.join(name)).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, _, cert, _) = fetch(&proxy, &c, "default.test").await.unwrap();
        if cert == second {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not picked up: {:?}",
            proxy
                .logs
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l["target"] == "ficus::tls")
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Garbage: the renewed certificate keeps serving, the error is counted.
    std::fs::write(proxy.dir.join("default.pem"), "not a certificate").unwrap();
    let client = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = get(&client, &proxy.admin_url("/metrics")).await;
        if counter(
            &String::from_utf8_lossy(&m.body),
            "ficus_tls_reloads_total{result=\"error\"}",
        ) >= 1.0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bad file was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _, cert, _) = fetch(&proxy, &c, "default.test").await.unwrap();
    assert_eq!((status.as_u16(), cert.clone()), (200, second.clone()));

    // While the files are broken, a routes change (a flip, a rollback, an autopilot step)
    // still applies: [listen.tls] is unchanged, so the serving certificates are kept.
    // (Regression: the whole reload was refused until the certificates were fixed.)
    let routes = proxy.dir.join("routes.toml");
    let text = std::fs::read_to_string(&routes).unwrap();
    let flipped = format!("{text}\n[[routes]]\nname = \"added\"\npath = \"/added\"\n");
    std::fs::write(&routes, &flipped).unwrap();
    let got = reload(&client, &proxy).await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let table = get(&client, &proxy.admin_url("/admin/routes")).await.json();
    assert!(
        table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "added"),
        "{table}"
    );
    assert!(table["last_reload_error"].is_null(), "{table}");
    let (_, _, _, cert, _) = fetch(&proxy, &c, "default.test").await.unwrap();
    assert_eq!(cert, second);
    // A changed [listen.tls] whose files do not load is still refused.
    std::fs::write(
        &routes,
        flipped.replace("cert = \"default.pem\"", "cert = \"missing.pem\""),
    )
    .unwrap();
    let got = reload(&client, &proxy).await;
    assert_eq!(got.status, 422, "{}", String::from_utf8_lossy(&got.body));
    assert!(String::from_utf8_lossy(&got.body).contains("missing.pem"));
}

#[test]
fn tls_config_errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (pem, _, _) = pki.leaf(&["default.test"]);
    let (_, other_key, _) = pki.leaf(&["x.test"]);
    std::fs::write(dir.path().join("default.pem"), pem).unwrap();
    std::fs::write(dir.path().join("wrong.key"), other_key).unwrap();
    let text = "legacy = \"legacy\"\n[listen]\nproxy = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n[listen.tls]\ncert = \"default.pem\"\nkey = \"wrong.key\"\nmin_version = \"1.1\"\n\n[[listen.tls.certificates]]\ncert = \"missing.pem\"\nkey = \"missing.key\"\nserver_names = []\n\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n";
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(ficus_bin())
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routes.toml:6: listen.tls.min_version = \"1.1\""),
        "{err}"
    );
    assert!(err.contains("is the key the certificate's?"), "{err}");
    assert!(err.contains("missing.pem"), "{err}");
    assert!(err.contains("needs server_names"), "{err}");
}
