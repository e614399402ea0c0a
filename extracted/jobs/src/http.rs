//! The worker's admin API: `POST /jobs/{kind}` (on-demand enqueue, honours the dry-run
//! shadow contract), `GET /jobs` (recent jobs), plus `/healthz`, `/readyz`, `/metrics` and
//! `/openapi.json`. Errors are `service_kit::ApiError` JSON bodies. The health endpoints are
//! service-kit's; `/metrics` is this crate's own registry (service-kit's `finish` owns a
//! registry we cannot add job metrics to).

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::health::{Readiness, ReadyFuture};
use service_kit::{ApiError, DryRun, FieldError};

use crate::error::JobError;
use crate::kind::Kind;
use crate::queue::{self, Status};
use crate::worker::Worker;

/// The service name in health answers and metrics.
pub const SERVICE: &str = "jobs";

struct DbReady(Worker);

impl Readiness for DbReady {
    fn ready(&self) -> ReadyFuture {
        let db = self.0.db().clone();
        Box::pin(async move { db.ping().await.map_err(|e| e.to_string()) })
    }
}

fn api_error(e: JobError) -> ApiError {
    match e {
        JobError::InvalidPayload { reason, .. } => {
            ApiError::Validation(vec![FieldError::new("payload", reason)])
        }
        other => other.into_api(),
    }
}

/// The admin router.
pub fn app(worker: Worker) -> Router {
    let ready = std::sync::Arc::new(DbReady(worker.clone())) as std::sync::Arc<dyn Readiness>;
    Router::new()
        .route("/jobs/{kind}", post(enqueue))
        .route("/jobs", get(list))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| service_kit::health::healthz(SERVICE)))
        .route(
            "/readyz",
            get(move || service_kit::health::readyz(SERVICE, std::sync::Arc::clone(&ready))),
        )
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(worker.clone(), track))
        .with_state(worker)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

async fn track(State(worker): State<Worker>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let res = next.run(req).await;
    worker
        .metrics()
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), res.status().as_str()])
        .inc();
    res
}

/// `POST /jobs/{kind}`: body = the payload (JSON object, or empty for `{}`); optional
/// `Idempotency-Key` header and `?delay_secs=`. 202 with the job id; with
/// `X-Ficus-Shadow: dry-run`, everything is validated and the same answer given with
/// `"id": null`, but nothing is enqueued.
async fn enqueue(
    State(worker): State<Worker>,
    Path(kind): Path<String>,
    Query(q): Query<EnqueueQuery>,
    dry: DryRun,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind).map_err(api_error)?;
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?
    };
    kind.validate(&payload).map_err(api_error)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "idempotency-key must be 1 to 200 visible ASCII characters".into(),
                    )
                })?
                .to_owned(),
        ),
    };
    let delay = q.delay_secs.unwrap_or(0);
    if !(0..=366 * 86_400).contains(&delay) {
        return Err(ApiError::BadRequest(format!(
            "delay_secs {delay} is out of range 0..=31622400"
        )));
    }
    if dry.is_dry_run() {
        return Ok((
            StatusCode::ACCEPTED,
            Json(
                json!({"id": null, "kind": kind.as_str(), "status": "queued",
                        "created": true, "dry_run": true}),
            ),
        )
            .into_response());
    }
    let e = worker
        .enqueue(kind, payload, key, delay)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"id": e.id, "kind": kind.as_str(), "status": "queued",
                    "created": e.created, "dry_run": false}),
        ),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct EnqueueQuery {
    delay_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
}

/// `GET /jobs?status=&kind=&limit=`: newest first, at most 500.
async fn list(
    State(worker): State<Worker>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown status {s:?}: expected queued, running, done or dead"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range 1..=500"
        )));
    }
    let kind = q.kind.filter(|k| !k.is_empty());
    let jobs = worker
        .db()
        .transaction(move |c| queue::list(c, status, kind.as_deref(), limit))
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "jobs": jobs })))
}

async fn metrics(State(worker): State<Worker>) -> Result<Response, ApiError> {
    let depth = worker
        .db()
        .transaction(queue::depth)
        .await
        .map_err(api_error)?;
    let text = worker
        .metrics()
        .render(&depth)
        .map_err(ApiError::Internal)?;
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}
