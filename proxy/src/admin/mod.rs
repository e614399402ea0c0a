//! The admin API, served on `listen.admin` only (never on the public listener).
//!
//! `GET /admin/routes`, `POST /admin/reload`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`. Documented in docs/admin-api.md.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub mod dashboard;

use crate::config::reload::{ReloadHandle, Trigger};
use crate::state::{Phase, Shared};

#[derive(Clone)]
pub struct Admin {
    pub shared: Arc<Shared>,
    pub reload: ReloadHandle,
    pub autopilot: Arc<crate::autopilot::Autopilot>,
    pub dashboard: Arc<dashboard::Dashboard>,
}

/// Serves the admin API until the process exits.
pub async fn serve(listener: TcpListener, admin: Admin) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &admin).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let shared = &admin.shared;
    if req.method() == Method::POST {
        if let Some(rest) = req.uri().path().strip_prefix("/admin/routes/") {
            let rest = rest.to_owned();
            return route_command(req, admin, &rest).await;
        }
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/" | "/index.html") => {
            asset(dashboard::INDEX_HTML, "text/html; charset=utf-8")
        }
        (&Method::GET, "/dashboard.js") => {
            asset(dashboard::DASHBOARD_JS, "text/javascript; charset=utf-8")
        }
        (&Method::GET, "/dashboard.css") => {
            asset(dashboard::DASHBOARD_CSS, "text/css; charset=utf-8")
        }
        (&Method::GET, "/admin/dashboard") => json(
            StatusCode::OK,
            &admin.dashboard.render(shared, &admin.autopilot),
        ),
        (&Method::GET, "/readyz") => {
            if shared.current_phase() == Phase::Running {
                json(StatusCode::OK, &json!({"status": "ready"}))
            } else {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "draining"}),
                )
            }
        }
        (&Method::GET, "/metrics") => {
            let mut resp = Response::new(Full::new(Bytes::from(shared.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        (&Method::GET, "/admin/routes") => json(StatusCode::OK, &routes(shared)),
        (&Method::POST, "/admin/reload") => match admin.reload.reload(Trigger::Admin).await {
            Some(report) if report.result == "failure" => {
                json(StatusCode::UNPROCESSABLE_ENTITY, &json!(report))
            }
            Some(report) => json(StatusCode::OK, &json!(report)),
            None => json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "reload task is not running"}),
            ),
        },
        (&Method::GET, "/admin/shadow") => shadow_summary(shared),
        (&Method::GET, "/admin/events") => {
            let query = req.uri().query();
            let limit = query_limit(query).unwrap_or(100);
            let route = query_value(query, "route");
            json(
                StatusCode::OK,
                &json!({"events": shared.events.newest(limit, route.as_deref())}),
            )
        }
        (&Method::GET, "/admin/autopilot") => json(
            StatusCode::OK,
            &json!({"clock": if admin.autopilot.is_manual() { "manual" } else { "real" }, "routes": admin.autopilot.status()}),
        ),
        (&Method::POST, "/admin/autopilot/tick") => {
            if !admin.autopilot.is_manual() {
                return json(
                    StatusCode::CONFLICT,
                    &json!({"error": "the autopilot runs on the real clock; ticks need FICUS_AUTOPILOT_CLOCK=manual"}),
                );
            }
            let seconds = query_param(req.uri().query(), "seconds").unwrap_or(0);
            admin
                .autopilot
                .advance(std::time::Duration::from_secs(seconds));
            let applied = admin.autopilot.tick(shared, &admin.reload).await;
            json(
                StatusCode::OK,
                &json!({"applied": applied, "routes": admin.autopilot.status()}),
            )
        }
        (&Method::GET, path) if path.starts_with("/admin/shadow/") => {
            let rest = &path["/admin/shadow/".len()..];
            let limit = query_limit(req.uri().query()).unwrap_or(20);
            match rest.rsplit_once('/') {
                Some((route, "diffs")) => shadow_read(shared, route, |r| {
                    r.diffs(route, limit)
                        .map(|d| json!({"route": route, "diffs": d}))
                }),
                Some((route, "fields")) => shadow_read(shared, route, |r| {
                    r.fields(route, limit)
                        .map(|f| json!({"route": route, "fields": f}))
                }),
                Some((route, "learned")) => shadow_read(shared, route, |r| {
                    r.learned_fields(route)
                        .map(|f| json!({"route": route, "fields": f}))
                }),
                _ => json(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
            }
        }
        (
            _,
            "/healthz"
            | "/readyz"
            | "/metrics"
            | "/admin/routes"
            | "/admin/reload"
            | "/admin/shadow"
            | "/admin/autopilot"
            | "/admin/autopilot/tick"
            | "/admin/events",
        ) => json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method not allowed"}),
        ),
        _ => json(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

fn routes(shared: &Shared) -> Value {
    let table = shared.table.load();
    let loaded_at = table
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let routes: Vec<Value> = table
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "path": r.pattern.as_str(),
                "methods": r.methods.as_ref().map(|ms| ms.iter().map(Method::as_str).collect::<Vec<_>>()),
                "mode": r.mode.as_str(),
                "upstreams": {
                    "target": table.upstreams[r.target].name,
                    "legacy": table.upstreams[table.legacy].name,
                    "extracted": r.extracted.map(|i| &table.upstreams[i].name),
                },
                "access": access_json(&r.access),
                "canary_percent": r
                    .canary
                    .as_ref()
                    .filter(|_| r.mode == crate::config::Mode::Canary)
                    .map(|(p, _)| p.percent),
                "autopilot": r.autopilot.is_some(),
                "decision": table.overlay.routes.get(&r.name),
            })
        })
        .collect();
    let upstreams: Vec<Value> = table
        .upstreams
        .iter()
        .map(|u| {
            json!({
                "name": u.name,
                "url": u.url,
                "connect_timeout_ms": u.connect_timeout.as_millis() as u64,
                "request_timeout_ms": u.request_timeout.as_millis() as u64,
                "circuit": u.breaker.state(),
            })
        })
        .collect();
    json!({
        "version": table.version,
        "loaded_at": loaded_at,
        "source": table.source,
        "last_reload_error": shared.last_reload_error.lock().ok().and_then(|e| e.clone()),
        "restart_required": shared.pending_restart.lock().map(|p| p.clone()).unwrap_or_default(),
        "listen": {"proxy": shared.bound.proxy.to_string(), "admin": shared.bound.admin.to_string()},
        "legacy": table.upstreams[table.legacy].name,
        "authentication": if table.auth.is_some() { "on" } else { "off" },
        "stale_decisions": table.overlay_stale,
        "default_access": access_json(&table.default_access),
        "routes": routes,
        "upstreams": upstreams,
    })
}

