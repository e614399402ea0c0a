//! Path normalisation: one canonical spelling of a request path, computed once before
//! routing, and the only spelling the upstream ever sees.
//!
//! Rules (docs/security.md, "Paths"):
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; every
//!   other escape is kept, with upper-case hex;
//! - `.` and `..` segments are resolved (RFC 3986 §5.2.4, `..` never climbs above `/`),
//!   and runs of `/` are merged; a trailing `/` is kept;
//! - refused (400): an encoded `/` or `\`, a literal `\`, NUL, bytes that are not UTF-8
//!   once decoded, an escape left after one decode (`%252e`), `;` path parameters, a
//!   malformed escape, a path that does not start with `/`.
//!
//! Pure: no I/O, no allocation when the path is already canonical (the common case).

use std::borrow::Cow;

/// Why a path was refused. The message never contains the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("encoded slash in path")]
    EncodedSlash,
    #[error("backslash in path")]
    Backslash,
    #[error("NUL in path")]
    Nul,
    #[error("path is not UTF-8 once decoded")]
    InvalidUtf8,
    #[error("double percent-encoding in path")]
    DoubleEncoding,
    #[error("path parameters (;) are not accepted")]
    PathParameter,
    #[error("malformed percent-encoding in path")]
    BadEscape,
    #[error("path must start with /")]
    NotAbsolute,
}

