//! The request path: one function from a client request to a response.
//!
//! Invariants: the route table is loaded once per request and used to the end; nothing
//! on this path panics on client input; every response carries `X-Request-Id`; failures
//! of an upstream become a small JSON 502/504, never a dropped connection.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::{ClientBody, ResponseBody, UpstreamBody};
use super::headers::{self, Peer};
use crate::config::RouteTable;
use crate::state::Shared;
use crate::upstream::{self, UpstreamError};
use crate::{access_log, auth, canary, request_id, shadow};

static X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static(request_id::HEADER);

/// Per-connection context handed to every request on it.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub peer: Peer,
    /// The connection came through the TLS listener.
    pub tls: bool,
    /// The HTTP/1 connection's guard (framing verdicts); `None` on HTTP/2.
    pub guard: Option<Arc<super::guard::ConnGuard>>,
}

thread_local! {
    /// The table this thread's pools were last pruned for.
    static POOLS_FOR: Cell<usize> = const { Cell::new(0) };
}

#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn handle(
    mut req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
) -> impl Future<Output = Result<Response<ResponseBody>, std::convert::Infallible>> + Send {
    // A plain fn returning a block: the block uses its arguments in place, where an `async
    // fn` would keep a second copy of them in its future (rust-lang/rust#62958), and the
    // future is moved (copied) as a whole on its way into hyper.
    async move {
        let start = Instant::now();
        let shared = &ctx.shared;
        let table = shared.table.load_full();
        prune_pools_after_reload(&table);
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if request_id::is_acceptable(v) => v.clone(),
            _ => request_id::generate(),
        };
        let method = req.method().clone();
        let client_version = req.version();
        let framing = ctx.guard.as_ref().and_then(|g| g.next_request());

        // The edge checks that need no route: the path, once normalised, is the only spelling
        // routed, checked and forwarded. The verdict is boxed (a refusal is rare) and bound
        // once (the first binding is scoped): it lives in the request's future, which is
        // copied on its way into hyper.
        let early = {
            let early = match auth::path::normalise(req.uri().path()) {
                Ok(Cow::Borrowed(_)) => None,
                Ok(Cow::Owned(path)) => {
                    let pq = match req.uri().query() {
                        Some(q) => format!("{path}?{q}"),
                        None => path,
                    };
                    // Keep scheme and authority: HTTP/2 requests carry the host there.
                    let mut parts = req.uri().clone().into_parts();
                    match PathAndQuery::try_from(pq).map(|pq| {
                        parts.path_and_query = Some(pq);
                        Uri::from_parts(parts)
                    }) {
                        Ok(Ok(uri)) => {
                            *req.uri_mut() = uri;
                            None
                        }
                        _ => Some(Reject::new(
                            StatusCode::BAD_REQUEST,
                            "bad_path",
                            "invalid path",
                        )),
                    }
                }
                Err(e) => Some(Reject::new(
                    StatusCode::BAD_REQUEST,
                    e.reason(),
                    "invalid path",
                )),
            }
            .or_else(|| {
                let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
                (len > table.limits.max_uri_bytes).then(|| {
                    Reject::new(
                        StatusCode::URI_TOO_LONG,
                        "uri_too_long",
                        "request target too long",
                    )
                })
            });
            match framing {
                // Smuggling: the body's framing can't be trusted, so neither can the connection.
                Some(f) => {
                    Some(Reject::new(StatusCode::BAD_REQUEST, f.reason(), f.message()).closing())
                }
                None => early,
            }
            .map(Box::new)
        };
        let matched = table.route(&method, req.uri().path());
        let mut upstream = matched.upstream;
        let mut route_metrics = matched.metrics;
        let path_for_log = shared
            .access_log
            .and_then(|_| req.uri().path_and_query().cloned());
        let mut authenticated = false;

        let mut resp = 'resp: {
            if let Some(reject) = early {
                break 'resp (*reject).response(&request_id, shared);
            }
            // Per client address first: floods of bad tokens must not buy signature checks.
            if let Some(limit) = &table.limits.per_client {
                if let Err(wait) = limit.check(&ctx.peer.addr.ip()) {
                    break 'resp Reject::rate_limited(wait).response(&request_id, shared);
                }
            }
            // The override header of a canary is read (and removed: it is never forwarded,
            // whatever its name) before X-Ficus-* headers are stripped.
            let forced = matched
                .canary
                .and_then(|(p, ..)| p.override_header.as_ref())
                .and_then(|h| req.headers_mut().remove(h));
            // Identity hygiene: whatever the client claims about itself goes.
            auth::strip_identity(
                req.headers_mut(),
                table.auth.as_ref().map_or(&[], |a| &a.strip_headers),
            );
            let identity = match auth::check(
                table.auth.as_ref(),
                matched.access,
                &method,
                req.headers(),
                |name| {
                    matched
                        .pattern
                        .and_then(|p| p.captures(req.uri().path()))
                        .and_then(|caps| caps.into_iter().find(|(n, _)| *n == name))
                        .map(|(_, v)| v.to_owned())
                },
            )
            .await
            {
                Ok(v) => v.identity,
                Err(denied) => {
                    tracing::info!(target: "ficus::auth", route = matched.name, reason = denied.reason(), request_id = ?request_id, "request refused");
                    let mut r = Reject::new(denied.status(), denied.reason(), denied.message());
                    r.www_authenticate = denied.www_authenticate();
                    break 'resp r.response(&request_id, shared);
                }
            };
            if let (Some(limit), Some(id)) = (&table.limits.per_subject, &identity) {
                if let Err(wait) = limit.check(&id.subject) {
                    break 'resp Reject::rate_limited(wait).response(&request_id, shared);
                }
            }
            let declared_len = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let (Some(max), Some(len)) = (matched.access.max_body, declared_len) {
                if len > max {
                    // Refused before reading: hyper then closes the connection rather than
                    // draining a body nobody wants.
                    break 'resp Reject::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "request body too large",
                    )
                    .response(&request_id, shared);
                }
            }
            if let Some(id) = &identity {
                auth::inject(req.headers_mut(), id);
                authenticated = true;
            }

            // Canary: the cohort decides the side; safe requests sent to the extracted side may
            // fall back to legacy.
            // With a fallback, the extracted upstream's breaker gates it and hears every result.
            let mut fallback_to = None;
            let mut breaker = None;
            if let Some((policy, extracted, metrics)) = matched.canary {
                if policy.side(req.headers(), ctx.peer.ip.as_bytes(), forced.as_ref())
                    == canary::Side::Extracted
                    && (!policy.fallback || extracted.breaker.admit())
                {
                    if policy.fallback {
                        if canary::retryable(req.method()) {
                            fallback_to = Some(matched.upstream);
                        } else {
                            breaker = Some(&extracted.breaker);
                        }
                    }
                    upstream = extracted;
                    route_metrics = metrics;
                }
            }

            // One pass over the names decides whether any removal work is needed at all (an
            // upgrade request has an `Upgrade` header, so it needs cleaning too).
            let needs_cleaning = req.headers().keys().any(headers::needs_cleaning);
            let upgrade = needs_cleaning && headers::is_upgrade(client_version, req.headers());

            // Build the upstream request in place.
            let host_header = req.headers().get(header::HOST);
            let has_host_header = host_header.is_some();
            let host = host_header.cloned().or_else(|| {
                req.uri()
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            });

            {
                let h = req.headers_mut();
                // Room for the headers added below, so the map grows (and rehashes) once at most.
                h.reserve(8);
                if needs_cleaning {
                    headers::strip_hop_by_hop(h, upgrade);
                    h.remove(header::EXPECT);
                }
                let proto = if ctx.tls { "https" } else { "http" };
                headers::set_forwarding(h, &ctx.peer, host.as_ref(), proto);
                headers::add_via(h, client_version);
                h.insert(&X_REQUEST_ID, request_id.clone());
                if upstream.rewrite_host {
                    h.insert(header::HOST, upstream.authority_header.clone());
                } else if let (Some(host), false) = (&host, has_host_header) {
                    // HTTP/2 clients send `:authority`, not Host.
                    h.insert(header::HOST, host.clone());
                }
            }
            if req.uri().scheme().is_some() || req.uri().authority().is_some() {
                let pq = req
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/"));
                *req.uri_mut() = Uri::from(pq);
            }
            *req.version_mut() = Version::HTTP_11;

            let mut tap = None;
            let mut fault = None;
            let result = if upgrade {
                // Boxed: rare, and it would otherwise enlarge every request's future.
                Box::pin(forward_upgrade(req, upstream)).await
            } else {
                // Built in a block: the request is borrowed while the mirror is set up, and
                // a borrowed local would keep its room in the future across the await below.
                let req = {
                    let mut req = req.map(|body| {
                        if http_body::Body::is_end_stream(&body) {
                            UpstreamBody::Incoming(body)
                        } else {
                            let body = ClientBody::new(
                                body,
                                table.limits.body_read_timeout,
                                matched.access.max_body,
                            );
                            fault = Some(body.fault());
                            UpstreamBody::Client(body)
                        }
                    });
                    // What to mirror where: (policy, target of the copy, copy goes to legacy).
                    let mirror = if let Some((policy, candidate)) = matched.shadow {
                        Some((policy, candidate, false))
                    } else if let Some((policy, legacy)) = matched.verify {
                        Some((policy, legacy, true))
                    } else if let (Some(policy), Some((_, extracted, _))) =
                        (matched.canary_compare, matched.canary)
                    {
                        if Arc::ptr_eq(upstream, extracted) {
                            Some((policy, matched.upstream, true))
                        } else {
                            Some((policy, extracted, false))
                        }
                    } else {
                        None
                    };
                    if let Some((policy, target, reverse)) = mirror {
                        let legacy = if reverse { target } else { upstream };
                        tap = shadow::begin(
                            matched.name,
                            policy,
                            target,
                            legacy,
                            &shared.shadow,
                            &mut req,
                            ctx.peer.ip.as_bytes(),
                            &request_id,
                            reverse,
                        );
                    }
                    req
                };
                match fallback_to {
                    None => {
                        let result = upstream::send(upstream, req, start).await;
                        // An unsafe canary request: never retried, but its result counts.
                        if let Some(b) = breaker {
                            match &result {
                                Ok(r) if !r.status().is_server_error() => b.success(),
                                _ => b.failure(),
                            }
                        }
                        result
                    }
                    Some(legacy) => {
                        let (result, fell_back) =
                            Box::pin(canary_send(upstream, legacy, req, host.as_ref(), start))
                                .await;
                        if let Some(f) = fell_back {
                            // The extracted side's failure counts against it (its 5xx rate, the
                            // autopilot's error gate) even though the user never sees it.
                            route_metrics.record(f.status, f.elapsed.as_secs_f64());
                            shared
                                .metrics
                                .canary_fallback(matched.name, &upstream.name, f.reason);
                            // The copy went to legacy to be compared with the extracted answer,
                            // which the user did not get: not a comparison.
                            if let Some(tap) = tap.take() {
                                tap.fell_back();
                            }
                            upstream = legacy;
                            route_metrics = matched.metrics;
                        }
                        result
                    }
                }
            };

            match result {
                Ok(resp) => {
                    let mut resp = match tap {
                        Some(tap) => tap.legacy(resp),
                        None => resp.map(ResponseBody::Upstream),
                    };
                    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
                    resp.headers_mut().reserve(8);
                    headers::strip_hop_by_hop(resp.headers_mut(), switching);
                    headers::add_via(resp.headers_mut(), Version::HTTP_11);
                    resp
                }
                Err(e) => {
                    if let Some(tap) = tap {
                        tap.failed();
                    }
                    // A body Ficus cut short is the client's fault, not the upstream's.
                    match fault.and_then(|f| f.get()) {
                        Some(fault) => {
                            let (status, reason, message) = fault.refusal();
                            Reject::new(status, reason, message)
                                .closing()
                                .response(&request_id, shared)
                        }
                        None => {
                            tracing::warn!(
                                target: "ficus::upstream",
                                upstream = %upstream.name,
                                kind = e.kind(),
                                request_id = ?request_id,
                                error = %e,
                                "upstream exchange failed"
                            );
                            error_response(&e, &request_id)
                        }
                    }
                }
            }
        };
        let mut upstream_name = upstream.name.as_str();
        if resp.extensions().get::<EdgeAnswer>().is_some() {
            // Refused at the edge: no upstream's numbers should carry it.
            route_metrics = matched.edge_metrics;
            upstream_name = crate::config::table::EDGE_UPSTREAM;
        }
        if table.harden {
            auth::harden::apply(resp.headers_mut(), &matched.access.csp, authenticated);
        }
        if ctx.tls {
            if let Some(hsts) = table.tls.as_ref().and_then(|t| t.hsts.as_ref()) {
                resp.headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
        }
        if shared.is_draining()
            && client_version != Version::HTTP_2
            && resp.status() != StatusCode::SWITCHING_PROTOCOLS
        {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }

        let status = resp.status().as_u16();
        let end = Instant::now();
        let elapsed = end - start;
        route_metrics.record(status, elapsed.as_secs_f64());
        if let (Some(format), Some(path)) = (shared.access_log, &path_for_log) {
            access_log::log(
                format,
                &access_log::Entry {
                    route: matched.name,
                    mode: matched.mode.as_str(),
                    upstream: upstream_name,
                    method: method.as_str(),
                    path: path.path(),
                    status,
                    duration: elapsed,
                    at: end,
                    request_id: request_id.as_bytes(),
                },
            );
        }
        resp.headers_mut().insert(&X_REQUEST_ID, request_id);
        Ok(resp)
    }
}

