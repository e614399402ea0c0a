//! Reservoir sampling per route: the stored count is exactly `samples_per_route`, and the
//! kept mismatches are a uniform sample of all seen — early ones keep a realistic chance.

use shadow_store::{Observation, ShadowStore};

use crate::support::{config, mismatch};

#[test]
fn ten_thousand_mismatches_keep_exactly_samples_per_route() {
    let mut store = ShadowStore::open_in_memory(config(100, 42)).unwrap();
    let all: Vec<Observation> = (0..10_000).map(|n| mismatch("r", n)).collect();
    for batch in all.chunks(256) {
        store.record(batch).unwrap();
    }
    store.record(&[mismatch("other", 0)]).unwrap();
    let kept = store.diffs("r", usize::MAX).unwrap();
    assert_eq!(kept.len(), 100);
    assert_eq!(store.summary().unwrap()[1].mismatch, 10_000);
    assert_eq!(
        store.diffs("other", usize::MAX).unwrap().len(),
        1,
        "per route"
    );
    // Not simply the first or the last 100.
    assert!(kept.iter().any(|m| m.at_unix_ms >= 100));
    assert!(kept.iter().any(|m| m.at_unix_ms < 9_900));
    let mut ids: Vec<_> = kept.iter().map(|m| m.at_unix_ms).collect();
    ids.dedup();
    assert_eq!(ids.len(), 100, "distinct mismatches");
}

/// Each of N mismatches is kept with probability n/N. With n = 10 and N = 1,000, over 200
/// seeds: the first 10 mismatches are kept 200·10·(10/1000) = 20 times in expectation
/// (σ ≈ 4.4), and half of the 2,000 kept ones come from the second half (σ ≈ 22). The
/// bounds are about 3.5σ wide: a broken sampler (first-n, last-n, biased) fails them, a
/// correct one practically never does — and with fixed seeds the test is deterministic.
#[test]
fn early_mismatches_keep_a_fair_chance_over_many_seeds() {
    let all: Vec<Observation> = (0..1_000).map(|n| mismatch("r", n)).collect();
    let (mut early, mut late, mut total) = (0, 0, 0);
    for seed in 0..200 {
        let mut store = ShadowStore::open_in_memory(config(10, seed)).unwrap();
        store.record(&all).unwrap();
        let kept = store.diffs("r", usize::MAX).unwrap();
        assert_eq!(kept.len(), 10);
        total += kept.len();
        early += kept.iter().filter(|m| m.at_unix_ms < 10).count();
        late += kept.iter().filter(|m| m.at_unix_ms >= 500).count();
    }
    assert_eq!(total, 2_000);
    assert!((5..=40).contains(&early), "early items kept {early} times");
    assert!(
        (920..=1_080).contains(&late),
        "late items kept {late} times"
    );
}

#[test]
fn mismatches_without_samples_do_not_leave_holes() {
    let mut store = ShadowStore::open_in_memory(config(5, 1)).unwrap();
    let mut batch = Vec::new();
    for n in 0..20 {
        batch.push(Observation {
            sample: None,
            ..mismatch("r", n)
        });
        batch.push(mismatch("r", 100 + n));
    }
    store.record(&batch).unwrap();
    assert_eq!(store.diffs("r", 100).unwrap().len(), 5);
    assert_eq!(store.summary().unwrap()[0].mismatch, 40);
}

#[test]
fn zero_samples_per_route_stores_none_but_counts() {
    let mut store = ShadowStore::open_in_memory(config(0, 1)).unwrap();
    store.record(&[mismatch("r", 1), mismatch("r", 2)]).unwrap();
    assert!(store.diffs("r", 10).unwrap().is_empty());
    assert_eq!(store.summary().unwrap()[0].mismatch, 2);
    assert_eq!(store.fields("r", 10).unwrap()[0].count, 2);
}
