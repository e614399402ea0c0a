//! [`Redaction`]: removes secrets from a sample before it is stored. The caller (the
//! proxy's recorder thread) applies it; the store writes what it is given.
//!
//! Rules:
//! - Headers: the value of every header whose name is listed (case-insensitive) becomes
//!   [`REDACTED`], in requests, responses and header differences of the report.
//! - JSON bodies (any body that parses as JSON, whatever its content type): every field
//!   matching a pointer pattern (RFC 6901, `*` matches one segment, `""` the whole body)
//!   becomes the string [`REDACTED`]. A body with no match keeps its exact bytes.
//! - A body the rules cannot inspect — it declares a JSON content type but does not parse
//!   (e.g. truncated), or it has a `Content-Encoding` other than `identity` — is replaced
//!   by `"[REDACTED]"` as a whole when any pointer pattern is configured: the secret might
//!   be in it and we cannot find it.
//! - `application/x-www-form-urlencoded` bodies: values of keys matching a one-segment
//!   pattern (`/password`, `/*`) become `%5BREDACTED%5D`.
//! - Any other body (text, binary) is kept as it is. Do not store routes whose other
//!   bodies carry secrets (or give them a small `max_body_bytes` so no sample is taken).
//! - Report differences at or under a pattern have their values redacted; a difference
//!   at an ancestor (e.g. `/user` missing) has the matching fields inside its value
//!   redacted. Bytes digests (length, xxh3) are kept.

use serde_json::Value;
use shadow_compare::{BodyDiff, DiffReport};

use crate::error::StoreError;
use crate::record::{MismatchSample, RecordedRequest, RecordedResponse, header};

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";
const REDACTED_FORM: &str = "%5BREDACTED%5D";

/// Checked redaction rules: header names and JSON pointer patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    /// Lowercase header names.
    headers: Vec<String>,
    /// Parsed pointer patterns (unescaped segments, `*` as a wildcard).
    pointers: Vec<Vec<String>>,
}

impl Default for Redaction {
    /// [`Redaction::default_headers`] and no pointer patterns.
    fn default() -> Self {
        Redaction {
            headers: Redaction::default_headers(),
            pointers: Vec::new(),
        }
    }
}

