//! `ficus audit`: probes every route of a routes file the way an attacker would and
//! reports, per route and check, what was sent, what came back and whether the edge held.
//!
//! Checks (docs/security.md, "Audit"): no token; expired, tampered, `alg: none`,
//! wrong-audience and garbage tokens; another user's id on `owner` routes (plain,
//! percent-encoded, dotted and double-slash spellings); a cross-site cookie write;
//! spoofed identity headers; a script in the query string. Pointed at the legacy
//! monolith it shows its holes; pointed at Ficus in front of it, none should remain.
//!
//! Tokens are minted for the `--token-for` users with the HS256 secret of the routes file
//! (`hs256_secret_env` / `hs256_secret_file`) or with `--signing-key` (RS256/ES256 PEM).
//! The audit sends requests only to `--target`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::file::{AuthMode, RouteFile, RoutesFile};
use crate::config::{self, RouteTable};
use crate::router::{PathPattern, Segment};

const PAYLOAD: &str = "<script>alert('ficus-audit')</script>";
const EVIL_ORIGIN: &str = "https://attacker.example";

/// How `ficus audit` was asked to run.
pub struct Options {
    pub config: PathBuf,
    /// `http://host:port` of the proxy (or of an app, to see its holes).
    pub target: String,
    /// Users to mint tokens for; the first is the attacker, the second the victim.
    pub tokens_for: Vec<String>,
    /// RS256/ES256 private key in PEM, when the routes file has no HS256 secret.
    pub signing_key: Option<PathBuf>,
    pub kid: Option<String>,
    /// Roles put in minted tokens (default "member").
    pub role: String,
}

/// One probe's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub route: String,
    pub check: &'static str,
    pub pass: bool,
    /// `METHOD path` and the notable headers sent.
    pub sent: String,
    pub status: u16,
    /// What a pass needs.
    pub expected: &'static str,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub rows: Vec<Row>,
    pub passed: usize,
    pub failed: usize,
    /// Checks that could not run, and why.
    pub skipped: Vec<String>,
}

/// Mints tokens as the identity provider would.
struct Minter {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    roles_claim: String,
    role: String,
}

