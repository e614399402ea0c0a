//! Serde types that mirror routes.toml exactly (`deny_unknown_fields` everywhere).
//!
//! Nothing here is validated beyond types: [`super::table::RouteTable`] turns a
//! [`RoutesFile`] into the checked table the data plane uses. Keys documented in
//! docs/routes.md; keep the two in step.

use std::collections::BTreeMap;

use serde::Deserialize;
use shadow_compare::{ArrayModeFile, NumbersFile};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Name of the upstream that serves every request no route claims.
    pub legacy: String,
    pub listen: ListenFile,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub shadow: ShadowGlobalFile,
    /// `[auth]`: how tokens are verified. Without it, authentication is off (logged at start).
    pub auth: Option<AuthFile>,
    /// `[default]`: the policy of requests that no route claims.
    #[serde(default)]
    pub default: DefaultFile,
    #[serde(default)]
    pub limits: LimitsFile,
    /// `[headers]`: response hardening applied to every response.
    #[serde(default)]
    pub headers: HeadersFile,
}

/// `[auth]`: JWT verification and the edge's identity rules (docs/security.md).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// Required `iss`; when absent, `iss` is not checked.
    pub issuer: Option<String>,
    /// Accepted `aud` values (any of); when empty, `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allow-list of algorithms: "HS256", "RS256", "ES256". Never taken from the token.
    pub algorithms: Vec<String>,
    /// JWKS document on disk (relative to routes.toml).
    pub jwks_file: Option<String>,
    /// JWKS over HTTP: cached for `jwks_ttl_seconds`, refetched on an unknown `kid` at most
    /// once per `jwks_min_refresh_seconds`.
    pub jwks_url: Option<String>,
    pub jwks_ttl_seconds: Option<u64>,
    /// CA certificates (PEM) trusted for an `https://` JWKS URL, instead of the system's.
    pub jwks_ca_file: Option<String>,
    pub jwks_min_refresh_seconds: Option<u64>,
    /// Public keys in PEM (RSA or EC), relative to routes.toml.
    #[serde(default)]
    pub public_key_files: Vec<String>,
    /// Environment variable holding the HS256 shared secret.
    pub hs256_secret_env: Option<String>,
    /// File holding the HS256 shared secret (relative to routes.toml; trailing newline ignored).
    pub hs256_secret_file: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30).
    pub leeway_seconds: Option<u64>,
    /// Cookie that may carry the token (then CSRF rules apply to unsafe methods).
    pub cookie: Option<String>,
    /// Origins allowed to send cookie-authenticated unsafe requests.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Roles that pass every `owner` check.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    /// Claim holding the roles: a string or an array of strings (default "roles").
    pub roles_claim: Option<String>,
    /// Tokens longer than this are refused before decoding (default 8192).
    pub max_token_bytes: Option<usize>,
    /// More client headers to remove on every request (besides `X-Ficus-*`, `X-User-*`).
    #[serde(default)]
    pub strip_headers: Vec<String>,
}

/// How a route treats credentials.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No token needed; none is verified and no identity is passed on.
    Public,
    /// A token is verified when present (a bad one is 401); anonymous requests pass.
    Optional,
    /// A valid token is required.
    #[default]
    Required,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Public => "public",
            AuthMode::Optional => "optional",
            AuthMode::Required => "required",
        }
    }
}

/// `[default]`: policy of the catch-all (requests no route claims).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DefaultFile {
    pub auth: Option<AuthMode>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub max_body_bytes: Option<u64>,
    pub content_security_policy: Option<String>,
}

/// `[limits]`: request limits enforced before anything is forwarded.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Request head size (request line + headers), 431 beyond (default 32768).
    pub max_header_bytes: Option<usize>,
    /// Number of request headers, 431 beyond (default 100).
    pub max_headers: Option<usize>,
    /// Request target length, 414 beyond (default 8192).
    pub max_uri_bytes: Option<usize>,
    /// Default request body limit for every route, 413 beyond (default: none).
    pub max_body_bytes: Option<u64>,
    /// Time to receive a whole request head from its first byte; 408 and the connection
    /// closed after it (default 10000).
    pub header_read_timeout_ms: Option<u64>,
    /// How long an HTTP/1 connection may wait for its next request head to be complete,
    /// counted from the end of the previous response (or from accept); closed silently
    /// after it (default 60000, and never less than header_read_timeout_ms).
    pub idle_timeout_ms: Option<u64>,
    /// Longest wait for the next piece of a request body, 408 after it (default 30000).
    pub body_read_timeout_ms: Option<u64>,
    /// Client connections served at once per process; more are closed at accept (default 10000).
    pub max_connections: Option<usize>,
    /// Requests per client address (token bucket).
    pub per_client: Option<RateFile>,
    /// Requests per authenticated subject (token bucket).
    pub per_subject: Option<RateFile>,
}

