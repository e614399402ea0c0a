//! Shadow traffic: legacy answers the client; a copy of the request goes to the extracted
//! service, and the two responses are compared.
//!
//! [`begin`] decides (method, sampling, body size, concurrency) and, when the request is
//! mirrored, tees the request body and spawns the shadow task; [`Tap::legacy`] tees the
//! legacy response body on its way to the client. The shadow task waits for both copies,
//! sends the copy to the candidate under its own timeout, compares, counts and records.
//!
//! **Invariant:** the shadow path never changes or delays the primary response: all it
//! does on the request path is wrap two bodies and spawn a task; when its limits are
//! reached the shadow is dropped and counted, never queued.

pub mod policy;
pub mod recorder;
pub mod tee;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::config::Upstream;
use crate::config::file::Writes;
use crate::server::body::{ResponseBody, UpstreamBody};
use crate::upstream;
pub use policy::ShadowPolicy;
use recorder::{Observation, Recorder};
use tee::{Captured, Tee};

pub static X_FICUS_SHADOW: HeaderName = HeaderName::from_static("x-ficus-shadow");
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How long the shadow task waits for the client to finish reading the legacy body.
const LEGACY_BODY_WAIT: Duration = Duration::from_secs(60);

/// Everything the shadow task needs from the process.
pub struct ShadowContext {
    pub global_limit: Arc<Semaphore>,
    pub recorder: Option<Recorder>,
}

/// The primary path's end of a mirrored request.
pub struct Tap {
    tx: oneshot::Sender<Legacy>,
    max_body: usize,
    start: Instant,
}

/// The legacy side, as the shadow task receives it.
enum Legacy {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        latency: Duration,
        body: oneshot::Receiver<Captured>,
    },
    Failed,
    /// The primary was a canary request to the extracted side, which failed; legacy
    /// answered the user instead, so there is no extracted answer to compare.
    FellBack,
}

fn is_safe(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Decides whether to mirror `req` (already prepared for the upstream) and, if so, starts
/// the shadow. `client_ip` is the cohort fallback key.
#[allow(clippy::too_many_arguments)]
pub fn begin(
    route: &str,
    policy: &Arc<ShadowPolicy>,
    candidate: &Arc<Upstream>,
    legacy: &Arc<Upstream>,
    ctx: &Arc<ShadowContext>,
    req: &mut Request<UpstreamBody>,
    client_ip: &[u8],
    request_id: &HeaderValue,
    reverse: bool,
) -> Option<Tap> {
    // Outside the sample: not a shadow request at all, so nothing is counted.
    // The verified subject when there is one (issue #4), else the configured cohort.
    let key = match req.headers().get(&crate::auth::SUBJECT_HEADER) {
        Some(subject) => subject.as_bytes(),
        None => policy.cohort.key(req.headers(), client_ip),
    };
    if !policy::sampled(policy::Purpose::Shadow, key, policy.sample) {
        return None;
    }
    let safe = is_safe(req.method());
    if !safe && policy.writes == Writes::Skip {
        return skip(policy, ctx, route, "skipped");
    }
    let too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > policy.max_body as u64);
    if too_big {
        return skip(policy, ctx, route, "skipped");
    }
    let (Ok(route_permit), Ok(global_permit)) = (
        policy.limit.clone().try_acquire_owned(),
        ctx.global_limit.clone().try_acquire_owned(),
    ) else {
        return skip(policy, ctx, route, "dropped");
    };

    let mut headers = req.headers().clone();
    if !safe {
        headers.insert(&X_FICUS_SHADOW, HeaderValue::from_static("dry-run"));
        headers.insert(&IDEMPOTENCY_KEY, request_id.clone());
    }
    let body_rx = match std::mem::replace(req.body_mut(), UpstreamBody::Empty) {
        UpstreamBody::Client(b) if !http_body::Body::is_end_stream(&b) => {
            let (tee, rx) = Tee::new(b, policy.max_body);
            *req.body_mut() = UpstreamBody::Tee(Box::new(tee));
            Some(rx)
        }
        other => {
            *req.body_mut() = other;
            None
        }
    };
    let (tx, legacy_rx) = oneshot::channel();
    let job = Job {
        route: route.to_owned(),
        policy: policy.clone(),
        candidate: candidate.clone(),
        legacy: legacy.clone(),
        ctx: ctx.clone(),
        method: req.method().clone(),
        uri: req.uri().clone(),
        headers,
        body_rx,
        legacy_rx,
        reverse,
        learn: !reverse
            && policy.learn_noise
            && safe
            && policy::sampled(
                policy::Purpose::Learn,
                request_id.as_bytes(),
                policy.learn_sample,
            ),
        _permits: (route_permit, global_permit),
    };
    tokio::spawn(job.run());
    Some(Tap {
        tx,
        max_body: policy.max_body,
        start: Instant::now(),
    })
}

