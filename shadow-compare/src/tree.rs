//! A borrowed JSON tree tuned for comparison.
//!
//! `serde_json::Value` allocates a `String` for every key and string and a `BTreeMap` node
//! per object. Here strings without escapes borrow from the input and objects are a vector
//! sorted by key once, so two objects compare by a linear merge. Owns parsing, numeric
//! equality and structural hashing; knows nothing about noise rules.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON number as serde_json parsed it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::U(u) => u as f64,
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    /// Numeric equality: integers compare exactly, anything involving a float compares as f64,
    /// so `1 == 1.0`.
    pub(crate) fn exact_eq(self, other: Num) -> bool {
        match (self, other) {
            (Num::U(a), Num::U(b)) => a == b,
            (Num::I(a), Num::I(b)) => a == b,
            // serde_json only produces I for negative values, so U vs I never coincide.
            (Num::U(_), Num::I(_)) | (Num::I(_), Num::U(_)) => false,
            (a, b) => a.as_f64() == b.as_f64(),
        }
    }

    pub(crate) fn to_value(self) -> serde_json::Value {
        match self {
            Num::U(u) => u.into(),
            Num::I(i) => i.into(),
            Num::F(f) => {
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
            }
        }
    }
}

/// One JSON value, borrowing strings from the input where it can.
#[derive(Debug, Clone)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Num),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Sorted by key; duplicate keys resolved as serde_json does (last wins).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => n.to_value(),
            Node::String(s) => Value::String(s.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// Look a key up in an object (binary search over the sorted members).
    pub(crate) fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => members
                .binary_search_by(|(k, _)| k.as_ref().cmp(key))
                .ok()
                .map(|i| &members[i].1),
            _ => None,
        }
    }
}

/// Exact structural equality with numeric semantics (`1 == 1.0`), no rules, no tolerance.
pub(crate) fn exact_eq(a: &Node<'_>, b: &Node<'_>) -> bool {
    match (a, b) {
        (Node::Null, Node::Null) => true,
        (Node::Bool(x), Node::Bool(y)) => x == y,
        (Node::Number(x), Node::Number(y)) => x.exact_eq(*y),
        (Node::String(x), Node::String(y)) => x == y,
        (Node::Array(x), Node::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| exact_eq(p, q))
        }
        (Node::Object(x), Node::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && exact_eq(vx, vy))
        }
        _ => false,
    }
}

/// Mix a 64-bit value (splitmix64 finaliser): cheap and well distributed.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Combine a running hash with the next ordered component.
pub(crate) fn combine(acc: u64, next: u64) -> u64 {
    mix(acc.rotate_left(5) ^ next)
}

pub(crate) fn hash_str(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Hash of a number consistent with [`Num::exact_eq`]: equal numbers hash equally.
pub(crate) fn hash_num(n: Num) -> u64 {
    let f = n.as_f64();
    // -0.0 == 0.0, so they must hash alike.
    let f = if f == 0.0 { 0.0 } else { f };
    mix(f.to_bits() ^ 0x6e75_6d62)
}

// ---- parsing -------------------------------------------------------------------------------

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Node::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Node::Number(Num::U(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Node::Number(if v >= 0 {
            Num::U(v as u64)
        } else {
            Num::I(v)
        }))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Node::Number(Num::F(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::with_capacity(8);
        let mut sorted = true;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value = map.next_value()?;
            if let Some((last, _)) = members.last() {
                sorted &= last.as_ref() < key.0.as_ref();
            }
            members.push((key.0, value));
        }
        if !sorted {
            // Stable, so among duplicate keys the last one written stays last.
            members.sort_by(|(a, _), (b, _)| a.cmp(b));
            dedup_keep_last(&mut members);
        }
        Ok(Node::Object(members))
    }
}

fn dedup_keep_last<V>(members: &mut Vec<(Cow<'_, str>, V)>) {
    let has_duplicates = members.windows(2).any(|w| w[0].0 == w[1].0);
    if !has_duplicates {
        return;
    }
    let mut out: Vec<(Cow<'_, str>, V)> = Vec::with_capacity(members.len());
    for member in members.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => out.push(member),
        }
    }
    *members = out;
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn objects_are_sorted_and_last_duplicate_wins() {
        let node = Node::parse(br#"{"b":1,"a":2,"b":3,"c\n":4}"#).unwrap();
        let value = node.to_value();
        assert_eq!(value, serde_json::json!({"a": 2, "b": 3, "c\n": 4}));
        assert!(node.get("b").is_some());
        assert!(node.get("z").is_none());
    }

    #[test]
    fn numbers_compare_numerically() {
        let cases = [
            ("1", "1.0", true),
            ("1", "1", true),
            ("-1", "-1.0", true),
            ("0", "-0.0", true),
            ("1", "2", false),
            ("18446744073709551615", "18446744073709551614", false),
            ("1e2", "100", true),
        ];
        for (a, b, equal) in cases {
            let (x, y) = (
                Node::parse(a.as_bytes()).unwrap(),
                Node::parse(b.as_bytes()).unwrap(),
            );
            assert_eq!(exact_eq(&x, &y), equal, "{a} vs {b}");
            if equal {
                let (Node::Number(x), Node::Number(y)) = (x, y) else {
                    panic!()
                };
                assert_eq!(hash_num(x), hash_num(y), "{a} vs {b}");
            }
        }
    }
}
