//! Noise rules: what a comparison ignores or treats specially.
//!
//! Two layers, as everywhere in Ficus: [`NoiseRulesFile`] mirrors the `[routes.shadow]` keys
//! of `routes.toml` exactly (`deny_unknown_fields`), and [`NoiseRules`] is the checked form,
//! built with `NoiseRules::try_from(file)` which reports **all** problems at once. Only
//! `NoiseRules` reaches the comparator, which sees the patterns compiled into a segment trie.
//!
//! ```toml
//! ignore = ["/generated_at", "/items/*/score"]     # `*` matches exactly one segment
//! compare_headers = ["content-type"]
//! arrays = { "/items" = "ordered", "/tags" = "unordered", "/users" = { key = "id" } }
//! numbers = { tolerance = 1e-9, relative = 1e-6 }  # both optional, default 0 (exact)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use http::HeaderName;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::pointer::{self, PointerError, Step};

// ---- raw, as in routes.toml ----------------------------------------------------------------

/// The noise-rule keys of a route's `[routes.shadow]` table, exactly as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseRulesFile {
    /// Pointer patterns whose values are never compared.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Response header names compared (case-insensitive); none by default.
    #[serde(default)]
    pub compare_headers: Vec<String>,
    /// Array mode per pointer pattern; arrays not listed are ordered.
    #[serde(default)]
    pub arrays: BTreeMap<String, ArrayModeFile>,
    /// Number tolerance; exact by default.
    #[serde(default)]
    pub numbers: NumbersFile,
}

/// `"ordered"`, `"unordered"` or `{ key = "id" }`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayModeFile {
    /// `"ordered"`.
    Ordered,
    /// `"unordered"`.
    Unordered,
    /// `{ key = "field" }`.
    Keyed {
        /// The field whose value identifies an element.
        key: String,
    },
}

impl<'de> Deserialize<'de> for ArrayModeFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        const EXPECTED: &str = "\"ordered\", \"unordered\" or { key = \"field\" }";
        impl<'de> Visitor<'de> for ModeVisitor {
            type Value = ArrayModeFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "ordered" => Ok(ArrayModeFile::Ordered),
                    "unordered" => Ok(ArrayModeFile::Unordered),
                    other => Err(E::custom(format!(
                        "unknown array mode {other:?}, expected {EXPECTED}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut key = None;
                while let Some(name) = map.next_key::<String>()? {
                    if name != "key" {
                        return Err(de::Error::custom(format!(
                            "unknown field {name:?} in array mode, expected {EXPECTED}"
                        )));
                    }
                    if key.is_some() {
                        return Err(de::Error::duplicate_field("key"));
                    }
                    key = Some(map.next_value::<String>()?);
                }
                key.map(|key| ArrayModeFile::Keyed { key })
                    .ok_or_else(|| de::Error::missing_field("key"))
            }
        }
        deserializer.deserialize_any(ModeVisitor)
    }
}

/// `numbers = { tolerance = 1e-9, relative = 1e-6 }`, as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersFile {
    /// Absolute tolerance: `|a - b| <= tolerance` is equal. Default 0.
    #[serde(default)]
    pub tolerance: f64,
    /// Relative tolerance: `|a - b| <= relative * max(|a|, |b|)` is equal. Default 0.
    #[serde(default)]
    pub relative: f64,
}

// ---- checked --------------------------------------------------------------------------------

/// How an array is matched between the two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayMode {
    /// Position by position; a permutation is reported as `reordered`.
    Ordered,
    /// As a multiset: order is ignored, multiplicity is not.
    Unordered,
    /// Elements matched by the value of one field; order is ignored.
    Keyed(String),
}

/// When two numbers are equal. Integers and floats compare numerically (`1 == 1.0`).
///
/// Two numbers are equal when they are numerically equal, or `|a - b| <= absolute`, or
/// `|a - b| <= relative * max(|a|, |b|)`. Both default to 0 (off).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NumberTolerance {
    /// Absolute tolerance.
    pub absolute: f64,
    /// Relative tolerance.
    pub relative: f64,
}

