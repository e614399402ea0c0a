//! Secrets are absent from the stored bytes once the caller redacted the sample: the
//! SQLite file and its WAL are read raw, before and after a checkpoint. A control run
//! without redaction proves the byte search would find them; a replaced sample is zeroed.

use std::path::Path;

use shadow_compare::Comparator;
use shadow_store::{
    MismatchSample, Observation, RecordedRequest, RecordedResponse, Redaction, ShadowStore,
};

use crate::support::config;

const SECRETS: [&str; 4] = ["SECRET123", "hunter2", "sid=s3cr3t", "KEY-987"];

fn secret_sample() -> MismatchSample {
    let legacy_body = r#"{"user":"ana","password":"hunter2","plan":"gold"}"#;
    let candidate_body = r#"{"user":"ana","password":"hunter2x","plan":"free"}"#;
    MismatchSample {
        request: RecordedRequest {
            method: "POST".into(),
            uri: "/api/login".into(),
            headers: vec![
                ("Authorization".into(), "Bearer SECRET123".into()),
                ("Cookie".into(), "sid=s3cr3t; theme=dark".into()),
                ("X-Api-Key".into(), "KEY-987".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: br#"{"user":"ana","password":"hunter2"}"#.to_vec(),
            body_truncated_from: None,
        },
        legacy: RecordedResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("set-cookie".into(), "sid=s3cr3t; HttpOnly".into()),
            ],
            body: legacy_body.as_bytes().to_vec(),
            body_truncated_from: None,
            latency_ms: 3.0,
        },
        candidate: RecordedResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: candidate_body.as_bytes().to_vec(),
            body_truncated_from: None,
            latency_ms: 4.0,
        },
        // The password differs, so the report quotes both values.
        report: Comparator::default()
            .compare_json(legacy_body.as_bytes(), candidate_body.as_bytes())
            .unwrap(),
    }
}

fn stored_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        if let Ok(more) = std::fs::read(&side) {
            bytes.extend(more);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn record(db: &Path, sample: MismatchSample) -> ShadowStore {
    let mut store = ShadowStore::open(db, config(10, 1)).unwrap();
    let observation = Observation::mismatch("login", 1, sample);
    store.record(&[observation]).unwrap();
    store
}

#[test]
fn redacted_secrets_are_absent_from_the_file_and_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let redaction = Redaction::new(&Redaction::default_headers(), &["/password".into()]).unwrap();
    let mut sample = secret_sample();
    redaction.apply_sample(&mut sample);

    let db = dir.path().join("redacted.db");
    let store = record(&db, sample);
    let before = stored_bytes(&db);
    store.checkpoint().unwrap();
    let after = stored_bytes(&db);
    for secret in SECRETS {
        assert!(
            !contains(&before, secret),
            "{secret} stored (before checkpoint)"
        );
        assert!(
            !contains(&after, secret),
            "{secret} stored (after checkpoint)"
        );
    }
    // What is not secret is still there, and readable.
    assert!(contains(&after, "/api/login") && contains(&after, "gold"));
    let stored = &store.diffs("login", 1).unwrap()[0];
    assert_eq!(stored.request.header("authorization"), Some("[REDACTED]"));
    assert_eq!(
        stored.request.header("content-type"),
        Some("application/json")
    );
    assert_eq!(
        stored.request.body,
        br#"{"password":"[REDACTED]","user":"ana"}"#
    );
    assert_eq!(stored.report.differences().len(), 2);
}

#[test]
fn control_without_redaction_the_search_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("plain.db");
    let store = record(&db, secret_sample());
    store.checkpoint().unwrap();
    let bytes = stored_bytes(&db);
    for secret in SECRETS {
        assert!(
            contains(&bytes, secret),
            "{secret} not found: the search is broken"
        );
    }
}

/// A sample stored before redaction was configured is gone from the bytes once the
/// reservoir replaces it (`secure_delete`): nothing lingers in free pages. Without the
/// pragma this test fails: SQLite leaves the deleted row in a free page.
#[test]
fn a_replaced_sample_leaves_no_bytes_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replaced.db");
    let mut store = ShadowStore::open(&db, config(1, 1)).unwrap();
    store
        .record(&[Observation::mismatch("login", 0, secret_sample())])
        .unwrap();
    let later: Vec<_> = (1..200)
        .map(|n| crate::support::mismatch("login", n))
        .collect();
    store.record(&later).unwrap();
    let kept = store.diffs("login", 10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0].at_unix_ms, 0, "seed 1 replaces the first sample");
    store.checkpoint().unwrap();
    let bytes = stored_bytes(&db);
    for secret in SECRETS {
        assert!(!contains(&bytes, secret), "{secret} left behind");
    }
}
