//! The checked route table: the only form of configuration the data plane sees.
//!
//! [`RouteTable::build`] validates a whole [`RoutesFile`] and reports every problem at
//! once, each with its line (looked up in the file text) and the fix. A table is
//! immutable once built; reload builds a new one and swaps it in whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
use ipnet::IpNet;

use super::error::{ConfigError, ConfigErrors, line_of};
use super::file::{AuthMode, Mode, RouteFile, RoutesFile};
use crate::auth::{Access, AuthConfig, harden};
use crate::breaker::Breaker;
use crate::canary::CanaryPolicy;
use crate::limits::Limits;
use crate::metrics::{Metrics, RouteMetrics, UpstreamMetrics};
use crate::router::{self, Methods, PathPattern, Rule};
use crate::shadow::ShadowPolicy;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(30_000);
pub const DEFAULT_MAX_IDLE_PER_THREAD: usize = 256;
/// Upstream label of responses Ficus produced itself (edge refusals).
pub const EDGE_UPSTREAM: &str = "ficus";
/// Route name used in metrics and logs for requests no route claims.
pub const DEFAULT_ROUTE: &str = "_default";

/// An upstream service, resolved and ready for the connection pools.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    pub authority_header: HeaderValue,
    /// Identifies the per-thread connection pool; equal for equal authorities, so pools
    /// of unchanged upstreams survive a reload.
    pub pool_key: u64,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_idle_per_thread: usize,
    pub rewrite_host: bool,
    pub metrics: UpstreamMetrics,
    /// Canary circuit breaker (used when this upstream is a canary's extracted side).
    pub breaker: Breaker,
}

/// A validated route.
pub struct Route {
    pub name: String,
    pub pattern: PathPattern,
    pub methods: Methods,
    pub mode: Mode,
    /// Index into [`RouteTable::upstreams`] of the upstream that answers.
    pub target: usize,
    /// The extracted upstream named by the route, if any.
    pub extracted: Option<usize>,
    pub metrics: RouteMetrics,
    /// Metrics of requests Ficus answered itself (refused at the edge): upstream "ficus".
    pub edge_metrics: RouteMetrics,
    /// Shadow policy, when `mode = "shadow"`.
    pub shadow: Option<Arc<ShadowPolicy>>,
    /// Canary policy and the extracted side's metrics, when `mode = "canary"`.
    pub canary: Option<(CanaryPolicy, RouteMetrics)>,
    /// Comparison policy of a canary with `compare = true`.
    pub canary_compare: Option<Arc<ShadowPolicy>>,
    /// Reverse-shadow policy of `[routes.verify]`, used when `mode = "extracted"`.
    pub verify: Option<Arc<ShadowPolicy>>,
    /// Who may call the route.
    pub access: Access,
    /// `[routes.autopilot]`, when the route opted in.
    pub autopilot: Option<crate::autopilot::gates::Policy>,
}

