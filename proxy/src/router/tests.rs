#![allow(clippy::unwrap_used)]

use super::*;

struct R(PathPattern, Methods);
impl Rule for R {
    fn pattern(&self) -> &PathPattern {
        &self.0
    }
    fn methods(&self) -> &Methods {
        &self.1
    }
}

fn r(path: &str, methods: &[&str]) -> R {
    let methods = if methods.is_empty() {
        None
    } else {
        Some(methods.iter().map(|m| m.parse().unwrap()).collect())
    };
    R(PathPattern::parse(path).unwrap(), methods)
}

fn table(rules: Vec<R>) -> Vec<R> {
    let mut rules = rules;
    sort_by_specificity(&mut rules);
    rules
}

fn pick<'a>(rules: &'a [R], method: &str, path: &str) -> Option<&'a str> {
    route(rules, &method.parse().unwrap(), path).map(|i| rules[i].0.as_str())
}

#[test]
fn pattern_matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("/", "/", true),
        ("/", "/a", false),
        ("/api/content/top", "/api/content/top", true),
        ("/api/content/top", "/api/content/top/", false),
        ("/api/content/top", "/api/content", false),
        ("/api/content/", "/api/content/", true),
        ("/api/users/{id}", "/api/users/42", true),
        ("/api/users/{id}", "/api/users/", false),
        ("/api/users/{id}", "/api/users/42/x", false),
        ("/api/{*rest}", "/api", true),
        ("/api/{*rest}", "/api/", true),
        ("/api/{*rest}", "/api/a/b/c", true),
        ("/api/{*rest}", "/apix", false),
        ("/{*all}", "/anything/at/all", true),
        ("/a/{x}/c", "/a/b/c", true),
        ("/a/{x}/c", "/a/b/d", false),
    ];
    for (pattern, path, want) in cases {
        let p = PathPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(path), *want, "{pattern} vs {path}");
    }
}

#[test]
fn captures_params_and_rest() {
    let p = PathPattern::parse("/api/users/{user_id}/favorites/{*rest}").unwrap();
    assert_eq!(
        p.captures("/api/users/7/favorites/a/b").unwrap(),
        vec![("user_id", "7"), ("rest", "a/b")]
    );
    assert_eq!(
        p.captures("/api/users/7/favorites").unwrap(),
        vec![("user_id", "7"), ("rest", "")]
    );
    assert!(p.captures("/api/users/7").is_none());
}

#[test]
fn bad_patterns_are_rejected_with_reason() {
    let cases: &[(&str, PatternError)] = &[
        ("api", PatternError::NoLeadingSlash),
        ("/a//b", PatternError::EmptySegment),
        ("/a/{*rest}/b", PatternError::RestNotLast("rest".into())),
        ("/a/x{id}", PatternError::MixedSegment("x{id}".into())),
        ("/a/{}", PatternError::BadParamName(String::new())),
        ("/a/{i-d}", PatternError::BadParamName("i-d".into())),
        ("/a/{id}/{id}", PatternError::DuplicateParam("id".into())),
        ("/a?b=1", PatternError::BadCharacter('?')),
    ];
    for (pattern, want) in cases {
        assert_eq!(PathPattern::parse(pattern).unwrap_err(), *want, "{pattern}");
    }
}

#[test]
fn most_specific_wins() {
    let rules = table(vec![
        r("/{*all}", &[]),
        r("/api/{*rest}", &[]),
        r("/api/users/{id}", &[]),
        r("/api/users/me", &[]),
        r("/api/users/{id}/favorites", &[]),
        r("/api/users/{id}/favorites", &["POST"]),
    ]);
    assert_eq!(pick(&rules, "GET", "/api/users/me"), Some("/api/users/me"));
    assert_eq!(
        pick(&rules, "GET", "/api/users/42"),
        Some("/api/users/{id}")
    );
    assert_eq!(pick(&rules, "GET", "/api/users/42/x"), Some("/api/{*rest}"));
    assert_eq!(pick(&rules, "GET", "/other"), Some("/{*all}"));
    // Method-specific beats any-method at the same shape; the any-method one still catches the rest.
    assert_eq!(
        pick(&rules, "POST", "/api/users/1/favorites"),
        Some("/api/users/{id}/favorites")
    );
    let post = route(&rules, &Method::POST, "/api/users/1/favorites").unwrap();
    assert!(rules[post].1.is_some());
    let get = route(&rules, &Method::GET, "/api/users/1/favorites").unwrap();
    assert!(rules[get].1.is_none());
}

#[test]
fn methods_filter_and_head_follows_get() {
    let rules = table(vec![r("/api/content/top", &["GET"])]);
    assert!(pick(&rules, "GET", "/api/content/top").is_some());
    assert!(pick(&rules, "HEAD", "/api/content/top").is_some());
    assert!(pick(&rules, "POST", "/api/content/top").is_none());
}

#[test]
fn overlap_detection() {
    let o = |a: &R, b: &R| overlaps((&a.0, &a.1), (&b.0, &b.1));
    assert!(o(&r("/a/{x}", &[]), &r("/a/{y}", &[])));
    assert!(o(&r("/a/{x}", &["GET", "PUT"]), &r("/a/{y}", &["PUT"])));
    assert!(!o(&r("/a/{x}", &["GET"]), &r("/a/{y}", &["PUT"])));
    assert!(!o(&r("/a/{x}", &["GET"]), &r("/a/{y}", &[])));
    assert!(!o(&r("/a/b", &[]), &r("/a/c", &[])));
    assert!(!o(&r("/a/b", &[]), &r("/a/{x}", &[])));
    assert!(o(&r("/a/{*r}", &[]), &r("/a/{*s}", &[])));
    assert!(!o(&r("/a/{x}/c", &[]), &r("/{y}/b/c", &[])));
}

#[test]
fn sorting_is_independent_of_declaration_order() {
    let paths = [
        "/{*all}",
        "/api/users/{id}",
        "/api/users/me",
        "/api/{*rest}",
    ];
    let forward = table(paths.iter().map(|p| r(p, &[])).collect());
    let backward = table(paths.iter().rev().map(|p| r(p, &[])).collect());
    let f: Vec<_> = forward.iter().map(|r| r.0.as_str()).collect();
    let b: Vec<_> = backward.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(f, b);
}
