//! Export: one `{route}-{id}.json` fixture per stored mismatch, deterministic, with the
//! documented body representation; one fixture is snapshotted.

use std::collections::BTreeMap;
use std::path::Path;

use shadow_store::{Observation, ShadowStore};

use crate::support::{config, mismatch, sample};

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn one_file_per_mismatch_named_by_route_and_id_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShadowStore::open(&dir.path().join("s.db"), config(3, 5)).unwrap();
    store
        .record(
            &(0..50)
                .map(|n| mismatch("top-content", n))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    store.record(&[mismatch("other", 1)]).unwrap();

    let out = dir.path().join("fixtures");
    assert_eq!(store.export("top-content", &out).unwrap(), 3);
    let files = read_dir(&out);
    let mut expected: Vec<String> = store
        .diffs("top-content", 10)
        .unwrap()
        .iter()
        .map(|m| format!("top-content-{}.json", m.id))
        .collect();
    expected.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), expected);

    for bytes in files.values() {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for key in ["request", "legacy", "candidate", "differences"] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["route"], "top-content");
    }

    let again = dir.path().join("again");
    assert_eq!(store.export("top-content", &again).unwrap(), 3);
    assert_eq!(read_dir(&again), files, "byte-identical on a second export");
    assert_eq!(store.export("nothing-here", &again).unwrap(), 0);
}

#[test]
fn fixture_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShadowStore::open_in_memory(config(1, 5)).unwrap();
    let mut s = sample(7);
    s.request
        .headers
        .push(("x-request-id".into(), "req-7".into()));
    // A body that is not UTF-8 is exported as base64, flagged.
    s.candidate.body = vec![0xff, 0xfe, b'{'];
    store
        .record(&[Observation::mismatch("top-content", 1_767_225_600_123, s)])
        .unwrap();
    assert_eq!(store.export("top-content", dir.path()).unwrap(), 1);
    let text = std::fs::read_to_string(dir.path().join("top-content-1.json")).unwrap();
    insta::with_settings!({filters => vec![(r#""at_unix_ms": \d+"#, r#""at_unix_ms": "[timestamp]""#)]}, {
        insta::assert_snapshot!(text);
    });
}