fn skip(
    policy: &ShadowPolicy,
    ctx: &ShadowContext,
    route: &str,
    outcome: &'static str,
) -> Option<Tap> {
    policy.metrics.outcome(outcome);
    if let Some(r) = &ctx.recorder {
        r.send(Observation::outcome(route, outcome));
    }
    None
}

impl Tap {
    /// Hands the legacy response to the shadow, teeing its body; returns what the client gets.
    pub fn legacy(self, resp: Response<upstream::Body>) -> Response<ResponseBody> {
        let latency = self.start.elapsed();
        let (parts, body) = resp.into_parts();
        let (tee, body_rx) = Tee::new(body, self.max_body);
        let _ = self.tx.send(Legacy::Response {
            status: parts.status,
            headers: parts.headers.clone(),
            latency,
            body: body_rx,
        });
        Response::from_parts(parts, ResponseBody::Tee(Box::new(tee)))
    }

    /// The legacy exchange failed: nothing to compare against.
    pub fn failed(self) {
        let _ = self.tx.send(Legacy::Failed);
    }

    /// The primary (a canary request to the extracted side) failed and legacy answered in
    /// its place: counted as an `error` outcome, never compared.
    pub fn fell_back(self) {
        let _ = self.tx.send(Legacy::FellBack);
    }
}

struct Job {
    route: String,
    policy: Arc<ShadowPolicy>,
    candidate: Arc<Upstream>,
    legacy: Arc<Upstream>,
    ctx: Arc<ShadowContext>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body_rx: Option<oneshot::Receiver<Captured>>,
    legacy_rx: oneshot::Receiver<Legacy>,
    /// The primary went to the extracted service and the copy to legacy (verify, canary
    /// compare): swap the sides before comparing.
    reverse: bool,
    learn: bool,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// A response read whole (bounded).
struct Whole {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    latency: Duration,
}

enum Failure {
    Skipped(&'static str),
    Error(String),
    Timeout,
}

impl Job {
    async fn run(mut self) {
        let policy = self.policy.clone();
        let result = self.exchange().await;
        let observation = match result {
            Err(Failure::Skipped(why)) => {
                tracing::debug!(route = %self.route, why, "shadow skipped");
                Observation::outcome(&self.route, "skipped")
            }
            Err(Failure::Error(e)) => {
                tracing::debug!(route = %self.route, error = %e, "shadow request failed");
                Observation::outcome(&self.route, "error")
            }
            Err(Failure::Timeout) => Observation::outcome(&self.route, "timeout"),
            Ok((request_body, primary, copy)) => {
                let (legacy, candidate) = if self.reverse {
                    (copy, primary)
                } else {
                    (primary, copy)
                };
                policy
                    .metrics
                    .legacy_duration
                    .observe(legacy.latency.as_secs_f64());
                policy
                    .metrics
                    .candidate_duration
                    .observe(candidate.latency.as_secs_f64());
                if self.learn {
                    self.learn_noise(&request_body, &legacy).await;
                }
                let comparator = match &self.ctx.recorder {
                    Some(r) => r.comparator_for(&self.route, &policy.comparator),
                    None => policy.comparator.clone(),
                };
                let report = comparator.compare(
                    &shadow_compare::Response {
                        status: legacy.status.as_u16(),
                        headers: &legacy.headers,
                        body: &legacy.body,
                    },
                    &shadow_compare::Response {
                        status: candidate.status.as_u16(),
                        headers: &candidate.headers,
                        body: &candidate.body,
                    },
                );
                if report.is_equal() {
                    Observation::outcome(&self.route, "match")
                } else {
                    let fields: Vec<String> = report.fields().into_iter().collect();
                    let bounded = match &self.ctx.recorder {
                        Some(r) => r.bound_fields(&self.route, fields),
                        None => fields,
                    };
                    for f in &bounded {
                        policy.metrics.field(f);
                    }
                    Observation::mismatch(
                        &self.route,
                        bounded,
                        recorder::Sample {
                            method: self.method.to_string(),
                            uri: self.uri.to_string(),
                            request_headers: self.headers.clone(),
                            request_body: request_body.clone(),
                            legacy: (
                                legacy.status.as_u16(),
                                legacy.headers,
                                legacy.body,
                                legacy.latency,
                            ),
                            candidate: (
                                candidate.status.as_u16(),
                                candidate.headers,
                                candidate.body,
                                candidate.latency,
                            ),
                            report,
                            redact: policy.redact.clone(),
                        },
                    )
                }
            }
        };
        policy.metrics.outcome(observation.outcome);
        if let Some(r) = &self.ctx.recorder {
            r.send(observation);
        }
    }