impl Minter {
    fn claims(&self, sub: &str, exp_offset: i64, audience: Option<&str>) -> Value {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let mut c = json!({
            "sub": sub,
            "iat": now,
            "exp": now + exp_offset,
            "email": format!("audit-{sub}@ficus.invalid"),
        });
        c[&self.roles_claim] = json!(self.role);
        if let Some(iss) = &self.issuer {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = audience.or(self.audience.as_deref()) {
            c["aud"] = json!(aud);
        }
        c
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut h = Header::new(self.alg);
        h.kid = self.kid.clone();
        jsonwebtoken::encode(&h, claims, &self.key).context("sign an audit token")
    }

    fn token(&self, sub: &str) -> anyhow::Result<String> {
        self.sign(&self.claims(sub, 300, None))
    }
}

fn minter(file: &RoutesFile, dir: &Path, opts: &Options) -> anyhow::Result<Option<Minter>> {
    let Some(auth) = &file.auth else {
        return Ok(None);
    };
    let (alg, key) = if let Some(path) = &opts.signing_key {
        let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        if let Ok(k) = EncodingKey::from_rsa_pem(&pem) {
            (Algorithm::RS256, k)
        } else {
            let k = EncodingKey::from_ec_pem(&pem)
                .with_context(|| format!("{}: not an RSA or EC private key", path.display()))?;
            (Algorithm::ES256, k)
        }
    } else if let Some(var) = &auth.hs256_secret_env {
        let secret = std::env::var(var).with_context(|| format!("${var} is not set"))?;
        (
            Algorithm::HS256,
            EncodingKey::from_secret(secret.as_bytes())?,
        )
    } else if let Some(f) = &auth.hs256_secret_file {
        let path = dir.join(f);
        let secret =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        (
            Algorithm::HS256,
            EncodingKey::from_secret(secret.trim_end_matches(['\r', '\n']).as_bytes())?,
        )
    } else {
        return Ok(None);
    };
    Ok(Some(Minter {
        alg,
        key,
        kid: opts.kid.clone(),
        issuer: auth.issuer.clone(),
        audience: auth.audiences.first().cloned(),
        roles_claim: auth.roles_claim.clone().unwrap_or_else(|| "roles".into()),
        role: opts.role.clone(),
    }))
}

/// A concrete path for a pattern: `owner` gets `owner_value`, other params "1", a rest "audit".
fn fill(pattern: &str, owner: Option<&str>, owner_value: &str) -> String {
    let Ok(p) = PathPattern::parse(pattern) else {
        return pattern.to_owned();
    };
    let mut out = String::new();
    for s in p.segments() {
        out.push('/');
        match s {
            Segment::Literal(l) => out.push_str(l),
            Segment::Param(n) if Some(&**n) == owner => out.push_str(owner_value),
            Segment::Param(_) => out.push('1'),
            Segment::Rest(_) => out.push_str("audit"),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A request to send and how to judge the answer.
struct Probe {
    route: String,
    check: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    expected: &'static str,
    judge: fn(StatusCode, &http::HeaderMap, &[u8]) -> bool,
}

fn refused(s: StatusCode, _: &http::HeaderMap, _: &[u8]) -> bool {
    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
}

/// Refused, or nothing there: a 404 or 405 exposes nothing either (used for spellings a
/// server may not route at all, and for writes).
fn refused_or_absent(s: StatusCode, h: &http::HeaderMap, b: &[u8]) -> bool {
    refused(s, h, b) || s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED
}

fn unauthenticated(s: StatusCode, _: &http::HeaderMap, _: &[u8]) -> bool {
    s == StatusCode::UNAUTHORIZED
}

/// The script must not come back, or must not be able to run: a CSP without inline
/// scripts and `nosniff`.
fn script_cannot_run(_: StatusCode, h: &http::HeaderMap, body: &[u8]) -> bool {
    let reflected = body.windows(PAYLOAD.len()).any(|w| w == PAYLOAD.as_bytes());
    if !reflected {
        return true;
    }
    let csp = h
        .get(http::header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let blocks_inline = (csp.contains("default-src 'none'") || csp.contains("script-src"))
        && !csp.contains("'unsafe-inline'");
    let nosniff = h
        .get(http::header::X_CONTENT_TYPE_OPTIONS)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"nosniff"));
    blocks_inline && nosniff
}

fn probes(
    table: &RouteTable,
    minter: Option<&Minter>,
    users: &[String],
    skipped: &mut Vec<String>,
) -> anyhow::Result<Vec<Probe>> {
    let file = &table.file;
    let cookie = file.auth.as_ref().and_then(|a| a.cookie.clone());
    let has_aud = file.auth.as_ref().is_some_and(|a| !a.audiences.is_empty());
    let me = users.first().map(String::as_str);
    let victim = users.get(1).map(String::as_str);
    let mut out = Vec::new();
    if minter.is_none() {
        skipped.push("token checks: no HS256 secret in [auth] and no --signing-key".into());
    }
    if me.is_none() {
        skipped.push("token and ownership checks: no --token-for user".into());
    }
    let default_route = RouteFile {
        name: "_default".into(),
        path: "/ficus-audit/unrouted".into(),
        methods: Some(vec!["GET".into()]),
        mode: Default::default(),
        extracted: None,
        shadow: None,
        canary: None,
        verify: None,
        auth: file.default.auth,
        roles: Vec::new(),
        owner: None,
        max_body_bytes: None,
        content_security_policy: None,
        audit_path: None,
        autopilot: None,
    };
    for r in file.routes.iter().chain(std::iter::once(&default_route)) {
        let access = table
            .routes
            .iter()
            .find(|x| x.name == r.name)
            .map_or(&table.default_access, |x| &x.access);
        let auth = if file.auth.is_none() {
            AuthMode::Public
        } else {
            access.auth
        };
        let pattern = r.audit_path.as_deref().unwrap_or(&r.path);
        let owner = r.owner.as_deref();
        let own_path = fill(pattern, owner, me.unwrap_or("1"));
        let methods: Vec<Method> = r
            .methods
            .as_ref()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                    .collect()
            })
            .unwrap_or_else(|| vec![Method::GET, Method::POST]);
        let read = methods
            .iter()
            .find(|m| matches!(**m, Method::GET | Method::HEAD))
            .cloned();
        let write = methods
            .iter()
            .find(|m| crate::auth::csrf::is_unsafe(m))
            .cloned();
        let method = read
            .clone()
            .or_else(|| write.clone())
            .unwrap_or(Method::GET);
        let probe = |check, method: &Method, path: &str, headers, expected, judge| Probe {
            route: r.name.clone(),
            check,
            method: method.clone(),
            path: path.to_owned(),
            headers,
            expected,
            judge,
        };

        if auth == AuthMode::Required {
            out.push(probe(
                "no-token",
                &method,
                &own_path,
                vec![],
                "401",
                unauthenticated,
            ));
        }
        if auth != AuthMode::Public {
            out.push(probe(
                "garbage-token",
                &method,
                &own_path,
                vec![("authorization", "Bearer ficus-audit-garbage".into())],
                "401",
                unauthenticated,
            ));
            if let (Some(m), Some(me)) = (minter, me) {
                let good = m.token(me)?;
                let expired = m.sign(&m.claims(me, -3600, None))?;
                let (h, rest) = good.split_once('.').unwrap_or((&good, ""));
                let (_, sig) = rest.split_once('.').unwrap_or(("", ""));
                let claims_other = m.claims(victim.unwrap_or("0"), 300, None);
                let tampered = format!(
                    "{h}.{}.{sig}",
                    URL_SAFE_NO_PAD.encode(claims_other.to_string())
                );
                let none = format!(
                    "{}.{}.",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                    URL_SAFE_NO_PAD.encode(m.claims(me, 300, None).to_string())
                );
                let mut bad = vec![
                    ("expired-token", expired),
                    ("tampered-token", tampered),
                    ("alg-none-token", none),
                ];
                if has_aud {
                    bad.push((
                        "wrong-audience-token",
                        m.sign(&m.claims(me, 300, Some("ficus-audit-wrong-audience")))?,
                    ));
                }
                for (check, t) in bad {
                    out.push(probe(
                        check,
                        &method,
                        &own_path,
                        vec![("authorization", format!("Bearer {t}"))],
                        "401",
                        unauthenticated,
                    ));
                }
                if let (Some(owner), Some(victim)) = (owner, victim) {
                    let bearer = format!("Bearer {good}");
                    let encoded: String = victim
                        .bytes()
                        .enumerate()
                        .map(|(i, b)| {
                            if i == 0 {
                                format!("%{b:02X}")
                            } else {
                                char::from(b).to_string()
                            }
                        })
                        .collect();
                    out.push(probe(
                        "other-user",
                        &method,
                        &fill(pattern, Some(owner), victim),
                        vec![("authorization", bearer.clone())],
                        "401 or 403",
                        refused,
                    ));
                    let victim_path = fill(pattern, Some(owner), victim);
                    for (check, path) in [
                        ("other-user-encoded", fill(pattern, Some(owner), &encoded)),
                        (
                            "other-user-dotted",
                            fill(pattern, Some(owner), &format!("{me}/../{victim}")),
                        ),
                        ("other-user-double-slash", format!("/{victim_path}")),
                    ] {
                        out.push(probe(
                            check,
                            &method,
                            &path,
                            vec![("authorization", bearer.clone())],
                            "401, 403, or not routed (404)",
                            refused_or_absent,
                        ));
                    }
                    out.push(probe(
                        "spoofed-identity",
                        &method,
                        &victim_path,
                        vec![
                            ("authorization", bearer.clone()),
                            ("x-ficus-subject", victim.to_owned()),
                            ("x-ficus-roles", "admin".into()),
                            ("x-user-id", victim.to_owned()),
                        ],
                        "401 or 403",
                        refused,
                    ));
                }
                if let (Some(cookie), Some(w)) = (&cookie, &write) {
                    out.push(probe(
                        "cross-site-cookie-write",
                        w,
                        &own_path,
                        vec![
                            ("cookie", format!("{cookie}={good}")),
                            ("origin", EVIL_ORIGIN.into()),
                            ("sec-fetch-site", "cross-site".into()),
                            ("content-type", "application/json".into()),
                        ],
                        "401, 403, or no such write (404, 405)",
                        refused_or_absent,
                    ));
                }
            }
        } else if owner.is_none() {
            // Public routes: spoofed identity must not turn into one.
            out.push(probe(
                "spoofed-identity",
                &method,
                &own_path,
                vec![
                    ("x-ficus-subject", "1".into()),
                    ("x-ficus-roles", "admin".into()),
                ],
                "no identity accepted (not 5xx)",
                |s, _, _| !s.is_server_error(),
            ));
        }
        if let Some(read) = &read {
            let mut headers = vec![];
            if auth != AuthMode::Public {
                if let (Some(m), Some(me)) = (minter, me) {
                    headers.push(("authorization", format!("Bearer {}", m.token(me)?)));
                }
            }
            let q = PAYLOAD
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>();
            out.push(probe(
                "script-in-query",
                read,
                &format!("{own_path}?q={q}"),
                headers,
                "script not reflected, or blocked by CSP + nosniff",
                script_cannot_run,
            ));
        }
    }
    Ok(out)
}

async fn send(target: &str, p: &Probe) -> anyhow::Result<(StatusCode, http::HeaderMap, Bytes)> {
    let uri: http::Uri = target.parse().context("--target is not a URL")?;
    let authority = uri.authority().context("--target has no host")?.clone();
    let addr = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = if crate::auth::csrf::is_unsafe(&p.method) {
        "{}"
    } else {
        ""
    };
    let mut req = Request::builder()
        .method(p.method.clone())
        .uri(&p.path)
        .header(http::header::HOST, authority.as_str());
    for (k, v) in &p.headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(Bytes::from_static(body.as_bytes())))?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((parts.status, parts.headers, body))
}

