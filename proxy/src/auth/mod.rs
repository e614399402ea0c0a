//! Edge security: who the caller is (JWT), what a route allows (auth mode, roles,
//! ownership), CSRF, identity header hygiene, path normalisation and response hardening.
//!
//! Secure by default: with an `[auth]` table, a route that says nothing requires a valid
//! token. Everything here decides from the request head only; it never reads a body and
//! never talks to an upstream (a JWKS URL is the one outside call, see [`jwks`]).
//! Documented in docs/security.md.

pub mod csrf;
pub mod harden;
pub mod jwks;
pub mod jwt;
pub mod path;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use jsonwebtoken::Algorithm;

use crate::config::file::{AuthFile, AuthMode};
pub use jwt::{Identity, TokenError};

/// Verified `X-Ficus-Subject`: the token subject, set by Ficus only.
pub static SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-ficus-subject");
/// Verified `X-Ficus-Roles`: the token roles, comma-separated, set by Ficus only.
pub static ROLES_HEADER: HeaderName = HeaderName::from_static("x-ficus-roles");

/// Where a route's keys come from.
enum Keys {
    Static(Arc<jwt::KeySet>),
    Remote(jwks::Remote),
}

/// The checked `[auth]` table.
pub struct AuthConfig {
    rules: jwt::Rules,
    keys: Keys,
    pub cookie: Option<String>,
    pub allowed_origins: Vec<String>,
    pub admin_roles: Vec<String>,
    /// Extra client headers removed on every request.
    pub strip_headers: Vec<HeaderName>,
}

/// A route's access policy.
#[derive(Debug, Clone)]
pub struct Access {
    pub auth: AuthMode,
    pub roles: Vec<String>,
    /// Path parameter that must equal the subject (admins excepted).
    pub owner: Option<String>,
    /// Request body limit (413 beyond).
    pub max_body: Option<u64>,
    /// `Content-Security-Policy` of the route's responses.
    pub csp: HeaderValue,
}

/// How the request carried its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// Why a request was refused at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token where one is required.
    Unauthenticated,
    InvalidToken(TokenError),
    /// Valid token, none of the route's roles.
    Role,
    /// Valid token, someone else's resource.
    Owner,
    Csrf(csrf::CsrfError),
}

impl Denied {
    pub fn status(self) -> StatusCode {
        match self {
            Denied::Unauthenticated | Denied::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Denied::Role | Denied::Owner | Denied::Csrf(_) => StatusCode::FORBIDDEN,
        }
    }

    /// Label for `ficus_rejected_total{reason}` and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Unauthenticated => "unauthenticated",
            Denied::InvalidToken(_) => "invalid_token",
            Denied::Role => "forbidden_role",
            Denied::Owner => "forbidden_owner",
            Denied::Csrf(_) => "csrf",
        }
    }

    /// The client-facing message: fixed text, nothing from the request.
    pub fn message(self) -> &'static str {
        match self {
            Denied::Unauthenticated => "authentication required",
            Denied::InvalidToken(_) => "invalid token",
            Denied::Role => "forbidden: missing role",
            Denied::Owner => "forbidden: not the owner of this resource",
            Denied::Csrf(_) => "forbidden: cross-site request",
        }
    }

    /// `WWW-Authenticate` of a 401 (RFC 6750 §3).
    pub fn www_authenticate(self) -> Option<HeaderValue> {
        match self {
            Denied::Unauthenticated => Some(HeaderValue::from_static("Bearer")),
            Denied::InvalidToken(e) => HeaderValue::from_str(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{e}\""
            ))
            .ok(),
            _ => None,
        }
    }
}

