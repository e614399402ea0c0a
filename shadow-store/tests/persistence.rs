//! Everything survives closing and reopening the file; readers on a second connection see
//! the writer's batches; batching and restarts do not change what the reservoir keeps.

use shadow_store::{Outcome, SCHEMA_VERSION, ShadowStore, StoreError};

use crate::support::{config, mismatch, outcome};

fn mixed_batch() -> Vec<shadow_store::Observation> {
    let mut batch: Vec<_> = (0..40).map(|n| mismatch("top-content", n)).collect();
    for o in [
        Outcome::Match,
        Outcome::Match,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Skipped,
        Outcome::Dropped,
    ] {
        batch.push(outcome("top-content", o));
    }
    batch.push(outcome("preferences", Outcome::Match));
    // A mismatch without a sample still counts (totals and fields).
    batch.push(shadow_store::Observation {
        fields: vec!["status".into()],
        ..outcome("preferences", Outcome::Mismatch)
    });
    batch
}

#[test]
fn record_drop_reopen_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.db");
    let (summary, diffs, fields, learned) = {
        let mut store = ShadowStore::open(&path, config(10, 3)).unwrap();
        store.record(&mixed_batch()).unwrap();
        store
            .record_learned("top-content", &["/generated_at".into()])
            .unwrap();
        (
            store.summary().unwrap(),
            store.diffs("top-content", 100).unwrap(),
            store.fields("top-content", 100).unwrap(),
            store.learned("top-content").unwrap(),
        )
    };
    assert_eq!(summary.len(), 2);
    let top = &summary[1];
    assert_eq!(top.route, "top-content");
    assert_eq!(
        (
            top.r#match,
            top.mismatch,
            top.error,
            top.timeout,
            top.skipped,
            top.dropped
        ),
        (2, 40, 1, 1, 1, 1)
    );
    assert!((top.match_rate - 2.0 / 42.0).abs() < 1e-12);
    assert_eq!((summary[0].r#match, summary[0].mismatch), (1, 1));
    assert_eq!(diffs.len(), 10);
    assert!(
        diffs.windows(2).all(|w| w[0].at_unix_ms >= w[1].at_unix_ms),
        "most recent first"
    );
    assert_eq!(fields[0].pointer, "/items/*/score");
    assert_eq!(fields[0].count, 40);

    let store = ShadowStore::open(&path, config(10, 3)).unwrap();
    assert_eq!(store.summary().unwrap(), summary);
    assert_eq!(store.diffs("top-content", 100).unwrap(), diffs);
    assert_eq!(store.fields("top-content", 100).unwrap(), fields);
    assert_eq!(store.learned("top-content").unwrap(), learned);
    assert_eq!(
        store.fields("preferences", 10).unwrap()[0].pointer,
        "status"
    );
    assert!(store.diffs("preferences", 10).unwrap().is_empty());
}

#[test]
fn batching_and_restarts_do_not_change_the_reservoir() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<_> = (0..300).map(|n| mismatch("r", n)).collect();

    let one = dir.path().join("one.db");
    let mut store = ShadowStore::open(&one, config(7, 11)).unwrap();
    store.record(&all).unwrap();
    let expected = store.diffs("r", 100).unwrap();
    drop(store);

    let many = dir.path().join("many.db");
    for chunk in all.chunks(37) {
        // A fresh process per batch: k comes from the file, not from memory.
        let mut store = ShadowStore::open(&many, config(7, 11)).unwrap();
        store.record(chunk).unwrap();
    }
    let store = ShadowStore::open(&many, config(7, 11)).unwrap();
    assert_eq!(store.diffs("r", 100).unwrap(), expected);
    assert_eq!(store.summary().unwrap()[0].mismatch, 300);
}

#[test]
fn a_reader_connection_sees_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.db");
    let mut writer = ShadowStore::open(&path, config(5, 1)).unwrap();
    let reader = ShadowStore::open(&path, config(5, 1)).unwrap();
    assert!(reader.summary().unwrap().is_empty());
    writer.record(&[mismatch("r", 1)]).unwrap();
    assert_eq!(reader.summary().unwrap()[0].mismatch, 1);
    assert_eq!(reader.diffs("r", 5).unwrap().len(), 1);
}