impl PathError {
    /// Short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::EncodedSlash => "encoded_slash",
            PathError::Backslash => "backslash",
            PathError::Nul => "nul",
            PathError::InvalidUtf8 => "invalid_utf8",
            PathError::DoubleEncoding => "double_encoding",
            PathError::PathParameter => "path_parameter",
            PathError::BadEscape => "bad_escape",
            PathError::NotAbsolute => "not_absolute",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` is already canonical: no escapes, no `;` or `\`, no empty, `.` or `..`
/// segment (but a trailing slash).
fn is_canonical(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut seg_start = 1;
    for i in 1..=path.len() {
        let end = i == path.len();
        let b = if end { b'/' } else { path[i] };
        match b {
            b'%' | b';' | b'\\' | 0 => return false,
            b'/' => {
                let seg = &path[seg_start..i];
                if (seg.is_empty() && !end) || seg == b"." || seg == b".." {
                    return false;
                }
                seg_start = i + 1;
            }
            _ => {}
        }
    }
    true
}

/// The canonical form of `path` (the path component only, without the query).
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if path == "*" || is_canonical(bytes) {
        // `*` is the target of `OPTIONS *`; it routes nowhere special and is passed on.
        return Ok(Cow::Borrowed(path));
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }

    // Pass 1: escapes. `out` keeps the spelling sent upstream; `decoded` is fully decoded,
    // only to check that the path is UTF-8.
    let mut out = Vec::with_capacity(bytes.len());
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let c = hi << 4 | lo;
                match c {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    0 => return Err(PathError::Nul),
                    b'%' => {
                        // `%25` followed by two hex digits decodes to another escape.
                        let next_is_escape = bytes.get(i + 3).copied().and_then(hex).is_some()
                            && bytes.get(i + 4).copied().and_then(hex).is_some();
                        if next_is_escape {
                            return Err(PathError::DoubleEncoding);
                        }
                        out.extend_from_slice(b"%25");
                    }
                    c if is_unreserved(c) => out.push(c),
                    c => {
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        out.extend_from_slice(&[
                            b'%',
                            HEX[usize::from(c >> 4)],
                            HEX[usize::from(c & 15)],
                        ]);
                    }
                }
                decoded.push(c);
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            0 => return Err(PathError::Nul),
            _ => {
                out.push(b);
                decoded.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    // Decoding unreserved characters can complete an escape after a `%25` (`%25e%33` ->
    // `%25e3`): judge double encoding on the result too, so the output is a fixed point
    // and no upstream that decodes twice sees a different path.
    if out
        .windows(5)
        .any(|w| w[..3] == *b"%25" && hex(w[3]).is_some() && hex(w[4]).is_some())
    {
        return Err(PathError::DoubleEncoding);
    }

    // Pass 2: segments. Empty segments merge, `.` vanishes, `..` removes its parent.
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for seg in out[1..].split(|&b| b == b'/') {
        trailing_slash = false;
        match seg {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut canonical = Vec::with_capacity(out.len());
    for s in &segments {
        canonical.push(b'/');
        canonical.extend_from_slice(s);
    }
    if canonical.is_empty() || trailing_slash {
        canonical.push(b'/');
    }
    // Only ASCII went in: every non-ASCII byte is still an escape.
    String::from_utf8(canonical)
        .map(Cow::Owned)
        .map_err(|_| PathError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        match normalise(input) {
            Ok(p) => p.into_owned(),
            Err(e) => panic!("{input:?} refused: {e}"),
        }
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/api/users/1", "/api/users/1/", "/a-b_c~d.e/f", "*"] {
            assert!(matches!(normalise(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn equivalent_spellings_become_one() {
        let cases = [
            ("/api//users///1", "/api/users/1"),
            ("/api/./users/1", "/api/users/1"),
            ("/api/x/../users/1", "/api/users/1"),
            ("/api/users/%31", "/api/users/1"),
            ("/api/%75sers/1", "/api/users/1"),
            ("/api/users/1/.", "/api/users/1/"),
            ("/api/users/1/..", "/api/users/"),
            ("/api/users/%2e%2E/2", "/api/2"),
            ("/../../etc", "/etc"),
            ("/..", "/"),
            ("//", "/"),
            ("/a/%7e", "/a/~"),
            ("/a/%c3%a9", "/a/%C3%A9"),
            ("/a/%20b", "/a/%20b"),
            ("/a/%25", "/a/%25"),
            ("/a/%3b", "/a/%3B"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "{input}");
        }
    }

    #[test]
    fn dangerous_spellings_are_refused() {
        let cases = [
            ("/api/users/1%2f..%2f2", PathError::EncodedSlash),
            ("/api/users%2F2", PathError::EncodedSlash),
            ("/api/users/1%5c2", PathError::Backslash),
            ("/api\\users", PathError::Backslash),
            ("/api/%00", PathError::Nul),
            ("/api/%ff", PathError::InvalidUtf8),
            ("/api/%c3", PathError::InvalidUtf8),
            ("/api/%252e%252e/x", PathError::DoubleEncoding),
            ("/api/%252F", PathError::DoubleEncoding),
            // Found by the fuzzer: the escape is completed by a decoded unreserved digit.
            ("/a/e%25e%33/", PathError::DoubleEncoding),
            ("/api/users;jsessionid=1", PathError::PathParameter),
            ("/api/%zz", PathError::BadEscape),
            ("/api/%4", PathError::BadEscape),
            ("api/users", PathError::NotAbsolute),
        ];
        for (input, want) in cases {
            assert_eq!(normalise(input), Err(want), "{input}");
        }
    }

    #[test]
    fn output_is_a_fixed_point() {
        for p in ["/a//b/../c/%7e/%c3%a9/", "/x/./%2e/y", "/%41%42/../%43"] {
            let once = ok(p);
            assert_eq!(ok(&once), once, "{p}");
        }
    }

    mod properties {
        use super::super::normalise;
        use crate::router::{self, Methods, PathPattern, Rule};
        use http::Method;
        use proptest::prelude::*;

        struct R(PathPattern, Methods);
        impl Rule for R {
            fn pattern(&self) -> &PathPattern {
                &self.0
            }
            fn methods(&self) -> &Methods {
                &self.1
            }
        }

        fn table() -> Vec<R> {
            let mut rules: Vec<R> = [
                "/api/users/{user_id}",
                "/api/users/{user_id}/{*rest}",
                "/api/users/me",
                "/api/content/top",
                "/api/content/{id}",
                "/{*rest}",
            ]
            .iter()
            .map(|p| R(PathPattern::parse(p).expect("pattern"), None))
            .collect();
            router::sort_by_specificity(&mut rules);
            rules
        }

        /// The routing decision: which rule, with which parameters.
        fn decide(rules: &[R], path: &str) -> Option<(usize, Vec<(String, String)>)> {
            let i = router::route(rules, &Method::GET, path)?;
            let caps = rules[i].0.captures(path)?;
            Some((
                i,
                caps.into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ))
        }

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("api".to_owned()),
                Just("users".to_owned()),
                Just("content".to_owned()),
                Just("top".to_owned()),
                Just("me".to_owned()),
                "[0-9]{1,3}",
                "[a-zA-Z0-9._~-]{1,6}".prop_filter("not a dot segment", |s| s != "." && s != ".."),
            ]
        }

        /// One way to spell a segment: some characters percent-encoded, in either case.
        fn spell(seg: &str, encode: &[bool], upper: bool) -> String {
            seg.bytes()
                .zip(encode.iter().cycle())
                .map(|(b, &e)| {
                    if e {
                        if upper {
                            format!("%{b:02X}")
                        } else {
                            format!("%{b:02x}")
                        }
                    } else {
                        char::from(b).to_string()
                    }
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn equivalent_spellings_get_the_same_route_and_decision(
                segments in prop::collection::vec(segment(), 1..6),
                encode in prop::collection::vec(any::<bool>(), 1..8),
                upper in any::<bool>(),
                noise in prop::collection::vec(0u8..4, 6),
                detour in "[a-z]{1,4}",
            ) {
                let canonical = format!("/{}", segments.join("/"));
                let mut alt = String::new();
                for (i, seg) in segments.iter().enumerate() {
                    match noise[i % noise.len()] {
                        0 => alt.push('/'),
                        1 => alt.push_str("//"),
                        2 => alt.push_str("/./"),
                        _ => alt.push_str(&format!("/{detour}/../")),
                    }
                    alt.push_str(&spell(seg, &encode, upper));
                }
                let want = normalise(&canonical).map(|p| p.into_owned());
                prop_assert_eq!(want.as_deref(), Ok(canonical.as_str()));
                let got = normalise(&alt).map(|p| p.into_owned());
                prop_assert_eq!(&got, &want, "{} vs {}", alt, canonical);
                let rules = table();
                let got = got.expect("accepted");
                prop_assert_eq!(decide(&rules, &got), decide(&rules, &canonical));
            }

            #[test]
            fn normalising_never_panics_and_is_idempotent(path in "/[ -~]{0,40}") {
                if let Ok(once) = normalise(&path) {
                    let twice = normalise(&once).map(|p| p.into_owned());
                    prop_assert_eq!(twice.as_deref(), Ok(&*once));
                }
            }
        }
    }
}
