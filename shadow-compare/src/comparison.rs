//! Comparing two whole HTTP responses: status, the configured headers and the body.
//!
//! [`Comparator`] owns the checked [`NoiseRules`] and produces a [`DiffReport`]. JSON bodies
//! (by content type, or by sniffing when neither side sends one) are diffed structurally;
//! anything else is compared by bytes and summarised by length and an xxh3-64 hash. Does no
//! I/O and keeps no state between calls, so one `Comparator` can be shared across tasks.

use std::collections::BTreeSet;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::diff::{self, Difference};
use crate::fast;
use crate::rules::NoiseRules;
use crate::tree::Node;

/// Default cap on reported body differences per comparison.
pub const DEFAULT_MAX_DIFFERENCES: usize = 1000;

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The legacy (primary) response.
    Legacy,
    /// The candidate (shadow) response.
    Candidate,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Legacy => "legacy",
            Side::Candidate => "candidate",
        })
    }
}

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// [`Comparator::compare_json`] was given a body that does not parse.
    #[error("{side} body is not valid JSON: {source} (fix the document, or compare it as bytes)")]
    InvalidJson {
        /// Which body.
        side: Side,
        /// The parser's complaint, with line and column.
        source: serde_json::Error,
    },
}

/// One HTTP response, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// All response headers; only the configured ones are compared.
    pub headers: &'a HeaderMap,
    /// The complete body.
    pub body: &'a [u8],
}

/// Status codes that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDiff {
    /// Legacy status.
    pub legacy: u16,
    /// Candidate status.
    pub candidate: u16,
}

/// A compared header whose values differ (all values, joined with `, `).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderDiff {
    /// Lowercase header name.
    pub name: String,
    /// Legacy value, absent when the header is missing.
    pub legacy: Option<String>,
    /// Candidate value, absent when the header is missing.
    pub candidate: Option<String>,
}

/// Length and hash of a body compared as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyDigest {
    /// Length in bytes.
    pub len: usize,
    /// xxh3-64 of the bytes, 16 lowercase hex digits.
    pub xxh3: String,
}

impl BodyDigest {
    /// Digest of a body.
    pub fn of(body: &[u8]) -> Self {
        BodyDigest {
            len: body.len(),
            xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(body)),
        }
    }
}

/// How the bodies compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyDiff {
    /// Byte-identical (checked first, for any content type).
    Identical,
    /// The rules ignore the whole body (`ignore = [""]`).
    Ignored,
    /// Compared as JSON; equal when `differences` is empty.
    Json {
        /// Differences, in document order, at most the comparator's limit.
        differences: Vec<Difference>,
        /// More differences existed than were reported.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// Compared as bytes and different.
    Bytes {
        /// Legacy body summary.
        legacy: BodyDigest,
        /// Candidate body summary.
        candidate: BodyDigest,
        /// Why the bodies were not compared as JSON although one side said JSON.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl BodyDiff {
    /// Whether the bodies count as equal.
    pub fn is_equal(&self) -> bool {
        match self {
            BodyDiff::Identical | BodyDiff::Ignored => true,
            BodyDiff::Json { differences, .. } => differences.is_empty(),
            BodyDiff::Bytes { .. } => false,
        }
    }
}

/// The outcome of comparing two responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    /// Present when the status codes differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusDiff>,
    /// Compared headers that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderDiff>,
    /// The body comparison.
    pub body: BodyDiff,
}

impl DiffReport {
    /// Whether the responses count as equal under the rules.
    pub fn is_equal(&self) -> bool {
        self.status.is_none() && self.headers.is_empty() && self.body.is_equal()
    }

    /// The body differences, if the body was compared as JSON.
    pub fn differences(&self) -> &[Difference] {
        match &self.body {
            BodyDiff::Json { differences, .. } => differences,
            _ => &[],
        }
    }

    /// The distinct fields that differ, with array indices collapsed: JSON pointers
    /// (`"/items/*/score"`), `""` for a body that differs as bytes, `"status"`, and
    /// `"header:<name>"`. Bounded by the shape of the document, not by its length, so
    /// fit for a metric label.
    pub fn fields(&self) -> BTreeSet<String> {
        let mut fields = BTreeSet::new();
        if self.status.is_some() {
            fields.insert("status".to_owned());
        }
        for header in &self.headers {
            fields.insert(format!("header:{}", header.name));
        }
        match &self.body {
            BodyDiff::Json { differences, .. } => {
                fields.extend(differences.iter().map(Difference::metric_pointer));
            }
            BodyDiff::Bytes { .. } => {
                fields.insert(String::new());
            }
            BodyDiff::Identical | BodyDiff::Ignored => {}
        }
        fields
    }
}