/// Marks a response Ficus produced itself because it refused the request.
#[derive(Clone, Copy)]
struct EdgeAnswer;

/// A request refused at the edge: nothing was (or will be) sent upstream.
struct Reject {
    status: StatusCode,
    reason: &'static str,
    message: &'static str,
    www_authenticate: Option<HeaderValue>,
    retry_after: Option<u64>,
    close: bool,
}

impl Reject {
    fn new(status: StatusCode, reason: &'static str, message: &'static str) -> Self {
        Reject {
            status,
            reason,
            message,
            www_authenticate: None,
            retry_after: None,
            close: false,
        }
    }

    fn rate_limited(wait: std::time::Duration) -> Self {
        let mut r = Reject::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests",
        );
        r.retry_after = Some(crate::limits::retry_after(wait));
        r
    }

    /// Ends the connection after the response (the request's framing can't be trusted).
    fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    fn response(self, request_id: &HeaderValue, shared: &Shared) -> Response<ResponseBody> {
        shared.metrics.rejected(self.reason);
        let mut resp = json_error(self.status, self.message, request_id);
        let h = resp.headers_mut();
        if let Some(v) = self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp.extensions_mut().insert(EdgeAnswer);
        resp
    }
}

/// Why a canary request left the extracted side for legacy.
struct Fallback {
    /// What the extracted side answered, or what its failure would have been (502, 504).
    status: u16,
    /// `ficus_canary_fallbacks_total` reason: `status_5xx` or the upstream error kind.
    reason: &'static str,
    /// Time spent on the extracted side.
    elapsed: std::time::Duration,
}

