//! What the proxy records ([`Observation`], [`MismatchSample`], [`RecordedRequest`],
//! [`RecordedResponse`]) and what readers get back ([`RouteSummary`], [`StoredMismatch`],
//! [`FieldCount`]).
//!
//! Bodies are bytes in Rust and have one JSON representation, used both in the SQLite
//! file and in every JSON output (admin API, export):
//! `"body": "<text>"` when the bytes are valid UTF-8, otherwise
//! `"body": "<standard base64>", "body_base64": true`. `body_base64` is omitted when false.
//! A body the store cut to its limit ([`crate::StoreConfig::max_body_bytes`]) also has
//! `"body_truncated_from": <full length in bytes>`; omitted when the body is whole.
//! Owns no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use shadow_compare::DiffReport;

/// How one shadowed request ended (the `outcome` label of `ficus_shadow_requests_total`).
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Compared and equal under the route's noise rules.
    Match,
    /// Compared and different.
    Mismatch,
    /// The candidate could not be asked or answered garbage.
    Error,
    /// The candidate did not answer within the route's timeout.
    Timeout,
    /// Not mirrored (unsafe method, body too large).
    Skipped,
    /// Not mirrored because a concurrency limit was reached.
    Dropped,
}

impl Outcome {
    /// Every outcome, in the order of the summary's columns.
    pub const ALL: [Outcome; 6] = [
        Outcome::Match,
        Outcome::Mismatch,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Skipped,
        Outcome::Dropped,
    ];