impl Rule for Route {
    fn pattern(&self) -> &PathPattern {
        &self.pattern
    }
    fn methods(&self) -> &Methods {
        &self.methods
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub grace_period: Duration,
    pub drain_idle: Duration,
    pub client_idle_timeout: Duration,
}

pub struct RouteTable {
    /// Hash of the effective configuration (after environment overrides).
    pub version: String,
    pub loaded_at: SystemTime,
    pub source: PathBuf,
    pub listen: Listen,
    pub server: ServerSettings,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Index of the upstream named by `legacy`.
    pub legacy: usize,
    /// Sorted most specific first.
    pub routes: Vec<Route>,
    /// Metrics of requests that no route claims.
    pub default_metrics: RouteMetrics,
    pub default_edge_metrics: RouteMetrics,
    /// Access policy of requests that no route claims (`[default]`).
    pub default_access: Access,
    /// `[auth]`; `None` means authentication is off.
    pub auth: Option<AuthConfig>,
    pub limits: Limits,
    /// `[listen.tls]`, checked (certificates loaded).
    pub tls: Option<crate::tls::TlsSettings>,
    /// Whether responses get the hardening headers (`[headers] harden`).
    pub harden: bool,
    /// The file as validated (with the overlay applied), for the admin API and `ficus check`.
    pub file: RoutesFile,
    /// Route decisions in force from the state file (overlay.rs).
    pub overlay: crate::overlay::Overlay,
    /// Decisions of the state file ignored because routes.toml changed those routes.
    pub overlay_stale: Vec<String>,
}

/// The decision for one request.
pub struct RouteMatch<'t> {
    pub name: &'t str,
    pub mode: Mode,
    pub upstream: &'t Arc<Upstream>,
    pub metrics: &'t RouteMetrics,
    /// Where requests refused at the edge are counted (upstream label "ficus").
    pub edge_metrics: &'t RouteMetrics,
    /// With `mode = "shadow"`: the policy and the candidate upstream.
    pub shadow: Option<(&'t Arc<ShadowPolicy>, &'t Arc<Upstream>)>,
    /// With `mode = "canary"`: the policy, the extracted upstream and its metrics.
    pub canary: Option<(&'t CanaryPolicy, &'t Arc<Upstream>, &'t RouteMetrics)>,
    /// With `mode = "canary"` and `compare = true`: the comparison policy.
    pub canary_compare: Option<&'t Arc<ShadowPolicy>>,
    /// With `mode = "extracted"` and `[routes.verify]`: the policy and the legacy upstream.
    pub verify: Option<(&'t Arc<ShadowPolicy>, &'t Arc<Upstream>)>,
    pub access: &'t Access,
    /// The route's pattern (none for the catch-all), for path parameters.
    pub pattern: Option<&'t PathPattern>,
}

impl RouteTable {
    /// Picks the route for a request; unmatched requests go to `legacy` unchanged.
    pub fn route(&self, method: &Method, path: &str) -> RouteMatch<'_> {
        match router::route(&self.routes, method, path) {
            Some(i) => {
                let r = &self.routes[i];
                RouteMatch {
                    name: &r.name,
                    mode: r.mode,
                    upstream: &self.upstreams[r.target],
                    metrics: &r.metrics,
                    edge_metrics: &r.edge_metrics,
                    shadow: match (&r.shadow, r.extracted) {
                        (Some(p), Some(e)) if r.mode == Mode::Shadow => {
                            Some((p, &self.upstreams[e]))
                        }
                        _ => None,
                    },
                    canary: match (&r.canary, r.extracted) {
                        (Some((p, m)), Some(e)) if r.mode == Mode::Canary => {
                            Some((p, &self.upstreams[e], m))
                        }
                        _ => None,
                    },
                    canary_compare: r.canary_compare.as_ref().filter(|_| r.mode == Mode::Canary),
                    verify: match &r.verify {
                        Some(p) if r.mode == Mode::Extracted => {
                            Some((p, &self.upstreams[self.legacy]))
                        }
                        _ => None,
                    },
                    access: &r.access,
                    pattern: Some(&r.pattern),
                }
            }
            None => RouteMatch {
                name: DEFAULT_ROUTE,
                mode: Mode::Legacy,
                upstream: &self.upstreams[self.legacy],
                metrics: &self.default_metrics,
                edge_metrics: &self.default_edge_metrics,
                shadow: None,
                canary: None,
                canary_compare: None,
                verify: None,
                access: &self.default_access,
                pattern: None,
            },
        }
    }

