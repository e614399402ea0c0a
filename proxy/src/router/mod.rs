//! Pure request matching: path patterns, specificity and the route lookup.
//!
//! This module owns the grammar of `path` in routes.toml and the rule that the most
//! specific route wins. It does no I/O, knows nothing about tokio or upstreams, and
//! never allocates on the lookup path.
//!
//! Grammar: a pattern starts with `/` and is split on `/` into segments. Each segment is
//! a literal (`users`), a parameter (`{user_id}`, matches exactly one non-empty segment)
//! or, as the last segment only, a catch-all (`{*rest}`, matches zero or more segments,
//! so `/api/{*rest}` matches `/api`, `/api/` and `/api/a/b`).
//!
//! Specificity: patterns are compared segment by segment from the left; at the first
//! position where they differ, literal beats parameter beats catch-all, and a segment
//! beats the end of a shorter pattern only through a catch-all. At equal path shape, a
//! route that lists its methods beats one that accepts every method. Two routes with the
//! same shape, equal literals and overlapping methods could match the same request with
//! the same specificity: validation rejects them (see [`overlaps`]).

use std::cmp::Ordering;

use http::Method;

/// One segment of a compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(Box<str>),
    Param(Box<str>),
    Rest(Box<str>),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 0,
        }
    }
}

/// A compiled `path` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    raw: Box<str>,
    segments: Vec<Segment>,
}

/// Why a pattern does not compile; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("path must start with \"/\"")]
    NoLeadingSlash,
    #[error("empty segment (\"//\") in path; remove the extra slash")]
    EmptySegment,
    #[error("catch-all {{*{0}}} must be the last segment")]
    RestNotLast(String),
    #[error("segment {0:?} mixes text and braces; a parameter must be a whole segment like {{id}}")]
    MixedSegment(String),
    #[error("parameter name {0:?} must be non-empty ASCII letters, digits or '_'")]
    BadParamName(String),
    #[error("parameter {{{0}}} appears twice")]
    DuplicateParam(String),
    #[error("path contains {0:?}; query strings, fragments and spaces are not part of a pattern")]
    BadCharacter(char),
}

impl PathPattern {
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let body = raw.strip_prefix('/').ok_or(PatternError::NoLeadingSlash)?;
        if let Some(c) = raw.chars().find(|c| matches!(c, '?' | '#' | ' ' | '\t')) {
            return Err(PatternError::BadCharacter(c));
        }
        let parts: Vec<&str> = body.split('/').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            // A trailing slash is a literal empty last segment; `//` elsewhere is a typo.
            if part.is_empty() && i != last {
                return Err(PatternError::EmptySegment);
            }
            let segment = if let Some(inner) =
                part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (is_rest, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(PatternError::BadParamName(name.to_owned()));
                }
                if names.contains(&name) {
                    return Err(PatternError::DuplicateParam(name.to_owned()));
                }
                names.push(name);
                if is_rest {
                    if i != last {
                        return Err(PatternError::RestNotLast(name.to_owned()));
                    }
                    Segment::Rest(name.into())
                } else {
                    Segment::Param(name.into())
                }
            } else if part.contains(['{', '}']) {
                return Err(PatternError::MixedSegment((*part).to_owned()));
            } else {
                Segment::Literal((*part).into())
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            raw: raw.into(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Matches a request path (no query string). Allocation-free.
    pub fn matches(&self, path: &str) -> bool {
        let Some(body) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = body.split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest(_) => return true,
                Segment::Literal(lit) => match parts.next() {
                    Some(p) if p == &**lit => {}
                    _ => return false,
                },
                Segment::Param(_) => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }

    /// Captures the parameters of a matching path, in pattern order.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        if !self.matches(path) {
            return None;
        }
        let body = &path[1..];
        let mut out = Vec::new();
        let mut offset = 0;
        for segment in &self.segments {
            let rest = &body[offset.min(body.len())..];
            match segment {
                Segment::Rest(name) => {
                    out.push((&**name, rest));
                    break;
                }
                Segment::Literal(_) | Segment::Param(_) => {
                    let end = rest.find('/').unwrap_or(rest.len());
                    if let Segment::Param(name) = segment {
                        out.push((&**name, &rest[..end]));
                    }
                    offset += end + 1;
                }
            }
        }
        Some(out)
    }

    /// Compares path shapes only: `Greater` means `self` is more specific.
    pub fn specificity_cmp(&self, other: &PathPattern) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match a.rank().cmp(&b.rank()) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        // Same ranks on the common prefix: the longer pattern is more specific.
        self.segments.len().cmp(&other.segments.len())
    }

    fn same_shape(&self, other: &PathPattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.rank() == b.rank())
    }
}

/// The allowed methods of a route: `None` accepts every method.
pub type Methods = Option<Vec<Method>>;

/// Full specificity: path shape first, then "lists methods" beats "any method".
pub fn specificity_cmp(a: (&PathPattern, &Methods), b: (&PathPattern, &Methods)) -> Ordering {
    a.0.specificity_cmp(b.0)
        .then(a.1.is_some().cmp(&b.1.is_some()))
}

/// Whether two routes could match the same request with the same specificity.
pub fn overlaps(a: (&PathPattern, &Methods), b: (&PathPattern, &Methods)) -> bool {
    if !a.0.same_shape(b.0) || a.1.is_some() != b.1.is_some() {
        return false;
    }
    let literals_agree =
        a.0.segments
            .iter()
            .zip(&b.0.segments)
            .all(|pair| match pair {
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                _ => true,
            });
    let methods_meet = match (a.1, b.1) {
        (Some(x), Some(y)) => x.iter().any(|m| y.contains(m)),
        _ => true,
    };
    literals_agree && methods_meet
}

/// Anything the router can choose between.
pub trait Rule {
    fn pattern(&self) -> &PathPattern;
    fn methods(&self) -> &Methods;
}

/// Sorts rules so that the first match is the most specific one.
pub fn sort_by_specificity<R: Rule>(rules: &mut [R]) {
    rules.sort_by(|a, b| specificity_cmp((b.pattern(), b.methods()), (a.pattern(), a.methods())));
}

/// A route that lists `GET` also serves `HEAD`.
fn allows(methods: &[Method], method: &Method) -> bool {
    methods.contains(method) || (method == Method::HEAD && methods.contains(&Method::GET))
}

/// Returns the index of the most specific rule matching `method` and `path`.
/// `rules` must be sorted with [`sort_by_specificity`].
pub fn route<R: Rule>(rules: &[R], method: &Method, path: &str) -> Option<usize> {
    rules.iter().position(|r| {
        r.methods().as_ref().is_none_or(|ms| allows(ms, method)) && r.pattern().matches(path)
    })
}

#[cfg(test)]
mod tests;