    /// Sends the copy to the candidate and collects both sides.
    async fn exchange(&mut self) -> Result<(Bytes, Whole, Whole), Failure> {
        let timeout = self.policy.timeout;
        let request_body = match self.body_rx.take() {
            None => Bytes::new(),
            Some(rx) => match rx.await {
                Ok(Captured::Complete(b)) => b,
                Ok(Captured::Overflow) => {
                    return Err(Failure::Skipped("request body over max_body_bytes"));
                }
                Err(_) => return Err(Failure::Skipped("client request body did not complete")),
            },
        };
        let candidate = tokio::time::timeout(
            timeout,
            self.send(&self.candidate.clone(), request_body.clone()),
        )
        .await
        .map_err(|_| Failure::Timeout)??;
        let legacy = match tokio::time::timeout(LEGACY_BODY_WAIT, &mut self.legacy_rx).await {
            Ok(Ok(Legacy::Response {
                status,
                headers,
                latency,
                body,
            })) => match body.await {
                Ok(Captured::Complete(body)) => Whole {
                    status,
                    headers,
                    body,
                    latency,
                },
                Ok(Captured::Overflow) => {
                    return Err(Failure::Skipped("legacy body over max_body_bytes"));
                }
                Err(_) => return Err(Failure::Skipped("legacy body not fully read by the client")),
            },
            Ok(Ok(Legacy::FellBack)) => {
                return Err(Failure::Error(
                    "the extracted side failed and legacy answered (canary fallback)".into(),
                ));
            }
            _ => return Err(Failure::Skipped("legacy did not answer")),
        };
        Ok((request_body, legacy, candidate))
    }

    async fn send(&self, to: &Upstream, body: Bytes) -> Result<Whole, Failure> {
        let mut req = Request::new(UpstreamBody::Full(Some(body)));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        if to.rewrite_host {
            req.headers_mut()
                .insert(header::HOST, to.authority_header.clone());
        }
        let start = Instant::now();
        let resp = upstream::send(to, req, start).await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Error(e.to_string())
            }
        })?;
        let latency = start.elapsed();
        let (parts, body) = resp.into_parts();
        let limited = http_body_util::Limited::new(body, self.policy.max_body);
        let body = match limited.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(Failure::Skipped("candidate body over max_body_bytes"));
            }
            Err(e) => return Err(Failure::Error(format!("candidate body: {e}"))),
        };
        Ok(Whole {
            status: parts.status,
            headers: parts.headers,
            body,
            latency,
        })
    }

    /// Asks legacy a second time and records the fields that differ between its two answers.
    async fn learn_noise(&self, request_body: &Bytes, first: &Whole) {
        let Ok(Ok(second)) = tokio::time::timeout(
            self.policy.timeout,
            self.send(&self.legacy.clone(), request_body.clone()),
        )
        .await
        else {
            return;
        };
        let fields = shadow_compare::nondeterministic_fields(
            &self.policy.comparator,
            &shadow_compare::Response {
                status: first.status.as_u16(),
                headers: &first.headers,
                body: &first.body,
            },
            &shadow_compare::Response {
                status: second.status.as_u16(),
                headers: &second.headers,
                body: &second.body,
            },
        );
        if let Some(r) = &self.ctx.recorder {
            r.learned(&self.route, fields.into_iter().collect());
        }
    }
}

/// `ficus shadow export`: writes the stored mismatches of `route` as fixtures into `out`.
pub fn export(
    config: &std::path::Path,
    route: &str,
    out: &std::path::Path,
) -> anyhow::Result<usize> {
    use anyhow::Context;
    let table =
        crate::config::load(config, &crate::metrics::Metrics::new()).map_err(anyhow::Error::new)?;
    let path = crate::shadow_store_path(config, table.file.shadow.store.as_deref());
    if !path.exists() {
        anyhow::bail!(
            "no shadow store at {} (has ficus run with shadow routes?)",
            path.display()
        );
    }
    let store = shadow_store::ShadowStore::open(&path, shadow_store::StoreConfig::default())
        .with_context(|| format!("open {}", path.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    store
        .export(route, out)
        .with_context(|| format!("export route {route:?}"))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