    /// Validates `file` (whose text is `text`, for line numbers) into a table.
    /// `keep`: the certificates serving now, kept if `[listen.tls]` is unchanged and its
    /// files do not load (see [`crate::tls::TlsSettings::build`]).
    pub fn build(
        source: &Path,
        text: &str,
        file: RoutesFile,
        metrics: &Metrics,
        keep: Option<&crate::tls::LastGood>,
    ) -> Result<Self, ConfigErrors> {
        let lines = SourceMap::new(text);
        let mut errors = Vec::new();
        let mut err = |line: Option<usize>, message: String| {
            errors.push(ConfigError {
                file: source.to_owned(),
                line,
                message,
            });
        };

        let listen = {
            let parse_addr =
                |key: &str, value: &str, err: &mut dyn FnMut(Option<usize>, String)| {
                    value.parse::<SocketAddr>().map_err(|_| {
                    err(
                        lines.key(&["listen", key]),
                        format!("listen.{key} {value:?} is not an address; write ip:port, e.g. \"127.0.0.1:8080\""),
                    )
                })
                };
            let proxy = parse_addr("proxy", &file.listen.proxy, &mut err);
            let admin = parse_addr("admin", &file.listen.admin, &mut err);
            let mut trusted = Vec::new();
            for t in &file.listen.trusted_proxies {
                match t
                    .parse::<IpNet>()
                    .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                {
                    Ok(net) => trusted.push(net),
                    Err(_) => err(
                        lines.key(&["listen", "trusted_proxies"]),
                        format!(
                            "listen.trusted_proxies: {t:?} is not an address or CIDR range like \"10.0.0.0/8\""
                        ),
                    ),
                }
            }
            match (proxy, admin) {
                (Ok(proxy), Ok(admin)) => {
                    if proxy == admin && proxy.port() != 0 {
                        err(
                            lines.key(&["listen", "admin"]),
                            format!(
                                "listen.admin {admin} equals listen.proxy; the admin API must not share the public listener"
                            ),
                        );
                    }
                    Some(Listen {
                        proxy,
                        admin,
                        trusted_proxies: trusted,
                    })
                }
                _ => None,
            }
        };

        let ms =
            |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
        let server = ServerSettings {
            grace_period: ms(file.server.grace_period_ms, Duration::from_secs(30)),
            drain_idle: ms(file.server.drain_idle_ms, Duration::from_secs(1)),
            client_idle_timeout: ms(file.server.client_idle_timeout_ms, Duration::from_secs(60)),
        };

        let dir = source.parent().unwrap_or(Path::new("."));
        let auth = match &file.auth {
            Some(a) => match AuthConfig::build(a, dir) {
                Ok(a) => Some(a),
                Err(messages) => {
                    let line = lines.key(&["auth"]);
                    for m in messages {
                        err(line, m);
                    }
                    None
                }
            },
            None => None,
        };
        let tls = match &file.listen.tls {
            Some(t) => match crate::tls::TlsSettings::build(t, dir, keep) {
                Ok(s) => Some(s),
                Err(messages) => {
                    let line = lines.key(&["listen", "tls"]);
                    for m in messages {
                        err(line, m);
                    }
                    None
                }
            },
            None => None,
        };
        let limits = match Limits::build(&file.limits) {
            Ok(l) => Some(l),
            Err(messages) => {
                let line = lines.key(&["limits"]);
                for m in messages {
                    err(line, m);
                }
                None
            }
        };
        let default_csp = match &file.headers.content_security_policy {
            Some(csp) => HeaderValue::from_str(csp).unwrap_or_else(|_| {
                err(
                    lines.key(&["headers", "content_security_policy"]),
                    "headers.content_security_policy is not a valid header value".into(),
                );
                HeaderValue::from_static(harden::DEFAULT_CSP)
            }),
            None => HeaderValue::from_static(harden::DEFAULT_CSP),
        };
        let has_auth = file.auth.is_some();
        let default_access = build_access(
            "[default]",
            AccessSpec {
                auth: file.default.auth,
                roles: &file.default.roles,
                owner: None,
                max_body: file.default.max_body_bytes.or(file.limits.max_body_bytes),
                csp: file.default.content_security_policy.as_deref(),
            },
            None,
            has_auth,
            &default_csp,
            &mut |m| err(lines.key(&["default"]), m),
        );

        let mut upstreams = Vec::new();
        for (name, u) in &file.upstreams {
            let line = lines
                .key(&["upstreams", name, "url"])
                .or(lines.key(&["upstreams", name]));
            let authority = match parse_upstream_url(&u.url) {
                Ok(a) => a,
                Err(why) => {
                    err(line, format!("upstream {name:?}: url {:?} {why}", u.url));
                    continue;
                }
            };
            for (key, value) in [
                ("connect_timeout_ms", u.connect_timeout_ms),
                ("request_timeout_ms", u.request_timeout_ms),
            ] {
                if value == Some(0) {
                    err(
                        lines.key(&["upstreams", name, key]),
                        format!("upstream {name:?}: {key} must be at least 1"),
                    );
                }
            }
            let Ok(authority_header) = HeaderValue::from_str(&authority) else {
                err(
                    line,
                    format!(
                        "upstream {name:?}: url {:?} has an authority that is not a valid header",
                        u.url
                    ),
                );
                continue;
            };
            upstreams.push(Arc::new(Upstream {
                name: name.clone(),
                url: u.url.clone(),
                pool_key: fnv1a(authority.as_bytes()),
                authority,
                authority_header,
                connect_timeout: ms(u.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT),
                request_timeout: ms(u.request_timeout_ms, DEFAULT_REQUEST_TIMEOUT),
                max_idle_per_thread: u.max_idle_per_thread.unwrap_or(DEFAULT_MAX_IDLE_PER_THREAD),
                rewrite_host: u.rewrite_host,
                metrics: metrics.upstream(name),
                breaker: {
                    let (gauge, opened) = metrics.breaker(name);
                    Breaker::new(
                        u.breaker_failures.unwrap_or(5),
                        ms(u.breaker_cooldown_ms, Duration::from_secs(10)),
                        gauge,
                        opened,
                    )
                },
            }));
        }
        let declared = || {
            file.upstreams
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |name: &str| upstreams.iter().position(|u| u.name == name);

        let legacy = find(&file.legacy);
        if legacy.is_none() && !file.upstreams.contains_key(&file.legacy) {
            err(
                lines.key(&["legacy"]),
                format!(
                    "legacy = {:?} is not a declared upstream; declare [upstreams.{}] or use one of: {}",
                    file.legacy,
                    file.legacy,
                    declared()
                ),
            );
        }

        let mut routes: Vec<Route> = Vec::new();
        let mut seen: Vec<(&str, usize, PathPattern, Methods)> = Vec::new();
        for (i, r) in file.routes.iter().enumerate() {
            let at = |key: &str| lines.route_key(i, key).or(lines.route(i));
            let name = &r.name;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                err(
                    at("name"),
                    format!(
                        "route name {name:?} must be non-empty ASCII letters, digits, '-', '_' or '.'"
                    ),
                );
            }
            if name == "." || name == ".." {
                // URLs resolve dot segments (encoded or not) before sending: no client,
                // the dashboard included, could address /admin/routes/.. or its shadow data.
                err(
                    at("name"),
                    format!(
                        "route name {name:?} is a URL dot segment the admin API cannot address; pick another"
                    ),
                );
            }
            if name == DEFAULT_ROUTE {
                err(
                    at("name"),
                    format!(
                        "route name {DEFAULT_ROUTE:?} is reserved for unmatched requests; pick another"
                    ),
                );
            }
            if let Some((_, first, _, _)) = seen.iter().find(|(n, ..)| *n == name.as_str()) {
                err(
                    at("name"),
                    format!(
                        "route {name:?}: duplicate name (first used at line {}); route names must be unique",
                        lines
                            .route(*first)
                            .map_or_else(|| "?".to_owned(), |l| l.to_string())
                    ),
                );
            }
            let pattern = match PathPattern::parse(&r.path) {
                Ok(p) => Some(p),
                Err(e) => {
                    err(
                        at("path"),
                        format!("route {name:?}: path {:?}: {e}", r.path),
                    );
                    None
                }
            };
            let methods = parse_methods(r, &mut |m| err(at("methods"), m));
            let extracted = match (&r.extracted, r.mode) {
                (None, Mode::Extracted | Mode::Shadow | Mode::Canary) => {
                    err(
                        at("mode"),
                        format!(
                            "route {name:?}: mode = \"{}\" needs `extracted = \"<upstream>\"` (declared: {})",
                            r.mode.as_str(),
                            declared()
                        ),
                    );
                    None
                }
                (None, _) => None,
                (Some(u), _) => match find(u) {
                    Some(idx) => Some(idx),
                    None => {
                        if !file.upstreams.contains_key(u) {
                            err(
                                at("extracted"),
                                format!(
                                    "route {name:?}: extracted {u:?} is not a declared upstream; declare [upstreams.{u}] or use one of: {}",
                                    declared()
                                ),
                            );
                        }
                        None
                    }
                },
            };
            let shadow = match (&r.shadow, r.mode) {
                (Some(file), _) => match ShadowPolicy::build(name, file, metrics) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(messages) => {
                        let line = lines.route_key(i, "shadow").or(at("mode"));
                        for m in messages {
                            err(line, m);
                        }
                        None
                    }
                },
                // The defaults are valid by construction.
                (None, Mode::Shadow) => ShadowPolicy::build(name, &Default::default(), metrics)
                    .ok()
                    .map(Arc::new),
                (None, _) => None,
            };
            let canary = match (&r.canary, r.mode) {
                (Some(file), _) => match CanaryPolicy::build(name, file) {
                    Ok(p) => Some(p),
                    Err(messages) => {
                        let line = lines.route_key(i, "canary").or(at("mode"));
                        for m in messages {
                            err(line, m);
                        }
                        None
                    }
                },
                (None, Mode::Canary) => {
                    err(
                        at("mode"),
                        format!(
                            "route {name:?}: mode = \"canary\" needs a [routes.canary] table with `percent`"
                        ),
                    );
                    None
                }
                (None, _) => None,
            };
            // Comparisons beside a canary or after a cutover reuse [routes.shadow]'s rules.
            let comparison =
                |sample: Option<f64>, key: &str, err: &mut dyn FnMut(Option<usize>, String)| {
                    let mut file = r.shadow.clone().unwrap_or_default();
                    if sample.is_some() {
                        file.sample = sample;
                    }
                    match ShadowPolicy::build(name, &file, metrics) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(messages) => {
                            let line = lines.route_key(i, key).or(lines.route(i));
                            for m in messages {
                                err(line, m);
                            }
                            None
                        }
                    }
                };
            let canary_compare = match &r.canary {
                Some(c) if c.compare => comparison(None, "canary", &mut err),
                _ => None,
            };
            let verify = match &r.verify {
                Some(v) => comparison(Some(v.sample), "verify", &mut err),
                None => None,
            };
            let access = build_access(
                &format!("route {name:?}"),
                AccessSpec {
                    auth: r.auth,
                    roles: &r.roles,
                    owner: r.owner.as_deref(),
                    max_body: r.max_body_bytes.or(file.limits.max_body_bytes),
                    csp: r.content_security_policy.as_deref(),
                },
                pattern.as_ref(),
                has_auth,
                &default_csp,
                &mut |m| err(at("auth"), m),
            );
            let autopilot = match &r.autopilot {
                Some(a) => {
                    let line = lines.route_key(i, "autopilot").or(lines.route(i));
                    if r.extracted.is_none() {
                        err(
                            line,
                            format!("route {name:?}: autopilot needs `extracted = \"<upstream>\"`"),
                        );
                    }
                    if r.canary.as_ref().is_some_and(|c| !c.compare) {
                        err(
                            line,
                            format!(
                                "route {name:?}: autopilot gates on comparisons; set [routes.canary] compare = true"
                            ),
                        );
                    }
                    match crate::autopilot::gates::Policy::build(name, a) {
                        Ok(p) => Some(p),
                        Err(messages) => {
                            for m in messages {
                                err(line, m);
                            }
                            None
                        }
                    }
                }
                None => None,
            };
            let (Some(pattern), Ok(methods)) = (pattern, methods) else {
                continue;
            };
            for (other, other_i, other_pattern, other_methods) in &seen {
                if router::overlaps((&pattern, &methods), (other_pattern, other_methods)) {
                    err(
                        at("path"),
                        format!(
                            "route {name:?} ({}) overlaps route {other:?} ({}, line {}) with the same specificity; make one path more specific or split their methods",
                            pattern.as_str(),
                            other_pattern.as_str(),
                            lines
                                .route(*other_i)
                                .map_or_else(|| "?".to_owned(), |l| l.to_string())
                        ),
                    );
                }
            }
            seen.push((name, i, pattern.clone(), methods.clone()));
            let target = match r.mode {
                Mode::Legacy | Mode::Shadow | Mode::Canary => legacy,
                Mode::Extracted => extracted,
            };
            let (Some(target), Some(_)) = (target, legacy) else {
                continue;
            };
            routes.push(Route {
                name: name.clone(),
                metrics: metrics.route(name, &upstreams[target].name, r.mode.as_str()),
                edge_metrics: metrics.route(name, EDGE_UPSTREAM, r.mode.as_str()),
                pattern,
                methods,
                mode: r.mode,
                target,
                canary: match (canary, extracted) {
                    (Some(p), Some(e)) => {
                        Some((p, metrics.route(name, &upstreams[e].name, r.mode.as_str())))
                    }
                    _ => None,
                },
                extracted,
                shadow,
                canary_compare,
                verify,
                access,
                autopilot,
            });
        }

        let (Some(listen), Some(legacy), Some(limits), true) =
            (listen, legacy, limits, errors.is_empty())
        else {
            if errors.is_empty() {
                // Unreachable in practice: every None above pushed an error. Keep the invariant "never empty".
                errors.push(ConfigError {
                    file: source.to_owned(),
                    line: None,
                    message: "invalid routes file".into(),
                });
            }
            return Err(ConfigErrors(errors));
        };
        router::sort_by_specificity(&mut routes);
        // The effective configuration: the file's text plus the environment overrides.
        let effective = format!("{text}\0{}\0{}", file.listen.proxy, file.listen.admin);
        let version = format!("{:016x}", fnv1a(effective.as_bytes()));
        Ok(RouteTable {
            version,
            loaded_at: SystemTime::now(),
            source: source.to_owned(),
            default_edge_metrics: metrics.route(
                DEFAULT_ROUTE,
                EDGE_UPSTREAM,
                Mode::Legacy.as_str(),
            ),
            default_metrics: metrics.route(
                DEFAULT_ROUTE,
                &upstreams[legacy].name,
                Mode::Legacy.as_str(),
            ),
            listen,
            server,
            upstreams,
            legacy,
            routes,
            default_access,
            auth,
            limits,
            tls,
            harden: file.headers.harden.unwrap_or(true),
            file,
            overlay: Default::default(),
            overlay_stale: Vec::new(),
        })
    }
}