impl AuthConfig {
    /// Checks an `[auth]` table. `dir` resolves relative file names; every problem is
    /// returned as a message naming the key and the fix.
    pub fn build(file: &AuthFile, dir: &Path) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut algorithms = Vec::new();
        if file.algorithms.is_empty() {
            errors.push(
                "auth.algorithms is empty; list the accepted algorithms, e.g. [\"RS256\"]".into(),
            );
        }
        for a in &file.algorithms {
            match a.as_str() {
                "HS256" => algorithms.push(Algorithm::HS256),
                "RS256" => algorithms.push(Algorithm::RS256),
                "ES256" => algorithms.push(Algorithm::ES256),
                other => errors.push(format!(
                    "auth.algorithms: {other:?} is not supported; use \"HS256\", \"RS256\" or \"ES256\""
                )),
            }
        }
        let sources = usize::from(file.jwks_file.is_some())
            + usize::from(file.jwks_url.is_some())
            + usize::from(!file.public_key_files.is_empty())
            + usize::from(file.hs256_secret_env.is_some())
            + usize::from(file.hs256_secret_file.is_some());
        if sources == 0 {
            errors.push(
                "auth needs keys: set jwks_file, jwks_url, public_key_files, hs256_secret_env or hs256_secret_file"
                    .into(),
            );
        }
        if file.jwks_url.is_some() && sources > 1 {
            errors.push(
                "auth.jwks_url cannot be combined with other key sources; serve every key from the JWKS".into(),
            );
        }
        let mut keys = jwt::KeySet::default();
        if let Some(f) = &file.jwks_file {
            let path = dir.join(f);
            match std::fs::read_to_string(&path) {
                Ok(text) => match jwt::KeySet::from_jwks(&text) {
                    Ok(set) => keys.keys.extend(set.keys),
                    Err(e) => errors.push(format!("auth.jwks_file {}: {e}", path.display())),
                },
                Err(e) => errors.push(format!(
                    "auth.jwks_file {}: cannot read: {e}",
                    path.display()
                )),
            }
        }
        for f in &file.public_key_files {
            let path = dir.join(f);
            match std::fs::read(&path) {
                Ok(bytes) => match jwt::KeySet::pem(&bytes) {
                    Ok(k) => keys.keys.push(k),
                    Err(e) => errors.push(format!("auth.public_key_files {}: {e}", path.display())),
                },
                Err(e) => errors.push(format!(
                    "auth.public_key_files {}: cannot read: {e}",
                    path.display()
                )),
            }
        }
        let secrets = [
            (
                "hs256_secret_env",
                file.hs256_secret_env.as_ref().map(|var| {
                    std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
                }),
            ),
            (
                "hs256_secret_file",
                file.hs256_secret_file.as_ref().map(|f| {
                    let path = dir.join(f);
                    std::fs::read_to_string(&path)
                        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                }),
            ),
        ];
        for (key, secret) in secrets {
            let Some(secret) = secret else { continue };
            match secret {
                Ok(secret) if secret.len() >= 32 => {
                    match jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()) {
                        Ok(k) => keys.keys.push(jwt::Key {
                            kid: None,
                            alg: Some(Algorithm::HS256),
                            key: k,
                        }),
                        Err(e) => errors.push(format!("auth.{key}: {e}")),
                    }
                }
                Ok(_) => errors.push(format!(
                    "auth.{key}: the secret is shorter than 32 bytes; use a longer random secret"
                )),
                Err(e) => errors.push(format!("auth.{key}: {e}")),
            }
            if !algorithms.contains(&Algorithm::HS256) {
                errors.push(format!(
                    "auth.{key} is set but \"HS256\" is not in auth.algorithms"
                ));
            }
        }
        let source = match &file.jwks_url {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    errors.push(format!(
                        "auth.jwks_url {url:?} must start with https:// (or http:// on a trusted network)"
                    ));
                } else if url.parse::<http::Uri>().is_err() {
                    errors.push(format!("auth.jwks_url {url:?} is not a URL"));
                }
                let tls = if url.starts_with("https://") {
                    match jwks::client_tls(
                        file.jwks_ca_file.as_ref().map(|f| dir.join(f)).as_deref(),
                    ) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            errors.push(format!("auth.jwks_ca_file: {e}"));
                            None
                        }
                    }
                } else {
                    None
                };
                Keys::Remote(jwks::Remote {
                    tls,
                    url: url.clone(),
                    ttl: Duration::from_secs(file.jwks_ttl_seconds.unwrap_or(300).max(1)),
                    min_refresh: Duration::from_secs(file.jwks_min_refresh_seconds.unwrap_or(30)),
                })
            }
            None => {
                for k in &keys.keys {
                    if !algorithms.iter().any(|a| a.family() == k.key.family()) {
                        errors.push(format!(
                            "auth: a {:?} key is configured but auth.algorithms has no algorithm of that family",
                            k.key.family()
                        ));
                        break;
                    }
                }
                Keys::Static(Arc::new(keys))
            }
        };
        if let Some(c) = &file.cookie {
            if c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"=;,\"".contains(&b))
            {
                errors.push(format!("auth.cookie {c:?} is not a cookie name"));
            }
        }
        for o in &file.allowed_origins {
            let host = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .map(|h| h.trim_end_matches('/'));
            if host.is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#', '@'])) {
                errors.push(format!(
                    "auth.allowed_origins: {o:?} is not an origin; write scheme://host[:port], e.g. \"https://app.example.com\""
                ));
            }
        }
        let mut strip_headers = Vec::new();
        for h in &file.strip_headers {
            match HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) => strip_headers.push(name),
                Err(_) => errors.push(format!("auth.strip_headers: {h:?} is not a header name")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AuthConfig {
            rules: jwt::Rules {
                algorithms,
                issuer: file.issuer.clone(),
                audiences: file.audiences.clone(),
                leeway: file.leeway_seconds.unwrap_or(30),
                max_token_bytes: file.max_token_bytes.unwrap_or(8192),
                roles_claim: file.roles_claim.clone().unwrap_or_else(|| "roles".into()),
            },
            keys: source,
            cookie: file.cookie.clone(),
            allowed_origins: file.allowed_origins.clone(),
            admin_roles: file.admin_roles.clone(),
            strip_headers,
        })
    }

    /// The token of a request: `Authorization: Bearer` first, else the configured cookie.
    pub fn credential<'h>(&self, headers: &'h HeaderMap) -> Option<(&'h str, Via)> {
        if let Some(v) = headers.get(header::AUTHORIZATION) {
            let v = v.to_str().ok()?;
            let (scheme, token) = v.split_once(' ')?;
            return scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| (token.trim(), Via::Bearer));
        }
        let name = self.cookie.as_deref()?;
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (v.trim(), Via::Cookie))
            .filter(|(v, _)| !v.is_empty())
    }

    /// Verifies a token.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jwt::precheck(token, &self.rules)?;
        let keys = match &self.keys {
            Keys::Static(k) => k.clone(),
            Keys::Remote(r) => r
                .keys(header.kid.as_deref())
                .await
                .ok_or(TokenError::KeysUnavailable)?,
        };
        jwt::verify(token, &header, &keys, &self.rules)
    }

    fn is_admin(&self, id: &Identity) -> bool {
        id.roles.iter().any(|r| self.admin_roles.contains(r))
    }
}

