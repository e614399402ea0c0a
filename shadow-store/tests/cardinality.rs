//! The per-route bound on distinct field pointers: beyond it new pointers count under
//! `(other)`, the bound holds across restarts and is per route.

use shadow_store::{OTHER_FIELD, Observation, Outcome, ShadowStore, StoreConfig};

fn fields_mismatch(route: &str, fields: Vec<String>) -> Observation {
    Observation {
        fields,
        ..Observation::outcome(route, Outcome::Mismatch, 0)
    }
}

#[test]
fn distinct_pointers_are_bounded_and_the_rest_is_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.db");
    let cfg = StoreConfig {
        max_fields_per_route: 200,
        ..StoreConfig::default()
    };
    {
        let mut store = ShadowStore::open(&path, cfg.clone()).unwrap();
        // 500 distinct keys (not indices: those collapse), one per mismatch.
        let batch: Vec<_> = (0..500)
            .map(|i| fields_mismatch("r", vec![format!("/k{i}")]))
            .collect();
        store.record(&batch).unwrap();
        store
            .record(&[fields_mismatch("s", vec!["/k0".into()])])
            .unwrap();
    }
    let mut store = ShadowStore::open(&path, cfg).unwrap();
    // After a restart, a known pointer still counts as itself, a new one as (other).
    store
        .record(&[fields_mismatch("r", vec!["/k0".into(), "/new".into()])])
        .unwrap();
    let fields = store.fields("r", usize::MAX).unwrap();
    assert_eq!(fields.len(), 201);
    assert_eq!(fields[0].pointer, OTHER_FIELD);
    assert_eq!(fields[0].count, 301);
    assert_eq!(fields.iter().find(|f| f.pointer == "/k0").unwrap().count, 2);
    assert!(fields.iter().all(|f| f.pointer != "/new"));
    assert_eq!(
        store.fields("s", 10).unwrap().len(),
        1,
        "bound is per route"
    );
    assert_eq!(store.fields("r", 5).unwrap().len(), 5);
}

#[test]
fn array_indices_collapse_before_counting() {
    let mut store = ShadowStore::open_in_memory(StoreConfig::default()).unwrap();
    let batch: Vec<_> = (0..1_000)
        .map(|i| fields_mismatch("r", vec![format!("/items/{i}/score")]))
        .collect();
    store.record(&batch).unwrap();
    let fields = store.fields("r", 10).unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (fields[0].pointer.as_str(), fields[0].count),
        ("/items/*/score", 1_000)
    );
}
