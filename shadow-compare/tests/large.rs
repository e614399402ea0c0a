//! Large inputs: 100k-element arrays in every mode. A quadratic algorithm would take hours
//! here; these assert correctness only (no wall-clock), and finish in well under a second
//! in release.

use serde_json::{Value, json};
use shadow_compare::DiffKind;

use crate::support::{compare, summary};

const N: i64 = 100_000;

fn users(ids: impl Iterator<Item = i64>) -> Vec<Value> {
    ids.map(|id| json!({ "id": id, "name": format!("user-{id}"), "score": id % 97 }))
        .collect()
}

#[test]
fn keyed_100k_reversed_with_changes() {
    let legacy = json!({ "users": users(0..N) });
    // Reversed, user 500 changed, user 7 missing, user N added.
    let mut list = users((0..N).rev().filter(|&id| id != 7));
    for user in &mut list {
        if user["id"] == 500 {
            user["score"] = json!(-1);
        }
    }
    list.push(json!({ "id": N, "name": "new", "score": 0 }));
    let candidate = json!({ "users": list });
    let report = compare(
        r#"arrays = { "/users" = { key = "id" } }"#,
        &legacy.to_string(),
        &candidate.to_string(),
    );
    assert_eq!(
        summary(&report),
        format!(
            "changed /users/500/score; missing /users/7; extra /users/{}",
            N - 1
        )
    );
}

#[test]
fn unordered_100k_reversed_is_equal() {
    let legacy = Value::Array(users(0..N)).to_string();
    let candidate = Value::Array(users((0..N).rev())).to_string();
    let report = compare(r#"arrays = { "" = "unordered" }"#, &legacy, &candidate);
    assert!(report.is_equal(), "{}", summary(&report));
}

#[test]
fn unordered_100k_duplicates() {
    // Many equal elements: buckets with many entries must not go quadratic either.
    let legacy = Value::Array((0..N).map(|i| json!(i % 3)).collect()).to_string();
    let candidate = Value::Array((0..N).rev().map(|i| json!(i % 3)).collect()).to_string();
    let report = compare(r#"arrays = { "" = "unordered" }"#, &legacy, &candidate);
    assert!(report.is_equal(), "{}", summary(&report));
}

#[test]
fn ordered_100k_rotated_is_reordered() {
    let legacy = Value::Array(users(0..N)).to_string();
    let candidate = Value::Array(users((1..N).chain(0..1))).to_string();
    let report = compare("", &legacy, &candidate);
    let kinds: Vec<DiffKind> = report.differences().iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [DiffKind::Reordered]);
}