#[test]
fn a_file_from_a_newer_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let e = ShadowStore::open(&path, config(5, 1)).unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("new.db"), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("supported {SCHEMA_VERSION}")),
        "{e}"
    );
}

#[test]
fn an_unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("shadow.db");
    let e = ShadowStore::open(&path, config(5, 1)).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(e.to_string().contains("missing-dir"), "{e}");
}

/// The proxy's built-in store (before this crate) kept each sample as one JSON object in
/// `samples(route, slot, at_unix_ms, sample)`; opening such a file keeps its data.
#[test]
fn the_proxys_earlier_layout_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE totals (route TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (route, outcome));
         CREATE TABLE fields (route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (route, pointer));
         CREATE TABLE learned (route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (route, pointer));
         CREATE TABLE samples (route TEXT NOT NULL, slot INTEGER NOT NULL, at_unix_ms INTEGER NOT NULL, sample TEXT NOT NULL, PRIMARY KEY (route, slot));
         CREATE TABLE seen (route TEXT PRIMARY KEY, mismatches INTEGER NOT NULL);
         INSERT INTO totals VALUES ('r', 'mismatch', 3), ('r', 'match', 1);
         INSERT INTO fields VALUES ('r', '/a', 3);
         INSERT INTO seen VALUES ('r', 3);",
    )
    .unwrap();
    let old_sample = serde_json::json!({
        "request": {"method": "GET", "uri": "/x", "headers": [["accept", "*/*"]], "body": ""},
        "legacy": {"status": 200, "headers": [], "body": "{\"a\":1}", "latency_ms": 1.0},
        "candidate": {"status": 200, "headers": [], "body": "{\"a\":2}", "latency_ms": 2.0},
        "report": {"body": {"kind": "json", "differences": [
            {"pointer": "/a", "kind": "changed", "legacy": 1, "candidate": 2}]}}
    });
    conn.execute(
        "INSERT INTO samples VALUES ('r', 0, 42, ?1)",
        [old_sample.to_string()],
    )
    .unwrap();
    drop(conn);

    let mut store = ShadowStore::open(&path, config(5, 1)).unwrap();
    let s = &store.summary().unwrap()[0];
    assert_eq!((s.r#match, s.mismatch), (1, 3));
    let diffs = store.diffs("r", 10).unwrap();
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].at_unix_ms, 42);
    assert_eq!(diffs[0].legacy.body, b"{\"a\":1}");
    assert_eq!(diffs[0].report.differences()[0].pointer, "/a");
    // And it keeps working: the 4th sampled mismatch takes slot 3.
    store.record(&[mismatch("r", 100)]).unwrap();
    assert_eq!(store.diffs("r", 10).unwrap().len(), 2);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'samples'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "the old table is dropped");
}

#[test]
fn stored_bodies_are_cut_to_the_limit_and_marked() {
    let mut cfg = config(10, 1);
    cfg.max_body_bytes = 16;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.db");
    let mut store = ShadowStore::open(&path, cfg.clone()).unwrap();
    let mut big = mismatch("r", 1);
    let sample = big.sample.as_mut().unwrap();
    sample.request.body = vec![b'a'; 100];
    let legacy_len = sample.legacy.body.len() as u64;
    store.record(&[big]).unwrap();
    drop(store);
    let store = ShadowStore::open(&path, cfg).unwrap();
    let stored = store.diffs("r", 10).unwrap();
    let s = &stored[0];
    assert_eq!(s.request.body, vec![b'a'; 16]);
    assert_eq!(s.request.body_truncated_from, Some(100));
    assert_eq!(s.legacy.body.len(), 16);
    assert_eq!(s.legacy.body_truncated_from, Some(legacy_len));
    // The report was computed on the whole bodies and is kept whole.
    assert!(!s.report.is_equal());
}