/// A token-bucket rate: `requests_per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateFile {
    pub requests_per_second: f64,
    pub burst: Option<u32>,
}

/// `[headers]`: security headers on every response.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadersFile {
    /// Default `Content-Security-Policy` (default "default-src 'none'; frame-ancestors 'none'").
    pub content_security_policy: Option<String>,
    /// Set to false to leave responses as the upstream sent them (default true).
    pub harden: Option<bool>,
}

/// `[shadow]`: process-wide settings of shadow traffic.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowGlobalFile {
    /// Shadow requests in flight across all routes (default 256); beyond it they are dropped.
    pub max_concurrency: Option<usize>,
    /// SQLite file of sampled mismatches (default `ficus-shadow.db` next to routes.toml).
    pub store: Option<String>,
    /// Mismatches kept per route (reservoir sample, default 100).
    pub samples_per_route: Option<usize>,
    /// Bytes kept of each body stored with a sampled mismatch (default 65536).
    pub sample_body_bytes: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    pub proxy: String,
    pub admin: String,
    /// Peers (CIDR or address) whose `X-Forwarded-*`/`Forwarded` headers are kept and appended to.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// `[listen.tls]`: terminate TLS on the public listener (docs/tls.md).
    pub tls: Option<TlsFile>,
}

/// `[listen.tls]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Default certificate chain (PEM), relative to routes.toml.
    pub cert: String,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// More certificates, chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<TlsCertFile>,
    /// Lowest protocol version: "1.2" (default) or "1.3".
    pub min_version: Option<String>,
    /// `Strict-Transport-Security` value on TLS responses ("" disables;
    /// default "max-age=31536000; includeSubDomains").
    pub hsts: Option<String>,
    /// Time allowed for a TLS handshake (default 10000).
    pub handshake_timeout_ms: Option<u64>,
}

/// One SNI certificate of `[listen.tls]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsCertFile {
    pub cert: String,
    pub key: String,
    /// Host names served with it: exact ("api.example.com") or one-label wildcards
    /// ("*.example.com").
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Time given to in-flight requests on SIGTERM/SIGINT or handoff (default 30000).
    pub grace_period_ms: Option<u64>,
    /// During a drain, idle HTTP/1 keep-alive connections are closed after this long (default 1000).
    pub drain_idle_ms: Option<u64>,
    /// Close client connections idle for this long (default 60000).
    pub client_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub url: String,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// Idle keep-alive connections kept per worker thread (default 256).
    pub max_idle_per_thread: Option<usize>,
    /// Send the upstream's own authority as `Host` instead of the client's (default false).
    #[serde(default)]
    pub rewrite_host: bool,
    /// Canary circuit breaker: consecutive failures that open it (default 5).
    pub breaker_failures: Option<u32>,
    /// How long an open breaker skips this upstream (default 10000).
    pub breaker_cooldown_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Legacy,
    Extracted,
    /// Legacy answers; a copy goes to `extracted` and the responses are compared.
    Shadow,
    /// A sticky share of cohorts goes to `extracted`, the rest to legacy.
    Canary,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Extracted => "extracted",
            Mode::Shadow => "shadow",
            Mode::Canary => "canary",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    pub path: String,
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub mode: Mode,
    pub extracted: Option<String>,
    pub shadow: Option<ShadowFile>,
    pub canary: Option<CanaryFile>,
    pub verify: Option<VerifyFile>,
    /// "public" | "optional" | "required" (default: required).
    pub auth: Option<AuthMode>,
    /// The caller needs any of these roles (403 otherwise).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Path parameter that must equal the token subject, unless the caller has an admin role.
    pub owner: Option<String>,
    /// Request body limit of this route (413 beyond).
    pub max_body_bytes: Option<u64>,
    /// This route's `Content-Security-Policy` (overrides `[headers]`).
    pub content_security_policy: Option<String>,
    /// Diff-gated autopilot (docs/autopilot.md).
    pub autopilot: Option<AutopilotFile>,
    /// A concrete path `ficus audit` probes for this route (`{param}`s filled in by the
    /// audit), for patterns whose `{*rest}` needs a real resource, e.g.
    /// "/api/users/{user_id}/favorites".
    pub audit_path: Option<String>,
}