/// Compares responses under one set of noise rules.
#[derive(Debug, Clone)]
pub struct Comparator {
    rules: NoiseRules,
    max_differences: usize,
}

impl Default for Comparator {
    fn default() -> Self {
        Comparator::new(NoiseRules::default())
    }
}

impl Comparator {
    /// A comparator reporting at most [`DEFAULT_MAX_DIFFERENCES`] body differences.
    pub fn new(rules: NoiseRules) -> Self {
        Comparator {
            rules,
            max_differences: DEFAULT_MAX_DIFFERENCES,
        }
    }

    /// Change the cap on reported body differences (at least 1).
    pub fn with_max_differences(mut self, max: usize) -> Self {
        self.max_differences = max.max(1);
        self
    }

    /// The rules in force.
    pub fn rules(&self) -> &NoiseRules {
        &self.rules
    }

    /// Compare two responses: status, the configured headers, and the body.
    pub fn compare(&self, legacy: &Response<'_>, candidate: &Response<'_>) -> DiffReport {
        let status = (legacy.status != candidate.status).then_some(StatusDiff {
            legacy: legacy.status,
            candidate: candidate.status,
        });
        let headers = self
            .rules
            .compare_headers()
            .iter()
            .filter_map(|name| {
                let l = joined(legacy.headers, name);
                let c = joined(candidate.headers, name);
                (l != c).then(|| HeaderDiff {
                    name: name.as_str().to_owned(),
                    legacy: l,
                    candidate: c,
                })
            })
            .collect();
        let content_type = content_type(legacy.headers).or_else(|| content_type(candidate.headers));
        let body = self.compare_body(content_type, legacy.body, candidate.body);
        DiffReport {
            status,
            headers,
            body,
        }
    }

    /// Compare two bodies. `content_type` decides JSON vs bytes; with none, a body whose
    /// first non-blank byte is `{` or `[` is tried as JSON.
    pub fn compare_body(
        &self,
        content_type: Option<&str>,
        legacy: &[u8],
        candidate: &[u8],
    ) -> BodyDiff {
        if legacy == candidate {
            return BodyDiff::Identical;
        }
        if self.rules.is_ignored("") {
            return BodyDiff::Ignored;
        }
        let json = match content_type {
            Some(ct) => is_json_content_type(ct),
            None => looks_like_json(legacy) || looks_like_json(candidate),
        };
        if !json {
            return bytes_diff(legacy, candidate, None);
        }
        match self.diff_json(legacy, candidate) {
            Ok(body) => body,
            Err(CompareError::InvalidJson { side, source }) => bytes_diff(
                legacy,
                candidate,
                Some(format!("{side} body is not valid JSON: {source}")),
            ),
        }
    }

    /// Compare two JSON documents (e.g. files); an unparsable side is an error.
    pub fn compare_json(
        &self,
        legacy: &[u8],
        candidate: &[u8],
    ) -> Result<DiffReport, CompareError> {
        let body = if legacy == candidate {
            // Still reject garbage: "identical" is only meaningful for JSON here. The
            // tokenizer accepts only what serde_json accepts; serde_json words the error.
            if !fast::is_valid(legacy) {
                Node::parse(legacy).map_err(|source| CompareError::InvalidJson {
                    side: Side::Legacy,
                    source,
                })?;
            }
            BodyDiff::Identical
        } else if self.rules.is_ignored("") {
            BodyDiff::Ignored
        } else {
            self.diff_json(legacy, candidate)?
        };
        Ok(DiffReport {
            status: None,
            headers: Vec::new(),
            body,
        })
    }

    fn diff_json(&self, legacy: &[u8], candidate: &[u8]) -> Result<BodyDiff, CompareError> {
        // The fast path only ever answers "equal"; differences and errors come from the tree.
        if fast::proven_equal(legacy, candidate, &self.rules) {
            return Ok(BodyDiff::Json {
                differences: Vec::new(),
                truncated: false,
            });
        }
        let l = Node::parse(legacy).map_err(|source| CompareError::InvalidJson {
            side: Side::Legacy,
            source,
        })?;
        let c = Node::parse(candidate).map_err(|source| CompareError::InvalidJson {
            side: Side::Candidate,
            source,
        })?;
        let (differences, truncated) = diff::diff_nodes(&l, &c, &self.rules, self.max_differences);
        Ok(BodyDiff::Json {
            differences,
            truncated,
        })
    }
}

fn bytes_diff(legacy: &[u8], candidate: &[u8], note: Option<String>) -> BodyDiff {
    BodyDiff::Bytes {
        legacy: BodyDigest::of(legacy),
        candidate: BodyDigest::of(candidate),
        note,
    }
}

fn joined(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let parts: Vec<String> = values
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    Some(parts.join(", "))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// `application/json`, or any `+json` media type, parameters ignored.
pub fn is_json_content_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}