/// Body of `POST /admin/routes/{name}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRoute {
    mode: Option<crate::config::Mode>,
    percent: Option<f64>,
    reason: Option<String>,
    by: Option<String>,
}

/// `POST /admin/routes/{name}` (set mode/percent) and `.../{pause|resume|rollback}`.
async fn route_command(req: Request<Incoming>, admin: &Admin, rest: &str) -> Response<Full<Bytes>> {
    use crate::routectl::{Change, DecideError, decide};
    let (name, action) = match rest.split_once('/') {
        Some((name, action)) => (percent_decoded(name), action.to_owned()),
        None => (percent_decoded(rest), "set".to_owned()),
    };
    let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": "body over 64 KiB"}),
            );
        }
    };
    let set: SetRoute = if body.is_empty() {
        SetRoute {
            mode: None,
            percent: None,
            reason: None,
            by: None,
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": format!("bad JSON body: {e}")}),
                );
            }
        }
    };
    let by = set.by.clone().unwrap_or_else(|| "admin".into());
    let change = match action.as_str() {
        "set" => {
            if set.mode.is_none() && set.percent.is_none() {
                return json(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "give \"mode\" and/or \"percent\""}),
                );
            }
            Change {
                mode: set.mode,
                percent: set.percent,
                paused: Some(true),
                step: None,
                expect: None,
                reason: set.reason.unwrap_or_else(|| "manual change".into()),
                by,
            }
        }
        "pause" => Change {
            paused: Some(true),
            reason: set.reason.unwrap_or_else(|| "autopilot paused".into()),
            by,
            ..Change::default()
        },
        "resume" => Change {
            paused: Some(false),
            reason: set.reason.unwrap_or_else(|| "autopilot resumed".into()),
            by,
            ..Change::default()
        },
        "rollback" => Change {
            mode: Some(crate::config::Mode::Legacy),
            paused: Some(true),
            step: Some(None),
            reason: set.reason.unwrap_or_else(|| "manual rollback".into()),
            by,
            ..Change::default()
        },
        _ => return json(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    };
    match decide(&admin.shared, &admin.reload, &name, change, Trigger::Route).await {
        Ok(applied) => json(StatusCode::OK, &json!(applied)),
        Err(e @ DecideError::UnknownRoute(_)) => {
            json(StatusCode::NOT_FOUND, &json!({"error": e.to_string()}))
        }
        Err(DecideError::Invalid(errors) | DecideError::Reload(errors)) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"error": "the change does not validate", "errors": errors}),
        ),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": e.to_string()}),
        ),
    }
}

