//! Parity with the legacy monolith over the same generated data: preferences GETs for every
//! user (and unknown ids) compare equal under shadow-compare; valid PUTs compare equal except `updated_at`
//! (each side's own clock). Error bodies are documented as differing (`docs/extracted.md`),
//! so for them only the status must match.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fitness_data::models::Role;
use fitness_legacy::auth::issue_jwt;
use fitness_legacy::state::DEFAULT_JWT_SECRET;
use serde_json::{Value, json};
use service_kit::testing::generated_db;

use crate::support::{SEED, USERS, call, service};

fn legacy() -> Router {
    fitness_legacy::app(fitness_legacy::AppState::new(
        generated_db(SEED, USERS).unwrap(),
        fitness_legacy::Config::default(),
    ))
}

fn both(method: &str, uri: &str, user: i64, body: Option<&Value>) -> Request<Body> {
    let jwt = issue_jwt(
        DEFAULT_JWT_SECRET,
        user,
        &fitness_data::password::demo_email(user),
        Role::Member,
        fitness_data::time::now_unix(),
    )
    .unwrap();
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {jwt}"))
        .header("x-ficus-subject", user.to_string())
        .header("content-type", "application/json");
    b.body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
        .unwrap()
}

/// Asserts equality with the shadow-compare library (the comparison ficus runs in shadow mode).
fn same(legacy: Value, extracted: Value) {
    let comparator = shadow_compare::Comparator::default();
    let report = comparator
        .compare_json(
            legacy.to_string().as_bytes(),
            extracted.to_string().as_bytes(),
        )
        .unwrap();
    assert!(
        report.is_equal(),
        "{}",
        shadow_compare::render_text(&report, false)
    );
}

fn success_only(status: StatusCode, mut body: Value, drop: &[&str]) -> Value {
    if !status.is_success() {
        return Value::Null;
    }
    if let Some(o) = body.as_object_mut() {
        for k in drop {
            o.remove(*k);
        }
    }
    body
}

#[tokio::test]
async fn preferences_gets_match_legacy() {
    let (legacy, (svc, _)) = (legacy(), service());
    let mut compared = 0;
    for _round in 0..4 {
        for user in 1..=i64::from(USERS) + 10 {
            let uri = format!("/api/users/{user}/preferences");
            let (ls, lb) = call(&legacy, both("GET", &uri, user, None)).await;
            let (ss, sb) = call(&svc, both("GET", &uri, user, None)).await;
            assert_eq!(ls, ss, "{uri}: {lb} vs {sb}");
            same(success_only(ls, lb, &[]), success_only(ss, sb, &[]));
            compared += 1;
        }
    }
    assert!(compared >= 1000, "{compared}");
}

#[tokio::test]
async fn puts_match_legacy_except_updated_at() {
    let (legacy, (svc, _)) = (legacy(), service());
    let bodies = [
        json!({"categories": ["yoga"], "intensity": "low", "max_duration_minutes": 30, "email_opt_in": true}),
        json!({"categories": [], "email_opt_in": false}),
        json!({"categories": ["hiit", "cardio", "dance"], "intensity": null, "max_duration_minutes": null, "email_opt_in": true}),
        json!({"categories": ["yoga", "yoga"], "email_opt_in": true}),
        json!({"categories": ["yoga"], "max_duration_minutes": 900, "email_opt_in": true}),
    ];
    for user in 1..=60i64 {
        let body = &bodies[user as usize % bodies.len()];
        let uri = format!("/api/users/{user}/preferences");
        let (ls, lb) = call(&legacy, both("PUT", &uri, user, Some(body))).await;
        let (ss, sb) = call(&svc, both("PUT", &uri, user, Some(body))).await;
        assert_eq!(ls, ss, "{uri} {body}: {lb} vs {sb}");
        same(
            success_only(ls, lb, &["updated_at"]),
            success_only(ss, sb, &["updated_at"]),
        );
    }
}