/// The access keys of a route or of `[default]`.
struct AccessSpec<'a> {
    auth: Option<AuthMode>,
    roles: &'a [String],
    owner: Option<&'a str>,
    max_body: Option<u64>,
    csp: Option<&'a str>,
}

/// Checks an access policy. Without `[auth]`, authentication is off: an omitted `auth`
/// means public, and asking for more is an error (there is nothing to verify with).
fn build_access(
    who: &str,
    spec: AccessSpec<'_>,
    pattern: Option<&PathPattern>,
    has_auth: bool,
    default_csp: &HeaderValue,
    err: &mut dyn FnMut(String),
) -> Access {
    let auth = match (spec.auth, has_auth) {
        (Some(mode), true) => mode,
        (None, true) => AuthMode::Required,
        (None | Some(AuthMode::Public), false) => AuthMode::Public,
        (Some(mode), false) => {
            err(format!(
                "{who}: auth = \"{}\" needs an [auth] table to verify tokens with; add [auth] or use auth = \"public\"",
                mode.as_str()
            ));
            AuthMode::Public
        }
    };
    if !spec.roles.is_empty() && auth == AuthMode::Public {
        err(format!(
            "{who}: roles need an authenticated caller; set auth = \"required\" (and an [auth] table)"
        ));
    }
    if let Some(owner) = spec.owner {
        if auth == AuthMode::Public {
            err(format!(
                "{who}: owner = {owner:?} needs an authenticated caller; set auth = \"required\" (and an [auth] table)"
            ));
        }
        if let Some(p) = pattern {
            let named = p
                .segments()
                .iter()
                .any(|s| matches!(s, router::Segment::Param(n) if &**n == owner));
            if !named {
                err(format!(
                    "{who}: owner = {owner:?} is not a {{param}} of path {:?}",
                    p.as_str()
                ));
            }
        }
    }
    let csp = match spec.csp {
        Some(c) => HeaderValue::from_str(c).unwrap_or_else(|_| {
            err(format!(
                "{who}: content_security_policy is not a valid header value"
            ));
            default_csp.clone()
        }),
        None => default_csp.clone(),
    };
    Access {
        auth,
        roles: spec.roles.to_vec(),
        owner: spec.owner.map(str::to_owned),
        max_body: spec.max_body,
        csp,
    }
}