fn access_json(a: &crate::auth::Access) -> Value {
    json!({
        "auth": a.auth.as_str(),
        "roles": a.roles,
        "owner": a.owner,
        "max_body_bytes": a.max_body,
    })
}

/// An embedded dashboard asset, with a CSP that allows nothing from elsewhere.
fn asset(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The first value of `name` in a query string, decoded (`%2D`, `+` for a space), as
/// browsers and `curl --data-urlencode` send it.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| decode(k) == name)
        .map(|(_, v)| decode(v))
}

/// A query key or value: `+` is a space, then `%XX` escapes.
fn decode(s: &str) -> String {
    percent_decoded(&s.replace('+', " "))
}

/// A path segment: `%XX` escapes only.
fn percent_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn query_param(query: Option<&str>, name: &str) -> Option<u64> {
    query_value(query, name).and_then(|v| v.parse().ok())
}

fn query_limit(query: Option<&str>) -> Option<usize> {
    query_value(query, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .map(|n| n.clamp(1, 1000))
}

fn shadow_summary(shared: &Shared) -> Response<Full<Bytes>> {
    let Some(recorder) = &shared.shadow.recorder else {
        return json(StatusCode::OK, &json!({"routes": []}));
    };
    match recorder.summary() {
        Ok(routes) => json(StatusCode::OK, &json!({"routes": routes})),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": e})),
    }
}

/// Answers a per-route shadow read; 404 for a route neither in the table nor in the store.
fn shadow_read(
    shared: &Shared,
    route: &str,
    read: impl FnOnce(&crate::shadow::recorder::Recorder) -> Result<Value, String>,
) -> Response<Full<Bytes>> {
    let Some(recorder) = &shared.shadow.recorder else {
        return json(
            StatusCode::NOT_FOUND,
            &json!({"error": "shadow store is not enabled"}),
        );
    };
    let in_table = shared.table.load().routes.iter().any(|r| r.name == route);
    let in_store = recorder
        .summary()
        .is_ok_and(|s| s.iter().any(|r| r.route == route));
    if !in_table && !in_store {
        return json(StatusCode::NOT_FOUND, &json!({"error": "unknown route"}));
    }
    match read(recorder) {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": e})),
    }
}

fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_url_decoded() {
        let q = Some("limit=5&route=top%2Dcontent&x=a+b");
        assert_eq!(query_value(q, "route").as_deref(), Some("top-content"));
        assert_eq!(query_value(q, "x").as_deref(), Some("a b"));
        assert_eq!(query_limit(q), Some(5));
        assert_eq!(
            query_value(Some("r%6Fute=feed"), "route").as_deref(),
            Some("feed")
        );
        assert_eq!(query_value(Some("route=feed"), "limit"), None);
        assert_eq!(query_value(None, "route"), None);
        assert_eq!(query_param(Some("seconds=60"), "seconds"), Some(60));
    }
}