impl NumberTolerance {
    pub(crate) fn is_exact(&self) -> bool {
        self.absolute == 0.0 && self.relative == 0.0
    }

    pub(crate) fn close(&self, a: f64, b: f64) -> bool {
        let delta = (a - b).abs();
        delta <= self.absolute || delta <= self.relative * a.abs().max(b.abs())
    }
}

/// One problem found while checking noise rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// A pointer in `ignore` or `arrays` is malformed.
    #[error("{field}: {source}")]
    Pointer {
        /// Where it was, e.g. `ignore[2]` or `arrays."/items"`.
        field: String,
        /// What is wrong with it.
        source: PointerError,
    },
    /// `{ key = "" }`.
    #[error("arrays.{pointer:?}: key must name a field, e.g. {{ key = \"id\" }}")]
    EmptyKey {
        /// The array pointer.
        pointer: String,
    },
    /// Not a valid HTTP header name.
    #[error(
        "compare_headers[{index}]: {name:?} is not a valid header name (use e.g. \"content-type\")"
    )]
    HeaderName {
        /// Position in the list.
        index: usize,
        /// The name as written.
        name: String,
    },
    /// Negative, NaN or infinite tolerance.
    #[error("numbers.{name}: {value} must be a finite number >= 0 (0 turns it off)")]
    Tolerance {
        /// `tolerance` or `relative`.
        name: &'static str,
        /// The value as written.
        value: f64,
    },
}

/// Every problem found in one set of noise rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Checked noise rules, ready for [`crate::Comparator`].
#[derive(Debug, Clone, Default)]
pub struct NoiseRules {
    ignore: Vec<String>,
    compare_headers: Vec<HeaderName>,
    arrays: Vec<(String, ArrayMode)>,
    numbers: NumberTolerance,
    matcher: Matcher,
}

impl TryFrom<NoiseRulesFile> for NoiseRules {
    type Error = RuleErrors;

    fn try_from(file: NoiseRulesFile) -> Result<Self, RuleErrors> {
        let mut errors = Vec::new();
        let mut matcher = Matcher::default();

        for (i, pattern) in file.ignore.iter().enumerate() {
            match pointer::parse(pattern) {
                Ok(segments) => matcher.insert(&segments, Action::Ignore),
                Err(source) => errors.push(RuleError::Pointer {
                    field: format!("ignore[{i}]"),
                    source,
                }),
            }
        }

        let mut arrays = Vec::new();
        for (pattern, mode) in &file.arrays {
            let mode = match mode {
                ArrayModeFile::Ordered => ArrayMode::Ordered,
                ArrayModeFile::Unordered => ArrayMode::Unordered,
                ArrayModeFile::Keyed { key } if key.is_empty() => {
                    errors.push(RuleError::EmptyKey {
                        pointer: pattern.clone(),
                    });
                    continue;
                }
                ArrayModeFile::Keyed { key } => ArrayMode::Keyed(key.clone()),
            };
            match pointer::parse(pattern) {
                Ok(segments) => {
                    matcher.insert(&segments, Action::Array(arrays.len()));
                    arrays.push((pattern.clone(), mode));
                }
                Err(source) => errors.push(RuleError::Pointer {
                    field: format!("arrays.{pattern:?}"),
                    source,
                }),
            }
        }

        let mut compare_headers = Vec::new();
        for (index, name) in file.compare_headers.iter().enumerate() {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => compare_headers.push(header),
                Err(_) => errors.push(RuleError::HeaderName {
                    index,
                    name: name.clone(),
                }),
            }
        }