fn parse_methods(r: &RouteFile, err: &mut dyn FnMut(String)) -> Result<Methods, ()> {
    let Some(list) = &r.methods else {
        return Ok(None);
    };
    if list.is_empty() {
        err(format!(
            "route {:?}: methods = [] matches nothing; remove the key to allow every method",
            r.name
        ));
        return Err(());
    }
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for m in list {
        let upper = m.to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(method) if upper == *m => {
                if !out.contains(&method) {
                    out.push(method);
                }
            }
            Ok(_) => {
                err(format!(
                    "route {:?}: method {m:?} must be upper case: {upper:?}",
                    r.name
                ));
                ok = false;
            }
            Err(_) => {
                err(format!("route {:?}: {m:?} is not an HTTP method", r.name));
                ok = false;
            }
        }
    }
    if ok { Ok(Some(out)) } else { Err(()) }
}

/// Accepts `http://host[:port][/]`; returns `host:port`.
fn parse_upstream_url(url: &str) -> Result<String, &'static str> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(
            "uses https, which upstreams do not support yet; use http:// on a trusted network",
        );
    } else {
        return Err("must start with http://, e.g. \"http://127.0.0.1:8081\"");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err("must be scheme://host:port only, without path, query or credentials");
    }
    let uri: http::uri::Authority = authority
        .parse()
        .map_err(|_| "has an invalid host or port")?;
    if uri.host().is_empty() {
        return Err("has no host");
    }
    Ok(match uri.port_u16() {
        Some(_) => authority.to_owned(),
        None => format!("{authority}:80"),
    })
}

/// 64-bit FNV-1a: stable across processes, machines and Rust versions.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Line numbers of keys and tables in the routes file text.
struct SourceMap<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<String>>,
}

impl<'a> SourceMap<'a> {
    fn new(text: &'a str) -> Self {
        SourceMap {
            text,
            doc: toml_edit::Document::parse(text.to_owned()).ok(),
        }
    }

    fn key(&self, path: &[&str]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        for (i, k) in path.iter().enumerate() {
            let (key, item) = table.get_key_value(k)?;
            if i + 1 == path.len() {
                let span = key.span().or_else(|| item.span())?;
                return Some(line_of(self.text, span.start));
            }
            table = item.as_table_like()?;
        }
        None
    }

    fn route(&self, index: usize) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let t = doc.get("routes")?.as_array_of_tables()?.get(index)?;
        t.span().map(|s| line_of(self.text, s.start))
    }

    fn route_key(&self, index: usize, key: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let t = doc.get("routes")?.as_array_of_tables()?.get(index)?;
        let (k, item) = t.get_key_value(key)?;
        k.span()
            .or_else(|| item.span())
            .map(|s| line_of(self.text, s.start))
    }
}