/// Sends a safe canary request to the extracted side; on a connect failure, an exchange
/// error or a 5xx, sends it again to legacy. Returns the response and, when legacy
/// answered, how the extracted side failed. Only called for GET/HEAD/OPTIONS, whose body
/// is empty: nothing is written twice.
async fn canary_send(
    extracted: &crate::config::Upstream,
    legacy: &crate::config::Upstream,
    req: Request<UpstreamBody>,
    host: Option<&HeaderValue>,
    start: Instant,
) -> (
    Result<Response<upstream::Body>, UpstreamError>,
    Option<Fallback>,
) {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let mut headers = req.headers().clone();
    let first = upstream::send(extracted, req, start).await;
    let (status, reason) = match &first {
        Ok(resp) if !resp.status().is_server_error() => {
            extracted.breaker.success();
            return (first, None);
        }
        Ok(resp) => {
            tracing::warn!(target: "ficus::canary", upstream = %extracted.name, status = resp.status().as_u16(), "extracted side answered 5xx; retrying on legacy");
            (resp.status().as_u16(), "status_5xx")
        }
        Err(e) => {
            tracing::warn!(target: "ficus::canary", upstream = %extracted.name, error = %e, "extracted side failed; retrying on legacy");
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            (status.as_u16(), e.kind())
        }
    };
    let fallback = Fallback {
        status,
        reason,
        elapsed: start.elapsed(),
    };
    extracted.breaker.failure();
    if legacy.rewrite_host {
        headers.insert(header::HOST, legacy.authority_header.clone());
    } else if let Some(h) = host {
        headers.insert(header::HOST, h.clone());
    }
    let mut retry = Request::new(UpstreamBody::Empty);
    *retry.method_mut() = method;
    *retry.uri_mut() = uri;
    *retry.headers_mut() = headers;
    (
        upstream::send(legacy, retry, Instant::now()).await,
        Some(fallback),
    )
}