        for (name, value) in [
            ("tolerance", file.numbers.tolerance),
            ("relative", file.numbers.relative),
        ] {
            if !value.is_finite() || value < 0.0 {
                errors.push(RuleError::Tolerance { name, value });
            }
        }

        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        matcher.modes = arrays.iter().map(|(_, mode)| mode.clone()).collect();
        Ok(NoiseRules {
            ignore: file.ignore,
            compare_headers,
            arrays,
            numbers: NumberTolerance {
                absolute: file.numbers.tolerance,
                relative: file.numbers.relative,
            },
            matcher,
        })
    }
}

impl NoiseRules {
    /// The ignore patterns, as written.
    pub fn ignore(&self) -> &[String] {
        &self.ignore
    }

    /// The compared header names.
    pub fn compare_headers(&self) -> &[HeaderName] {
        &self.compare_headers
    }

    /// The array modes, by pattern.
    pub fn arrays(&self) -> &[(String, ArrayMode)] {
        &self.arrays
    }

    /// The number tolerance.
    pub fn numbers(&self) -> NumberTolerance {
        self.numbers
    }

    /// Convert back to the file form (for merging and round-trips).
    pub fn to_file(&self) -> NoiseRulesFile {
        NoiseRulesFile {
            ignore: self.ignore.clone(),
            compare_headers: self
                .compare_headers
                .iter()
                .map(|h| h.as_str().to_owned())
                .collect(),
            arrays: self
                .arrays
                .iter()
                .map(|(pattern, mode)| {
                    let mode = match mode {
                        ArrayMode::Ordered => ArrayModeFile::Ordered,
                        ArrayMode::Unordered => ArrayModeFile::Unordered,
                        ArrayMode::Keyed(key) => ArrayModeFile::Keyed { key: key.clone() },
                    };
                    (pattern.clone(), mode)
                })
                .collect(),
            numbers: NumbersFile {
                tolerance: self.numbers.absolute,
                relative: self.numbers.relative,
            },
        }
    }

    /// These rules plus more ignore patterns (e.g. learned noise). Patterns already present
    /// are not repeated.
    pub fn with_ignored<I, S>(&self, patterns: I) -> Result<Self, RuleErrors>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut file = self.to_file();
        for pattern in patterns {
            let pattern = pattern.into();
            if !file.ignore.contains(&pattern) {
                file.ignore.push(pattern);
            }
        }
        Self::try_from(file)
    }

    /// Whether a concrete pointer is ignored by these rules.
    pub fn is_ignored(&self, pointer: &str) -> bool {
        let Ok(segments) = pointer::parse(pointer) else {
            return false;
        };
        let mut states = self.matcher.root();
        if self.matcher.ignored(&states) {
            return true;
        }
        for segment in &segments {
            states = self.matcher.step(&states, Step::Key(segment));
            if self.matcher.ignored(&states) {
                return true;
            }
            if states.is_empty() {
                return false;
            }
        }
        false
    }

    pub(crate) fn matcher(&self) -> &Matcher {
        &self.matcher
    }
}

// ---- compiled ------------------------------------------------------------------------------

enum Action {
    Ignore,
    Array(usize),
}

/// Index of a trie node.
pub(crate) type State = u32;

/// Patterns compiled into a trie of segments. Walking a document keeps the set of trie nodes
/// its path matches (usually zero or one); an empty set means no rule applies below.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    nodes: Vec<TrieNode>,
    modes: Vec<ArrayMode>,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    literal: HashMap<Box<str>, State>,
    wildcard: Option<State>,
    /// Some literal child is index-shaped, so index steps must look literals up.
    index_literal: bool,
    ignore: bool,
    /// (index into `modes`, number of literal segments): the most literal pattern wins.
    array: Option<(usize, usize)>,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            nodes: vec![TrieNode::default()],
            modes: Vec::new(),
        }
    }
}