/// Runs every probe against the target.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let metrics = crate::metrics::Metrics::new();
    let table = config::load(&opts.config, &metrics).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = opts.config.parent().unwrap_or(Path::new("."));
    let minter = minter(&table.file, dir, opts)?;
    let mut skipped = Vec::new();
    if opts.tokens_for.len() < 2 {
        skipped.push("ownership checks: need two --token-for users (attacker, victim)".into());
    }
    let probes = probes(&table, minter.as_ref(), &opts.tokens_for, &mut skipped)?;
    if !(opts.target.starts_with("http://")) {
        bail!("--target must be an http:// URL");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        let mut rows = Vec::with_capacity(probes.len());
        for p in &probes {
            let (status, pass) =
                match tokio::time::timeout(Duration::from_secs(10), send(&opts.target, p)).await {
                    Ok(Ok((status, headers, body))) => {
                        (status.as_u16(), (p.judge)(status, &headers, &body))
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => (0, false),
                };
            let notable: Vec<String> = p
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = if v.chars().count() > 24 {
                        format!("{}…", v.chars().take(24).collect::<String>())
                    } else {
                        v.clone()
                    };
                    format!("{k}: {v}")
                })
                .collect();
            rows.push(Row {
                route: p.route.clone(),
                check: p.check,
                pass,
                sent: if notable.is_empty() {
                    format!("{} {}", p.method, p.path)
                } else {
                    format!("{} {} [{}]", p.method, p.path, notable.join("; "))
                },
                status,
                expected: p.expected,
            });
        }
        Ok::<_, anyhow::Error>(rows)
    })?;
    let failed = rows.iter().filter(|r| !r.pass).count();
    Ok(Report {
        target: opts.target.clone(),
        passed: rows.len() - failed,
        failed,
        rows,
        skipped,
    })
}