fn prune_pools_after_reload(table: &Arc<RouteTable>) {
    let id = Arc::as_ptr(table) as usize;
    if POOLS_FOR.with(|c| c.replace(id)) != id {
        let keep: Vec<u64> = table.upstreams.iter().map(|u| u.pool_key).collect();
        upstream::prune(&keep);
    }
}

/// Forwards an `Upgrade` request; on `101` splices the two connections together.
async fn forward_upgrade(
    mut req: Request<Incoming>,
    up: &crate::config::Upstream,
) -> Result<Response<upstream::Body>, UpstreamError> {
    let client = hyper::upgrade::on(&mut req);
    let mut resp = upstream::send_upgrade(up, req.map(UpstreamBody::Incoming)).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let server = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client, server) {
                Ok((c, s)) => {
                    let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut s).await {
                        tracing::debug!(error = %e, "upgraded connection ended");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
            }
        });
    }
    Ok(resp.map(upstream::Body::Hyper))
}

/// The one mapping from a proxy failure to a client response: status plus a small JSON
/// body that reflects nothing from the request but its id.
pub fn error_response(e: &UpstreamError, request_id: &HeaderValue) -> Response<ResponseBody> {
    let (status, message) = if e.is_timeout() {
        (StatusCode::GATEWAY_TIMEOUT, "upstream timed out")
    } else {
        (StatusCode::BAD_GATEWAY, "upstream unavailable")
    };
    json_error(status, message, request_id)
}

pub fn json_error(
    status: StatusCode,
    message: &str,
    request_id: &HeaderValue,
) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "error": message,
        "request_id": String::from_utf8_lossy(request_id.as_bytes()),
    });
    let mut resp = Response::new(ResponseBody::full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
