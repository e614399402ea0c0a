//! Comparison throughput on 1 KiB, 100 KiB and 1 MiB JSON pairs, generated deterministically.
//!
//! `equal`: the candidate has every object's keys in reverse order and different whitespace,
//! so the byte-identical shortcut never fires. `equal_same_order`: keys in the same order,
//! different whitespace (two serializers of one structure). `differing`: the same, plus every 50th score
//! changed. `keyed`: the items array matched by `id`, candidate in reverse order.
//! Throughput counts the bytes of the legacy document only (the comparator parses both, so
//! bytes processed are about twice that).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use shadow_compare::{ArrayModeFile, Comparator, NoiseRules, NoiseRulesFile};

const SIZES: &[(&str, usize)] = &[("1KiB", 1 << 10), ("100KiB", 100 << 10), ("1MiB", 1 << 20)];

fn item(i: u64) -> Value {
    let kind = ["run", "swim", "ride", "row"][(i % 4) as usize];
    json!({
        "id": i,
        "name": format!("session-{i}"),
        "kind": kind,
        "score": (i as f64 * 0.618_033_988_7) % 1.0,
        "duration_s": 600 + (i * 37) % 5400,
        "tags": ["outdoor", "morning"],
        "coach": { "id": i % 13, "verified": i % 3 == 0 },
    })
}

/// A document of about `target` bytes (compact), plus the items array for variants.
fn document(target: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut size = 64;
    let mut i = 0;
    while size < target {
        let it = item(i);
        size += it.to_string().len() + 1;
        items.push(it);
        i += 1;
    }
    items
}

fn wrap(items: Vec<Value>) -> Value {
    json!({ "generated_at": "2026-01-01T00:00:00Z", "total": items.len(), "items": items })
}

/// Serialise with object keys in reverse order and a space after separators.
fn write_reversed(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_reversed(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_reversed(v, out);
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// Serialise in the original key order with a space after separators (a second
/// serializer of the same structure: never byte-identical, keys in the same order).
fn spaced(value: &Value) -> Vec<u8> {
    let mut text = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in value.to_string().chars() {
        text.push(c);
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' || c == ':' {
            text.push(' ');
        }
    }
    text.into_bytes()
}

fn reversed(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_reversed(value, &mut out);
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let plain = Comparator::default();
    let keyed_rules = NoiseRulesFile {
        arrays: [(
            "/items".to_owned(),
            ArrayModeFile::Keyed { key: "id".into() },
        )]
        .into_iter()
        .collect(),
        ..NoiseRulesFile::default()
    };
    let keyed = Comparator::new(NoiseRules::try_from(keyed_rules).expect("valid rules"));

    let mut group = c.benchmark_group("compare");
    for &(label, target) in SIZES {
        let items = document(target);
        let legacy = wrap(items.clone()).to_string().into_bytes();
        let equal = reversed(&wrap(items.clone()));
        let same_order = spaced(&wrap(items.clone()));
        let mut changed = items.clone();
        for (i, it) in changed.iter_mut().enumerate() {
            if i % 50 == 0 {
                it["score"] = json!(2.0);
            }
        }
        let differing = reversed(&wrap(changed));
        let mut backwards = items;
        backwards.reverse();
        let keyed_candidate = reversed(&wrap(backwards));

        assert!(
            plain
                .compare_json(&legacy, &equal)
                .expect("parses")
                .is_equal()
        );
        assert!(
            plain
                .compare_json(&legacy, &same_order)
                .expect("parses")
                .is_equal()
        );
        assert_ne!(legacy, same_order);
        assert!(
            !plain
                .compare_json(&legacy, &differing)
                .expect("parses")
                .is_equal()
        );
        assert!(
            keyed
                .compare_json(&legacy, &keyed_candidate)
                .expect("parses")
                .is_equal()
        );

        group.throughput(Throughput::Bytes(legacy.len() as u64));
        group.bench_with_input(BenchmarkId::new("equal", label), &equal, |b, candidate| {
            b.iter(|| plain.compare_json(black_box(&legacy), black_box(candidate)))
        });
        group.bench_with_input(
            BenchmarkId::new("equal_same_order", label),
            &same_order,
            |b, candidate| b.iter(|| plain.compare_json(black_box(&legacy), black_box(candidate))),
        );
        group.bench_with_input(
            BenchmarkId::new("differing", label),
            &differing,
            |b, candidate| b.iter(|| plain.compare_json(black_box(&legacy), black_box(candidate))),
        );
        group.bench_with_input(
            BenchmarkId::new("keyed", label),
            &keyed_candidate,
            |b, candidate| b.iter(|| keyed.compare_json(black_box(&legacy), black_box(candidate))),
        );
        // The proxy's path (`compare_body`): byte-identical bodies never parse.
        group.bench_with_input(
            BenchmarkId::new("identical", label),
            &legacy,
            |b, candidate| {
                b.iter(|| {
                    plain.compare_body(
                        Some("application/json"),
                        black_box(&legacy),
                        black_box(candidate),
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
