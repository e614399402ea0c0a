//! Parity with the legacy monolith over the same generated data: every user's subscription
//! GET (and unknown ids) compares equal under shadow-compare; cancels compare equal except the two
//! timestamps each side takes from its own clock. Error bodies are documented as differing
//! (`docs/extracted.md`), so for them only the status must match.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fitness_data::models::Role;
use fitness_legacy::auth::issue_jwt;
use fitness_legacy::state::DEFAULT_JWT_SECRET;
use serde_json::Value;
use service_kit::testing::generated_db;

use crate::support::{SEED, USERS, call, service};

fn legacy() -> Router {
    fitness_legacy::app(fitness_legacy::AppState::new(
        generated_db(SEED, USERS).unwrap(),
        fitness_legacy::Config::default(),
    ))
}

fn both(method: &str, uri: &str, user: i64) -> Request<Body> {
    let jwt = issue_jwt(
        DEFAULT_JWT_SECRET,
        user,
        &fitness_data::password::demo_email(user),
        Role::Member,
        fitness_data::time::now_unix(),
    )
    .unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {jwt}"))
        .header("x-ficus-subject", user.to_string())
        .header("x-ficus-roles", "member")
        .body(Body::empty())
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

fn success_only(status: StatusCode, body: Value, drop: &[&str]) -> Value {
    if !status.is_success() {
        return Value::Null;
    }
    let mut body = body;
    if let Some(o) = body.as_object_mut() {
        for k in drop {
            o.remove(*k);
        }
    }
    body
}

#[tokio::test]
async fn subscription_gets_match_legacy() {
    let (legacy, (svc, _)) = (legacy(), service());
    let mut compared = 0;
    for round in 0..5 {
        for user in 1..=i64::from(USERS) + 20 {
            let uri = format!("/api/users/{user}/subscription");
            let (ls, lb) = call(&legacy, both("GET", &uri, user)).await;
            let (ss, sb) = call(&svc, both("GET", &uri, user)).await;
            assert_eq!(ls, ss, "round {round} {uri}: {lb} vs {sb}");
            same(success_only(ls, lb, &[]), success_only(ss, sb, &[]));
            compared += 1;
        }
    }
    assert!(compared >= 1000, "{compared}");
}

#[tokio::test]
async fn cancels_match_legacy_except_clock_fields() {
    let (legacy, (svc, _)) = (legacy(), service());
    for user in 1..=i64::from(USERS) {
        let uri = format!("/api/users/{user}/subscription/cancel");
        for _ in 0..2 {
            let (ls, lb) = call(&legacy, both("POST", &uri, user)).await;
            let (ss, sb) = call(&svc, both("POST", &uri, user)).await;
            assert_eq!(ls, ss, "{uri}: {lb} vs {sb}");
            let drop = ["cancelled_at", "updated_at"];
            same(success_only(ls, lb, &drop), success_only(ss, sb, &drop));
        }
    }
}