    /// The snake_case name used in JSON, in metrics and in the `totals` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch => "mismatch",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Skipped => "skipped",
            Outcome::Dropped => "dropped",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request as the proxy sent it (after redaction, when stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RequestJson", from = "RequestJson")]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    /// Header names and values, in order, repeated names kept.
    pub headers: Vec<(String, String)>,
    /// The body (possibly truncated by the proxy's `max_body_bytes`).
    pub body: Vec<u8>,
    /// The body's full length when the store kept only its first bytes.
    pub body_truncated_from: Option<u64>,
}

/// One response, legacy or candidate (after redaction, when stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "ResponseJson", from = "ResponseJson")]
pub struct RecordedResponse {
    /// Status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The body's full length when the store kept only its first bytes.
    pub body_truncated_from: Option<u64>,
    /// Time to the complete response, in milliseconds.
    pub latency_ms: f64,
}

/// One header's value, when present (first occurrence, case-insensitive name).
pub(crate) fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl RecordedRequest {
    /// The first value of a header, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

impl RecordedResponse {
    /// The first value of a header, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A body in its JSON representation (see the module doc).
fn body_to_json(body: Vec<u8>) -> (String, bool) {
    match String::from_utf8(body) {
        Ok(text) => (text, false),
        Err(e) => (BASE64.encode(e.as_bytes()), true),
    }
}

/// The inverse of [`body_to_json`]. Text flagged base64 that does not decode is kept as
/// its bytes rather than failing the whole read: a damaged body should not hide the row.
fn body_from_json(body: String, base64: bool) -> Vec<u8> {
    if base64 {
        BASE64
            .decode(body.as_bytes())
            .unwrap_or_else(|_| body.into_bytes())
    } else {
        body.into_bytes()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Keeps at most `limit` bytes of `body`; returns its full length when it was cut. A
/// UTF-8 body is cut at a character boundary, so it stays text (a JSON body is no longer
/// valid JSON, which readers see from `body_truncated_from`).
pub(crate) fn truncate_body(body: &[u8], limit: usize) -> (Vec<u8>, Option<u64>) {
    if body.len() <= limit {
        return (body.to_vec(), None);
    }
    let mut cut = limit;
    if std::str::from_utf8(body).is_ok() {
        // A continuation byte (0b10xx_xxxx) is never the start of a character.
        while cut > 0 && body[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
    }
    (body[..cut].to_vec(), Some(body.len() as u64))
}

impl RecordedRequest {
    /// A copy with the body cut to `limit` bytes (see [`truncate_body`]).
    pub(crate) fn truncated(&self, limit: usize) -> Self {
        let (body, cut) = truncate_body(&self.body, limit);
        RecordedRequest {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body,
            body_truncated_from: cut.or(self.body_truncated_from),
        }
    }
}

impl RecordedResponse {
    /// A copy with the body cut to `limit` bytes (see [`truncate_body`]).
    pub(crate) fn truncated(&self, limit: usize) -> Self {
        let (body, cut) = truncate_body(&self.body, limit);
        RecordedResponse {
            status: self.status,
            headers: self.headers.clone(),
            body,
            body_truncated_from: cut.or(self.body_truncated_from),
            latency_ms: self.latency_ms,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RequestJson {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
    #[serde(default, skip_serializing_if = "is_false")]
    body_base64: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_truncated_from: Option<u64>,
}

impl From<RecordedRequest> for RequestJson {
    fn from(r: RecordedRequest) -> Self {
        let (body, body_base64) = body_to_json(r.body);
        RequestJson {
            method: r.method,
            uri: r.uri,
            headers: r.headers,
            body,
            body_base64,
            body_truncated_from: r.body_truncated_from,
        }
    }
}

impl From<RequestJson> for RecordedRequest {
    fn from(r: RequestJson) -> Self {
        RecordedRequest {
            method: r.method,
            uri: r.uri,
            headers: r.headers,
            body: body_from_json(r.body, r.body_base64),
            body_truncated_from: r.body_truncated_from,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ResponseJson {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    #[serde(default, skip_serializing_if = "is_false")]
    body_base64: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_truncated_from: Option<u64>,
    latency_ms: f64,
}

impl From<RecordedResponse> for ResponseJson {
    fn from(r: RecordedResponse) -> Self {
        let (body, body_base64) = body_to_json(r.body);
        ResponseJson {
            status: r.status,
            headers: r.headers,
            body,
            body_base64,
            body_truncated_from: r.body_truncated_from,
            latency_ms: r.latency_ms,
        }
    }
}

impl From<ResponseJson> for RecordedResponse {
    fn from(r: ResponseJson) -> Self {
        RecordedResponse {
            status: r.status,
            headers: r.headers,
            body: body_from_json(r.body, r.body_base64),
            body_truncated_from: r.body_truncated_from,
            latency_ms: r.latency_ms,
        }
    }
}

/// Both sides of one mismatch and what differed: what the reservoir keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MismatchSample {
    /// The request (as sent to legacy; the candidate got the same).
    pub request: RecordedRequest,
    /// Legacy's answer (what the client got).
    pub legacy: RecordedResponse,
    /// The candidate's answer.
    pub candidate: RecordedResponse,
    /// The comparison.
    pub report: DiffReport,
}

/// One shadow outcome, as the proxy's recorder thread hands it over.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Route name.
    pub route: String,
    /// How it ended.
    pub outcome: Outcome,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// Differing fields, from [`DiffReport::fields`]; counted only for mismatches.
    pub fields: Vec<String>,
    /// The full sample, offered to the reservoir; used only for mismatches. A mismatch
    /// without one still counts in the totals and the fields.
    pub sample: Option<MismatchSample>,
}

impl Observation {
    /// An outcome with no fields and no sample (anything but a sampled mismatch).
    pub fn outcome(route: &str, outcome: Outcome, at_unix_ms: i64) -> Self {
        Observation {
            route: route.to_owned(),
            outcome,
            at_unix_ms,
            fields: Vec::new(),
            sample: None,
        }
    }

    /// A mismatch with its sample; the fields are taken from the report.
    pub fn mismatch(route: &str, at_unix_ms: i64, sample: MismatchSample) -> Self {
        Observation {
            route: route.to_owned(),
            outcome: Outcome::Mismatch,
            at_unix_ms,
            fields: sample.report.fields().into_iter().collect(),
            sample: Some(sample),
        }
    }
}

/// Totals of one route (`GET /admin/shadow`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteSummary {
    /// Route name.
    pub route: String,
    /// Compared and equal.
    pub r#match: u64,
    /// Compared and different.
    pub mismatch: u64,
    /// Candidate errors.
    pub error: u64,
    /// Candidate timeouts.
    pub timeout: u64,
    /// Not mirrored (method, size).
    pub skipped: u64,
    /// Not mirrored (concurrency limit).
    pub dropped: u64,
    /// `match / (match + mismatch)`; 1.0 while both are 0.
    pub match_rate: f64,
}

impl RouteSummary {
    /// All counts zero.
    pub fn empty(route: &str) -> Self {
        RouteSummary {
            route: route.to_owned(),
            r#match: 0,
            mismatch: 0,
            error: 0,
            timeout: 0,
            skipped: 0,
            dropped: 0,
            match_rate: 1.0,
        }
    }

    /// The count of one outcome.
    pub fn count(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Match => self.r#match,
            Outcome::Mismatch => self.mismatch,
            Outcome::Error => self.error,
            Outcome::Timeout => self.timeout,
            Outcome::Skipped => self.skipped,
            Outcome::Dropped => self.dropped,
        }
    }

    pub(crate) fn set(&mut self, outcome: Outcome, count: u64) {
        let slot = match outcome {
            Outcome::Match => &mut self.r#match,
            Outcome::Mismatch => &mut self.mismatch,
            Outcome::Error => &mut self.error,
            Outcome::Timeout => &mut self.timeout,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Dropped => &mut self.dropped,
        };
        *slot = count;
        let compared = self.r#match + self.mismatch;
        self.match_rate = if compared == 0 {
            1.0
        } else {
            self.r#match as f64 / compared as f64
        };
    }
}

/// One mismatch kept by the reservoir (`GET /admin/shadow/{route}/diffs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMismatch {
    /// Row id: unique per file and never reused, also after the slot is replaced.
    pub id: i64,
    /// When it was observed, in milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// The request.
    pub request: RecordedRequest,
    /// Legacy's answer.
    pub legacy: RecordedResponse,
    /// The candidate's answer.
    pub candidate: RecordedResponse,
    /// The comparison.
    pub report: DiffReport,
}

/// How often one field differed (`GET /admin/shadow/{route}/fields`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCount {
    /// Collapsed pointer (`/items/*/score`), `status`, `header:<name>`, `""` for a body
    /// compared as bytes, or [`crate::OTHER_FIELD`].
    pub pointer: String,
    /// Mismatches in which it differed.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(body: &[u8]) -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            uri: "/x".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
            body_truncated_from: None,
        }
    }

    #[test]
    fn utf8_body_is_text_without_flag() {
        let json = serde_json::to_value(request(b"{\"a\":1}")).unwrap();
        assert_eq!(json["body"], "{\"a\":1}");
        assert!(json.get("body_base64").is_none());
        assert_eq!(
            serde_json::from_value::<RecordedRequest>(json).unwrap(),
            request(b"{\"a\":1}")
        );
    }

    #[test]
    fn binary_body_is_base64_and_round_trips() {
        let bytes = [0xff, 0x00, 0xfe, b'a'];
        let json = serde_json::to_value(request(&bytes)).unwrap();
        assert_eq!(json["body"], "/wD+YQ==");
        assert_eq!(json["body_base64"], true);
        assert_eq!(
            serde_json::from_value::<RecordedRequest>(json).unwrap(),
            request(&bytes)
        );
        let resp = RecordedResponse {
            status: 200,
            headers: vec![],
            body: bytes.to_vec(),
            body_truncated_from: None,
            latency_ms: 1.5,
        };
        let text = serde_json::to_string(&resp).unwrap();
        assert_eq!(
            serde_json::from_str::<RecordedResponse>(&text).unwrap(),
            resp
        );
    }

    #[test]
    fn truncation_keeps_text_whole_characters_and_says_so() {
        let body = "é".repeat(10).into_bytes(); // 20 bytes, 2 per character
        let cut = request(&body).truncated(5);
        assert_eq!(
            cut.body,
            "éé".as_bytes(),
            "cut back to a character boundary"
        );
        assert_eq!(cut.body_truncated_from, Some(20));
        let json = serde_json::to_value(&cut).unwrap();
        assert_eq!(json["body_truncated_from"], 20);
        assert!(json.get("body_base64").is_none(), "still text");
        assert_eq!(
            serde_json::from_value::<RecordedRequest>(json).unwrap(),
            cut
        );
        let whole = request(b"{}").truncated(5);
        assert_eq!(whole, request(b"{}"));
        assert!(
            serde_json::to_value(&whole)
                .unwrap()
                .get("body_truncated_from")
                .is_none()
        );
        // Binary bodies are cut at the byte.
        let (bytes, from) = truncate_body(&[0xff; 9], 4);
        assert_eq!((bytes.len(), from), (4, Some(9)));
    }

    #[test]
    fn summary_serialises_match_without_raw_prefix() {
        let mut s = RouteSummary::empty("r");
        s.set(Outcome::Match, 3);
        s.set(Outcome::Mismatch, 1);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["match"], 3);
        assert_eq!(json["match_rate"], 0.75);
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::json!(o.as_str())
            );
        }
        assert_eq!(Outcome::from_name("nope"), None);
    }
}