/// The report as a table.
pub fn render_text(report: &Report) -> String {
    let mut out = format!("ficus audit of {}\n", report.target);
    let w = report
        .rows
        .iter()
        .map(|r| r.route.len())
        .max()
        .unwrap_or(5)
        .max(5);
    out.push_str(&format!(
        "{:<w$}  {:<26} {:<6} {:<4} {}\n",
        "ROUTE", "CHECK", "RESULT", "GOT", "SENT (expected)"
    ));
    for r in &report.rows {
        out.push_str(&format!(
            "{:<w$}  {:<26} {:<6} {:<4} {} (expected {})\n",
            r.route,
            r.check,
            if r.pass { "pass" } else { "FAIL" },
            r.status,
            r.sent,
            r.expected
        ));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    out.push_str(&format!(
        "{} passed, {} failed\n",
        report.passed, report.failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_filled_for_the_owner() {
        assert_eq!(
            fill("/api/users/{user_id}/{*rest}", Some("user_id"), "8"),
            "/api/users/8/audit"
        );
        assert_eq!(fill("/api/classes/{id}", None, "8"), "/api/classes/1");
        assert_eq!(fill("/", None, "8"), "/");
    }

    #[test]
    fn reflected_scripts_pass_only_when_they_cannot_run() {
        let body = format!("<p>no results for {PAYLOAD}</p>");
        let mut h = http::HeaderMap::new();
        assert!(!script_cannot_run(StatusCode::OK, &h, body.as_bytes()));
        h.insert(
            http::header::CONTENT_SECURITY_POLICY,
            http::HeaderValue::from_static("default-src 'none'"),
        );
        assert!(
            !script_cannot_run(StatusCode::OK, &h, body.as_bytes()),
            "nosniff missing"
        );
        h.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        );
        assert!(script_cannot_run(StatusCode::OK, &h, body.as_bytes()));
        assert!(script_cannot_run(
            StatusCode::OK,
            &http::HeaderMap::new(),
            b"escaped &lt;script&gt;"
        ));
    }
}