/// The outcome of the edge checks for one request.
pub struct Verdict {
    pub identity: Option<Identity>,
}

/// Authentication, authorisation and CSRF for one request. `param` looks up a path
/// parameter of the matched route (for `owner`).
pub async fn check(
    auth: Option<&AuthConfig>,
    access: &Access,
    method: &Method,
    headers: &HeaderMap,
    param: impl FnOnce(&str) -> Option<String>,
) -> Result<Verdict, Denied> {
    let Some(auth) = auth else {
        // Authentication off (no [auth] table); validation refused policies needing it.
        return Ok(Verdict { identity: None });
    };
    if access.auth == AuthMode::Public || is_preflight(method, headers) {
        return Ok(Verdict { identity: None });
    }
    let (identity, via) = match auth.credential(headers) {
        Some((token, via)) => (auth.verify(token).await.map_err(Denied::InvalidToken)?, via),
        None if access.auth == AuthMode::Optional => return Ok(Verdict { identity: None }),
        None => return Err(Denied::Unauthenticated),
    };
    if !access.roles.is_empty() && !identity.roles.iter().any(|r| access.roles.contains(r)) {
        return Err(Denied::Role);
    }
    if let Some(owner) = &access.owner {
        let is_owner = param(owner).is_some_and(|v| v == identity.subject);
        if !is_owner && !auth.is_admin(&identity) {
            return Err(Denied::Owner);
        }
    }
    if via == Via::Cookie && csrf::is_unsafe(method) {
        csrf::check(headers, &auth.allowed_origins).map_err(Denied::Csrf)?;
    }
    Ok(Verdict {
        identity: Some(identity),
    })
}

/// A CORS preflight: browsers send it without credentials, so it passes anonymously
/// (no identity is injected) and the upstream answers it; the real request that follows
/// is checked as usual.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Sets the verified identity headers (client-sent ones were removed before).
pub fn inject(headers: &mut HeaderMap, identity: &Identity) {
    if let Ok(v) = HeaderValue::from_str(&identity.subject) {
        headers.insert(&SUBJECT_HEADER, v);
    }
    if !identity.roles.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&identity.roles.join(",")) {
            headers.insert(&ROLES_HEADER, v);
        }
    }
}

/// Whether a client header claims an identity: `X-Ficus-*` or `X-User-*`, in any case,
/// with `_` for `-` (some frameworks read them as the same).
pub fn is_identity_header(name: &HeaderName) -> bool {
    let b = name.as_str().as_bytes();
    let prefixed = |prefix: &[u8]| {
        b.len() > prefix.len()
            && b[..prefix.len()]
                .iter()
                .zip(prefix)
                .all(|(c, want)| c == want || (*want == b'-' && *c == b'_'))
    };
    prefixed(b"x-ficus-") || prefixed(b"x-user-")
}

/// Removes every client-sent identity header, and those of `extra`, in every spelling.
pub fn strip_identity(headers: &mut HeaderMap, extra: &[HeaderName]) {
    let hit = |k: &HeaderName| {
        is_identity_header(k)
            || extra.iter().any(|e| {
                e.as_str().len() == k.as_str().len()
                    && e.as_str()
                        .bytes()
                        .zip(k.as_str().bytes())
                        .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
            })
    };
    if !headers.keys().any(hit) {
        return;
    }
    let names: Vec<HeaderName> = headers.keys().filter(|k| hit(k)).cloned().collect();
    for name in names {
        headers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_in_every_spelling_are_stripped() {
        let mut h = HeaderMap::new();
        for name in [
            "x-ficus-subject",
            "X-Ficus-Roles",
            "x_ficus_subject",
            "x-user-id",
            "X_USER_ID",
            "x-remote-user",
            "x_remote_user",
            "x-request-id",
            "x-userland",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("1"),
            );
        }
        h.append("x-ficus-subject", HeaderValue::from_static("2"));
        strip_identity(&mut h, &[HeaderName::from_static("x-remote-user")]);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-request-id", "x-userland"]);
    }
}
