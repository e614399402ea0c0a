//! RFC 6901 JSON pointers: escaping, validation, and the index-collapsing normaliser.
//!
//! Owns the pointer *syntax* only. Patterns (`*` wildcards) are parsed here into segments;
//! what a pattern *means* (ignore, array mode) lives in `rules`.

use std::fmt::Write as _;

/// A malformed pointer or pointer pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// Not empty and not starting with `/`.
    #[error("pointer {pointer:?} must be empty or start with \"/\" (write {suggestion:?})")]
    MissingLeadingSlash {
        /// The pointer as written.
        pointer: String,
        /// The same pointer with a leading slash.
        suggestion: String,
    },
    /// A `~` not followed by `0` or `1`.
    #[error(
        "pointer {pointer:?} has an invalid escape at byte {offset}: \"~\" must be followed by \"0\" (for \"~\") or \"1\" (for \"/\")"
    )]
    BadEscape {
        /// The pointer as written.
        pointer: String,
        /// Byte offset of the `~`.
        offset: usize,
    },
}

/// Escape one reference token: `~` becomes `~0`, `/` becomes `~1` (in that order).
pub fn escape_segment(segment: &str, out: &mut String) {
    if !segment.contains(['~', '/']) {
        out.push_str(segment);
        return;
    }
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// Build a pointer from unescaped segments.
pub fn from_segments<'s>(segments: impl IntoIterator<Item = &'s str>) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        escape_segment(segment, &mut out);
    }
    out
}

/// Split a pointer into its unescaped reference tokens, checking the syntax.
///
/// `""` is the whole document and has no segments; `"/"` has one empty segment.
pub fn parse(pointer: &str) -> Result<Vec<String>, PointerError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PointerError::MissingLeadingSlash {
            pointer: pointer.to_owned(),
            suggestion: format!("/{pointer}"),
        });
    };
    let mut segments = Vec::new();
    let mut offset = 1;
    for raw in rest.split('/') {
        let mut segment = String::with_capacity(raw.len());
        let mut chars = raw.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '~' {
                segment.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '0')) => segment.push('~'),
                Some((_, '1')) => segment.push('/'),
                _ => {
                    return Err(PointerError::BadEscape {
                        pointer: pointer.to_owned(),
                        offset: offset + i,
                    });
                }
            }
        }
        offset += raw.len() + 1;
        segments.push(segment);
    }
    Ok(segments)
}

/// Whether a reference token looks like an array index (`0`, or digits without a leading zero).
pub fn is_index(segment: &str) -> bool {
    match segment.as_bytes() {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        bytes => bytes.iter().all(u8::is_ascii_digit),
    }
}

/// Collapse every index-shaped segment to `*`, for bounded metric cardinality:
/// `"/items/3/score"` becomes `"/items/*/score"`.
///
/// The pointer syntax cannot tell an array index from an object key made of digits, so both
/// collapse; for maps keyed by numeric ids that is exactly what a metric label wants.
/// Malformed input is returned unchanged apart from the collapsing.
pub fn collapse_indices(pointer: &str) -> String {
    if pointer.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(pointer.len());
    for (i, segment) in pointer.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if i > 0 && is_index(segment) {
            out.push('*');
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// One step from a node to its child, borrowed from the documents being compared.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Render a path of steps as a pointer.
pub(crate) fn render(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        out.push('/');
        match step {
            Step::Key(key) => escape_segment(key, &mut out),
            Step::Index(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/", &[""]),
            ("/a", &["a"]),
            ("/a/b", &["a", "b"]),
            ("/a~1b", &["a/b"]),
            ("/m~0n", &["m~n"]),
            ("/~01", &["~1"]),
            ("/a//b", &["a", "", "b"]),
            ("/items/*/score", &["items", "*", "score"]),
        ];
        for (pointer, expected) in cases {
            assert_eq!(&parse(pointer).unwrap(), expected, "{pointer}");
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse("items").unwrap_err().to_string(),
            "pointer \"items\" must be empty or start with \"/\" (write \"/items\")"
        );
        let err = parse("/a~2").unwrap_err();
        assert_eq!(
            err,
            PointerError::BadEscape {
                pointer: "/a~2".into(),
                offset: 2
            }
        );
        assert!(parse("/a/b~").is_err());
    }

    #[test]
    fn escape_round_trips() {
        for segments in [vec!["a/b", "m~n", "~1"], vec![""], vec!["plain", "0"]] {
            let pointer = from_segments(segments.iter().copied());
            assert_eq!(parse(&pointer).unwrap(), segments);
        }
        assert_eq!(from_segments(["a/b", "m~n"]), "/a~1b/m~0n");
    }

    #[test]
    fn collapse_table() {
        let cases = [
            ("", ""),
            ("/items/3/score", "/items/*/score"),
            ("/items/0", "/items/*"),
            ("/items/007", "/items/007"),
            ("/a/12/b/3", "/a/*/b/*"),
            ("/generated_at", "/generated_at"),
            ("/x1/1x", "/x1/1x"),
        ];
        for (input, expected) in cases {
            assert_eq!(collapse_indices(input), expected, "{input}");
        }
    }

    #[test]
    fn render_escapes() {
        let path = [Step::Key("a/b"), Step::Index(4), Step::Key("~")];
        assert_eq!(render(&path), "/a~1b/4/~0");
    }
}