impl Matcher {
    fn insert(&mut self, segments: &[String], action: Action) {
        let mut node = 0usize;
        let mut literals = 0;
        for segment in segments {
            let next = self.nodes.len() as State;
            let slot = &mut self.nodes[node];
            let child = if segment == "*" {
                *slot.wildcard.get_or_insert(next)
            } else {
                literals += 1;
                slot.index_literal |= pointer::is_index(segment);
                *slot.literal.entry(segment.as_str().into()).or_insert(next)
            };
            if child == next {
                self.nodes.push(TrieNode::default());
            }
            node = child as usize;
        }
        let node = &mut self.nodes[node];
        match action {
            Action::Ignore => node.ignore = true,
            Action::Array(mode) => match node.array {
                Some((_, existing)) if existing >= literals => {}
                _ => node.array = Some((mode, literals)),
            },
        }
    }

    fn is_empty(&self) -> bool {
        self.nodes.len() == 1 && !self.nodes[0].ignore && self.nodes[0].array.is_none()
    }

    /// The states at the document root.
    pub(crate) fn root(&self) -> Vec<State> {
        if self.is_empty() { Vec::new() } else { vec![0] }
    }

    /// The states after one step. Allocation-free when no rule applies below.
    pub(crate) fn step(&self, states: &[State], step: Step<'_>) -> Vec<State> {
        let mut out = Vec::new();
        let mut buf = String::new();
        for &state in states {
            let node = &self.nodes[state as usize];
            let literal = match step {
                Step::Key(key) => node.literal.get(key),
                Step::Index(i) if node.index_literal => {
                    buf.clear();
                    buf.push_str(&i.to_string());
                    node.literal.get(buf.as_str())
                }
                Step::Index(_) => None,
            };
            out.extend(literal.copied());
            out.extend(node.wildcard);
        }
        out
    }

    /// Whether an index step from these states can depend on the index (some pattern names
    /// a literal index here, e.g. `/items/0`). When not, every index leads to the same states.
    pub(crate) fn index_dependent(&self, states: &[State]) -> bool {
        states.iter().any(|&s| self.nodes[s as usize].index_literal)
    }

    pub(crate) fn ignored(&self, states: &[State]) -> bool {
        states.iter().any(|&s| self.nodes[s as usize].ignore)
    }

