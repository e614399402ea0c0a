//! Learned noise: fields that differ between two *legacy* answers to the same request are
//! nondeterministic (timestamps, request ids, random sampling) and not the candidate's fault.
//!
//! [`nondeterministic_fields`] finds them for one pair; [`LearnedNoise`] accumulates them
//! over many requests (and across instances, by merging) and turns the ones seen often
//! enough into ignore patterns. Does no I/O: the proxy decides when to ask legacy twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::comparison::{Comparator, DiffReport, Response};
use crate::rules::{NoiseRules, RuleErrors};

/// The fields (index-collapsed pointers, `"status"`, `"header:<name>"`) that differ between
/// two legacy responses to the same request, under the comparator's current rules.
pub fn nondeterministic_fields(
    comparator: &Comparator,
    first: &Response<'_>,
    second: &Response<'_>,
) -> BTreeSet<String> {
    comparator.compare(first, second).fields()
}

/// Counts of nondeterministic fields over a number of legacy-vs-legacy samples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedNoise {
    samples: u64,
    fields: BTreeMap<String, u64>,
}

impl LearnedNoise {
    /// Nothing learned yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one legacy-vs-legacy comparison.
    pub fn observe(&mut self, report: &DiffReport) {
        self.record(report.fields());
    }

    /// Record the differing fields of one sample.
    pub fn record<I: IntoIterator<Item = String>>(&mut self, fields: I) {
        self.samples += 1;
        for field in fields {
            *self.fields.entry(field).or_default() += 1;
        }
    }

    /// Add another accumulator's counts (e.g. from another proxy instance).
    pub fn merge(&mut self, other: &LearnedNoise) {
        self.samples += other.samples;
        for (field, count) in &other.fields {
            *self.fields.entry(field.clone()).or_default() += count;
        }
    }

    /// How many samples were recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Every field seen, most frequent first (ties by name).
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut fields: Vec<(String, u64)> =
            self.fields.iter().map(|(f, c)| (f.clone(), *c)).collect();
        fields.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        fields
    }

    /// JSON pointer patterns seen in at least `min_count` samples, in pointer order. Status,
    /// header and whole-body (`""`) fields are left out: ignoring those would hide everything.
    pub fn ignore_patterns(&self, min_count: u64) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(field, count)| field.starts_with('/') && **count >= min_count.max(1))
            .map(|(field, _)| field.clone())
            .collect()
    }

    /// `rules` plus [`Self::ignore_patterns`].
    pub fn apply(&self, rules: &NoiseRules, min_count: u64) -> Result<NoiseRules, RuleErrors> {
        rules.with_ignored(self.ignore_patterns(min_count))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use http::HeaderMap;

    use super::*;

    #[test]
    fn learns_and_applies() {
        let headers = HeaderMap::new();
        let a = br#"{"generated_at": 1, "items": [{"id": 1, "rnd": 0.1}, {"id": 2, "rnd": 0.5}], "n": 2}"#;
        let b = br#"{"generated_at": 2, "items": [{"id": 1, "rnd": 0.7}, {"id": 2, "rnd": 0.9}], "n": 2}"#;
        let comparator = Comparator::default();
        let respond = |body: &'static [u8]| Response {
            status: 200,
            headers: &headers,
            body,
        };
        let fields = nondeterministic_fields(&comparator, &respond(a), &respond(b));
        assert_eq!(
            fields.iter().map(String::as_str).collect::<Vec<_>>(),
            ["/generated_at", "/items/*/rnd"]
        );

        let mut noise = LearnedNoise::new();
        noise.record(fields);
        let mut other = LearnedNoise::new();
        other.record(["/generated_at".to_owned(), "status".to_owned()]);
        noise.merge(&other);
        assert_eq!(noise.samples(), 2);
        assert_eq!(noise.fields()[0], ("/generated_at".to_owned(), 2));
        assert_eq!(noise.ignore_patterns(2), ["/generated_at"]);
        assert_eq!(noise.ignore_patterns(1), ["/generated_at", "/items/*/rnd"]);

        let rules = noise.apply(&NoiseRules::default(), 1).unwrap();
        let report = Comparator::new(rules).compare(&respond(a), &respond(b));
        assert!(report.is_equal(), "{report:?}");
    }
}
