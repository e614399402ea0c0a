//! Property tests: a document equals itself, reformatted, with every object's keys
//! shuffled, and respelled (escapes, number texts); an unordered array equals any
//! permutation of itself. (That the fast equal path agrees with the tree diff is tested
//! inside the crate, in `src/fast/tests.rs`, where both are reachable.)

use proptest::prelude::*;
use serde_json::Value;
use shadow_compare::Comparator;

use crate::support::{compare, rules};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
        "[a~/\"\\\\]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z~/]{0,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Serialise with each object's keys in a seed-driven order and some whitespace.
fn write_shuffled(value: &Value, seed: &mut u64, out: &mut String) {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed >> 33
    };
    match value {
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                write_shuffled(item, seed, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut keys: Vec<(&String, &Value)> = members.iter().collect();
            // Fisher-Yates with the seed.
            for i in (1..keys.len()).rev() {
                let j = (next() as usize) % (i + 1);
                keys.swap(i, j);
            }
            out.push('{');
            for (i, (k, v)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(" :\t");
                write_shuffled(v, seed, out);
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// Serialise with other spellings of the same values: characters as `\uXXXX` escapes
/// (surrogate pairs beyond the BMP) and integers below 2^53 as `N.0` or `Ne0`.
fn write_respelled(value: &Value, seed: &mut u64, out: &mut String) {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed >> 33
    };
    match value {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                if next() % 2 == 0 && c != '"' && c != '\\' && c >= ' ' {
                    out.push(c);
                } else {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            out.push('"');
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() < 1 << 53 => {
                let suffix = [".0", "e0", "", "E+0"][(next() % 4) as usize];
                out.push_str(&format!("{i}{suffix}"));
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_respelled(item, seed, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_respelled(&Value::String(k.clone()), seed, out);
                out.push(':');
                write_respelled(v, seed, out);
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn equal_to_respelled_copy(value in json(), mut seed in any::<u64>()) {
        let text = value.to_string();
        let mut respelled = String::new();
        write_respelled(&value, &mut seed, &mut respelled);
        let report = Comparator::default()
            .compare_json(text.as_bytes(), respelled.as_bytes())
            .unwrap();
        prop_assert!(report.is_equal(), "{respelled}\n{report:?}");
        // And a respelled copy with one more member is still found different.
        let mut bigger = String::new();
        write_respelled(&serde_json::json!({ "doc": value, "x": 1 }), &mut seed, &mut bigger);
        let legacy = serde_json::json!({ "doc": value }).to_string();
        let report = Comparator::default()
            .compare_json(legacy.as_bytes(), bigger.as_bytes())
            .unwrap();
        let pointers: Vec<&str> = report.differences().iter().map(|d| d.pointer.as_str()).collect();
        prop_assert_eq!(pointers, vec!["/x"]);
    }

    #[test]
    fn equal_to_itself(value in json()) {
        let text = value.to_string();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let comparator = Comparator::default();
        let report = comparator.compare_json(text.as_bytes(), text.as_bytes()).unwrap();
        prop_assert!(report.is_equal());
        let report = comparator.compare_json(text.as_bytes(), pretty.as_bytes()).unwrap();
        prop_assert!(report.is_equal(), "{report:?}");
    }

    #[test]
    fn equal_to_key_shuffled_copy(value in json(), mut seed in any::<u64>()) {
        let text = value.to_string();
        let mut shuffled = String::new();
        write_shuffled(&value, &mut seed, &mut shuffled);
        let report = Comparator::default()
            .compare_json(text.as_bytes(), shuffled.as_bytes())
            .unwrap();
        prop_assert!(report.is_equal(), "{shuffled}\n{report:?}");
    }

    #[test]
    fn unordered_array_equals_its_permutations(
        items in prop::collection::vec(json(), 0..20),
        rotate in 0usize..20,
    ) {
        let mut permuted = items.clone();
        permuted.reverse();
        if !permuted.is_empty() {
            let k = rotate % permuted.len();
            permuted.rotate_left(k);
        }
        let report = compare(
            r#"arrays = { "" = "unordered" }"#,
            &Value::Array(items).to_string(),
            &Value::Array(permuted).to_string(),
        );
        prop_assert!(report.is_equal(), "{report:?}");
    }

    #[test]
    fn a_changed_leaf_is_found_at_its_pointer(value in json(), replacement in "[0-9]{1,3}") {
        // Put a string under a fresh key and change it: exactly that pointer differs.
        let legacy = serde_json::json!({ "doc": value, "probe": "x" });
        let candidate = {
            let mut c = legacy.clone();
            c["probe"] = Value::String(replacement);
            c
        };
        let report = Comparator::new(rules(""))
            .compare_json(legacy.to_string().as_bytes(), candidate.to_string().as_bytes())
            .unwrap();
        let pointers: Vec<&str> = report.differences().iter().map(|d| d.pointer.as_str()).collect();
        prop_assert_eq!(pointers, vec!["/probe"]);
    }
}