impl Redaction {
    /// Rules from header names and pointer patterns; all are checked, the first bad one
    /// is reported.
    pub fn new(headers: &[String], json_pointers: &[String]) -> Result<Self, StoreError> {
        let headers = headers
            .iter()
            .map(|name| {
                if is_token(name) {
                    Ok(name.to_ascii_lowercase())
                } else {
                    Err(StoreError::HeaderName { name: name.clone() })
                }
            })
            .collect::<Result<_, _>>()?;
        let pointers = json_pointers
            .iter()
            .map(|pattern| {
                shadow_compare::pointer::parse(pattern).map_err(|source| StoreError::Pointer {
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Redaction { headers, pointers })
    }

    /// `authorization`, `cookie`, `set-cookie`, `proxy-authorization`, `x-api-key`.
    pub fn default_headers() -> Vec<String> {
        [
            "authorization",
            "cookie",
            "set-cookie",
            "proxy-authorization",
            "x-api-key",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Redacts a request's headers and body.
    pub fn apply_request(&self, r: &mut RecordedRequest) {
        self.body(&r.headers, &mut r.body);
        self.headers(&mut r.headers);
    }

    /// Redacts a response's headers and body.
    pub fn apply_response(&self, r: &mut RecordedResponse) {
        self.body(&r.headers, &mut r.body);
        self.headers(&mut r.headers);
    }

    /// Redacts the values a report quotes: header differences of listed headers, and body
    /// differences at, under or above a pointer pattern.
    pub fn apply_report(&self, report: &mut DiffReport) {
        for h in &mut report.headers {
            if self.is_secret_header(&h.name) {
                redact_opt_string(&mut h.legacy);
                redact_opt_string(&mut h.candidate);
            }
        }
        if self.pointers.is_empty() {
            return;
        }
        let BodyDiff::Json { differences, .. } = &mut report.body else {
            return;
        };
        for d in differences {
            // Pointers in reports come from the comparator and always parse; a stray bad
            // one is treated as the whole document, which redacts more, never less.
            let segments = shadow_compare::pointer::parse(&d.pointer).unwrap_or_default();
            for pattern in &self.pointers {
                for value in [&mut d.legacy, &mut d.candidate].into_iter().flatten() {
                    redact_under(value, pattern, &segments);
                }
            }
        }
    }

    /// Redacts all four parts of a sample.
    pub fn apply_sample(&self, s: &mut MismatchSample) {
        self.apply_request(&mut s.request);
        self.apply_response(&mut s.legacy);
        self.apply_response(&mut s.candidate);
        self.apply_report(&mut s.report);
    }

    fn is_secret_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    fn headers(&self, headers: &mut [(String, String)]) {
        for (name, value) in headers.iter_mut() {
            if self.is_secret_header(name) {
                *value = REDACTED.to_owned();
            }
        }
    }

    fn body(&self, headers: &[(String, String)], body: &mut Vec<u8>) {
        if self.pointers.is_empty() || body.is_empty() {
            return;
        }
        let whole = || serde_json::to_vec(REDACTED).unwrap_or_else(|_| REDACTED.into());
        let encoded = header(headers, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        if encoded {
            *body = whole();
            return;
        }
        if let Ok(mut value) = serde_json::from_slice::<Value>(body) {
            let mut changed = false;
            for pattern in &self.pointers {
                changed |= redact_value(&mut value, pattern);
            }
            if changed {
                // Serialising a Value cannot fail; keep the original bytes if it ever did.
                if let Ok(bytes) = serde_json::to_vec(&value) {
                    *body = bytes;
                }
            }
            return;
        }
        let content_type = header(headers, "content-type").unwrap_or_default();
        if shadow_compare::is_json_content_type(content_type) {
            *body = whole();
        } else if media_type(content_type) == "application/x-www-form-urlencoded" {
            self.form(body);
        }
    }

    fn form(&self, body: &mut Vec<u8>) {
        let keys: Vec<&str> = self
            .pointers
            .iter()
            .filter_map(|p| match p.as_slice() {
                [one] => Some(one.as_str()),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(body);
        let pairs: Vec<String> = text
            .split('&')
            .map(|pair| {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                let decoded = percent_decode(key);
                if keys.iter().any(|k| *k == "*" || *k == decoded) {
                    format!("{key}={REDACTED_FORM}")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        *body = pairs.join("&").into_bytes();
    }
}

fn redact_opt_string(v: &mut Option<String>) {
    if let Some(v) = v {
        *v = REDACTED.to_owned();
    }
}

/// Redacts a difference's value found at `at`: wholly when `pattern` matches `at` or an
/// ancestor of it, or the matching fields inside it when `at` is an ancestor of `pattern`.
fn redact_under(value: &mut Value, pattern: &[String], at: &[String]) {
    let common = pattern.len().min(at.len());
    let agrees = pattern[..common]
        .iter()
        .zip(&at[..common])
        .all(|(p, s)| p == "*" || p == s);
    if !agrees {
        return;
    }
    if pattern.len() <= at.len() {
        *value = Value::from(REDACTED);
    } else {
        redact_value(value, &pattern[at.len()..]);
    }
}

/// Replaces every node matching `pattern` (relative to `v`) by [`REDACTED`]; whether any was.
fn redact_value(v: &mut Value, pattern: &[String]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        if v.as_str() == Some(REDACTED) {
            return false;
        }
        *v = Value::from(REDACTED);
        return true;
    };
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if first == "*" || first == key {
                    changed |= redact_value(child, rest);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                if first == "*" || *first == i.to_string() {
                    changed |= redact_value(child, rest);
                }
            }
        }
        _ => {}
    }
    changed
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `application/x-www-form-urlencoded` key decoding: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 9110 token: what a header name may be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(pointers: &[&str]) -> Redaction {
        let pointers: Vec<String> = pointers.iter().map(|p| p.to_string()).collect();
        Redaction::new(&Redaction::default_headers(), &pointers).unwrap()
    }

    fn response(content_type: &str, body: &[u8]) -> RecordedResponse {
        RecordedResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("Set-Cookie".into(), "sid=abc".into()),
            ],
            body: body.to_vec(),
            body_truncated_from: None,
            latency_ms: 1.0,
        }
    }

    #[test]
    fn rejects_bad_patterns_and_names_naming_them() {
        let e = Redaction::new(&[], &["password".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "redaction pointer \"password\": pointer \"password\" must be empty or start with \"/\" (write \"/password\")"
        );
        let e = Redaction::new(&["bad name".into()], &[]).unwrap_err();
        assert!(
            e.to_string().starts_with("redaction header \"bad name\""),
            "{e}"
        );
        assert!(Redaction::new(&[String::new()], &[]).is_err());
    }

    #[test]
    fn json_fields_with_wildcards() {
        let r = rules(&["/password", "/cards/*/number"]);
        let mut resp = response(
            "application/json",
            br#"{"password":"hunter2","cards":[{"number":"4111","exp":"12/30"}],"user":"ana"}"#,
        );
        r.apply_response(&mut resp);
        assert_eq!(
            String::from_utf8(resp.body).unwrap(),
            r#"{"cards":[{"exp":"12/30","number":"[REDACTED]"}],"password":"[REDACTED]","user":"ana"}"#
        );
        assert_eq!(resp.headers[1], ("Set-Cookie".into(), REDACTED.into()));
        assert_eq!(resp.headers[0].1, "application/json");
    }

    #[test]
    fn json_without_match_keeps_its_bytes() {
        let r = rules(&["/password"]);
        let body = b"{ \"user\" :  \"ana\" }";
        let mut resp = response("application/json", body);
        r.apply_response(&mut resp);
        assert_eq!(resp.body, body);
    }

    #[test]
    fn uninspectable_bodies_are_replaced_when_patterns_exist() {
        let r = rules(&["/password"]);
        let mut truncated = response("application/json", br#"{"password":"hunt"#);
        r.apply_response(&mut truncated);
        assert_eq!(truncated.body, br#""[REDACTED]""#);
        let mut gzip = response("application/json", &[0x1f, 0x8b, 1, 2]);
        gzip.headers
            .push(("Content-Encoding".into(), "gzip".into()));
        r.apply_response(&mut gzip);
        assert_eq!(gzip.body, br#""[REDACTED]""#);
        // Without patterns nothing but headers is touched.
        let mut kept = response("application/json", br#"{"password":"hunt"#);
        rules(&[]).apply_response(&mut kept);
        assert_eq!(kept.body, br#"{"password":"hunt"#);
    }

    #[test]
    fn other_bodies_are_kept() {
        let r = rules(&["/password"]);
        let mut text = response("text/plain", b"password=hunter2");
        r.apply_response(&mut text);
        assert_eq!(text.body, b"password=hunter2");
    }

    #[test]
    fn form_fields() {
        let r = rules(&["/password", "/a/b"]);
        let mut req = RecordedRequest {
            method: "POST".into(),
            uri: "/login".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: b"user=ana&pass%77ord=hunter2&x".to_vec(),
            body_truncated_from: None,
        };
        r.apply_request(&mut req);
        assert_eq!(req.body, b"user=ana&pass%77ord=%5BREDACTED%5D&x");
        assert_eq!(percent_decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
    }

    #[test]
    fn report_values_at_under_and_above_patterns() {
        let r = rules(&["/user/password", "/cards/*/number"]);
        let mut report = shadow_compare::Comparator::default()
            .compare_json(
                br#"{"user":{"password":"old","name":"a"},"cards":[{"number":"4111"}]}"#,
                br#"{"cards":[{"number":"4222"}]}"#,
            )
            .unwrap();
        r.apply_report(&mut report);
        let text = serde_json::to_string(&report).unwrap();
        for secret in ["old", "4111", "4222"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"name\":\"a\""), "{text}");
    }

    #[test]
    fn report_header_values() {
        let r = rules(&[]);
        let mut report = DiffReport {
            status: None,
            headers: vec![shadow_compare::HeaderDiff {
                name: "set-cookie".into(),
                legacy: Some("sid=1".into()),
                candidate: None,
            }],
            body: BodyDiff::Identical,
        };
        r.apply_report(&mut report);
        assert_eq!(report.headers[0].legacy.as_deref(), Some(REDACTED));
        assert_eq!(report.headers[0].candidate, None);
    }
}