/// `[routes.autopilot]`: moves the route from shadow through canary steps to extracted
/// while every gate holds, and back the moment one is breached.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutopilotFile {
    /// Canary percents in order (default [1, 5, 25, 50, 100]); reaching 100 means extracted.
    pub steps: Option<Vec<f64>>,
    /// Requests needed per step, on each side (default 500).
    pub min_requests: Option<u64>,
    /// Largest share of compared responses that may differ, after noise rules (default 0.001).
    pub max_mismatch_rate: Option<f64>,
    /// Largest share of 5xx on the extracted side (default 0.005).
    pub max_error_rate: Option<f64>,
    /// Largest extracted p99 over legacy p99 (default 1.2).
    pub max_p99_ratio: Option<f64>,
    /// Length of a step's window (default 60).
    pub interval_seconds: Option<u64>,
    /// On a breached gate: "legacy" (default) or "previous" (the last step that held).
    pub on_breach: Option<String>,
}

/// `[routes.verify]`: with `mode = "extracted"`, keep comparing against legacy for a sample
/// (reverse shadow), so a regression found after the flip can be rolled back with evidence.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifyFile {
    /// Fraction of eligible requests also sent to legacy and compared.
    pub sample: f64,
}

/// `[routes.canary]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CanaryFile {
    /// Share of cohorts (0..=100) sent to `extracted`.
    pub percent: f64,
    /// "subject" (default: the verified token subject, the client address for anonymous
    /// callers), "cookie:NAME", "header:NAME" or "client_ip".
    pub cohort: Option<String>,
    /// "legacy" (default): idempotent requests that fail on `extracted` (connect error or
    /// 5xx) are retried on legacy; "none": no fallback.
    pub fallback: Option<String>,
    /// Header whose value ("legacy" | "extracted") forces a side, for `override_roles` only.
    pub override_header: Option<String>,
    #[serde(default)]
    pub override_roles: Vec<String>,
    /// Cohort keys always on `extracted`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Cohort keys never on `extracted`.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Also compare: requests on the extracted side are mirrored to legacy, requests on
    /// legacy to the extracted side (noise rules and limits from `[routes.shadow]`).
    #[serde(default)]
    pub compare: bool,
}

/// What shadow mode does with unsafe methods (POST, PUT, PATCH, DELETE).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Writes {
    /// Never mirrored.
    #[default]
    Skip,
    /// Mirrored with `X-Ficus-Shadow: dry-run` and an `Idempotency-Key`.
    DryRun,
}

/// `[routes.shadow]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowFile {
    /// Fraction of eligible requests mirrored, by cohort (default 1.0).
    pub sample: Option<f64>,
    /// Shadow request timeout (default 2000).
    pub timeout_ms: Option<u64>,
    /// Larger request or response bodies: shadow skipped (default 1 MiB).
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub writes: Writes,
    /// Cohort key for sampling: "header:NAME", "cookie:NAME" or "client_ip" (default).
    pub cohort: Option<String>,
    /// Shadow requests in flight for this route (default 64).
    pub max_concurrency: Option<usize>,
    /// Also send a sample of safe requests to legacy twice and ignore fields that differ.
    #[serde(default)]
    pub learn_noise: bool,
    /// Fraction of mirrored safe requests used for learning (default 0.05).
    pub learn_sample: Option<f64>,
    /// JSON pointer patterns redacted from stored request and response bodies.
    #[serde(default)]
    pub redact: Vec<String>,
    // Noise rules, as shadow_compare::NoiseRulesFile:
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub compare_headers: Vec<String>,
    #[serde(default)]
    pub arrays: BTreeMap<String, ArrayModeFile>,
    #[serde(default)]
    pub numbers: NumbersFile,
}