    pub(crate) fn array_mode(&self, states: &[State]) -> &ArrayMode {
        states
            .iter()
            .filter_map(|&s| self.nodes[s as usize].array)
            .max_by_key(|&(mode, literals)| (literals, std::cmp::Reverse(mode)))
            .map_or(&ArrayMode::Ordered, |(mode, _)| &self.modes[mode])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(toml_text: &str) -> Result<NoiseRules, String> {
        let file: NoiseRulesFile = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        NoiseRules::try_from(file).map_err(|e| e.to_string())
    }

    #[test]
    fn full_shape_parses() {
        let rules = parse(
            r#"
            ignore = ["/generated_at", "/items/*/score"]
            compare_headers = ["content-type"]
            arrays = { "/items" = "ordered", "/tags" = "unordered", "/users" = { key = "id" } }
            numbers = { tolerance = 1e-9 }
            "#,
        )
        .unwrap();
        assert_eq!(rules.ignore(), ["/generated_at", "/items/*/score"]);
        assert_eq!(rules.compare_headers()[0].as_str(), "content-type");
        assert_eq!(
            rules.arrays(),
            [
                ("/items".to_owned(), ArrayMode::Ordered),
                ("/tags".to_owned(), ArrayMode::Unordered),
                ("/users".to_owned(), ArrayMode::Keyed("id".into())),
            ]
        );
        assert_eq!(rules.numbers().absolute, 1e-9);
        assert_eq!(rules.numbers().relative, 0.0);
    }

    #[test]
    fn empty_is_default() {
        let rules = parse("").unwrap();
        assert!(rules.matcher().root().is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let cases = [
            ("ignored = []", "unknown field `ignored`"),
            ("numbers = { tol = 1.0 }", "unknown field `tol`"),
            (
                r#"arrays = { "/a" = "sorted" }"#,
                "unknown array mode \"sorted\"",
            ),
            (
                r#"arrays = { "/a" = { id = "x" } }"#,
                "unknown field \"id\" in array mode",
            ),
            (r#"arrays = { "/a" = {} }"#, "missing field `key`"),
        ];
        for (input, expected) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let err = parse(
            r#"
            ignore = ["generated_at", "/ok", "/bad~2"]
            compare_headers = ["content type"]
            arrays = { "items" = "unordered", "/users" = { key = "" } }
            numbers = { tolerance = -1.0, relative = inf }
            "#,
        )
        .unwrap_err();
        insta::assert_snapshot!(err, @r#"
        ignore[0]: pointer "generated_at" must be empty or start with "/" (write "/generated_at")
        ignore[2]: pointer "/bad~2" has an invalid escape at byte 4: "~" must be followed by "0" (for "~") or "1" (for "/")
        arrays."/users": key must name a field, e.g. { key = "id" }
        arrays."items": pointer "items" must be empty or start with "/" (write "/items")
        compare_headers[0]: "content type" is not a valid header name (use e.g. "content-type")
        numbers.tolerance: -1 must be a finite number >= 0 (0 turns it off)
        numbers.relative: inf must be a finite number >= 0 (0 turns it off)
        "#);
    }

    #[test]
    fn ignore_matching_table() {
        let rules =
            parse(r#"ignore = ["/generated_at", "/items/*/score", "/a~1b", "/x/0"]"#).unwrap();
        let cases = [
            ("/generated_at", true),
            ("/generated_at/deep", true),
            ("/generated", false),
            ("/items/3/score", true),
            ("/items/3/score/x", true),
            ("/items/3/name", false),
            ("/items/3", false),
            ("/items/3/4/score", false),
            ("/a~1b", true),
            ("/a/b", false),
            ("/x/0", true),
            ("/x/1", false),
            ("", false),
        ];
        for (pointer, ignored) in cases {
            assert_eq!(rules.is_ignored(pointer), ignored, "{pointer}");
        }
        assert!(parse(r#"ignore = [""]"#).unwrap().is_ignored("/anything"));
    }

    #[test]
    fn most_literal_array_mode_wins() {
        let rules =
            parse(r#"arrays = { "/*/list" = "unordered", "/a/list" = { key = "id" } }"#).unwrap();
        let m = rules.matcher();
        let a = m.step(&m.step(&m.root(), Step::Key("a")), Step::Key("list"));
        assert_eq!(m.array_mode(&a), &ArrayMode::Keyed("id".into()));
        let b = m.step(&m.step(&m.root(), Step::Key("b")), Step::Key("list"));
        assert_eq!(m.array_mode(&b), &ArrayMode::Unordered);
        let c = m.step(&m.root(), Step::Key("c"));
        assert_eq!(m.array_mode(&c), &ArrayMode::Ordered);
    }

    #[test]
    fn with_ignored_merges_without_duplicates() {
        let rules = parse(r#"ignore = ["/a"]"#).unwrap();
        let merged = rules.with_ignored(["/a", "/b/*/c"]).unwrap();
        assert_eq!(merged.ignore(), ["/a", "/b/*/c"]);
        assert!(merged.is_ignored("/b/7/c"));
        assert!(rules.with_ignored(["oops"]).is_err());
    }

    #[test]
    fn tolerance_semantics() {
        let abs = NumberTolerance {
            absolute: 1e-9,
            relative: 0.0,
        };
        assert!(abs.close(1.0, 1.0 + 1e-10));
        assert!(!abs.close(1.0, 1.0 + 1e-8));
        let rel = NumberTolerance {
            absolute: 0.0,
            relative: 1e-6,
        };
        assert!(rel.close(1e9, 1e9 + 100.0));
        assert!(!rel.close(1e9, 1e9 + 10_000.0));
    }
}
