//! Every difference kind and every noise rule: a table of expected verdicts, then one insta
//! snapshot per case with the text and JSON renderings.

use http::HeaderMap;
use shadow_compare::{BodyDiff, Comparator, Response, render_text};

use crate::support::{compare, rules, summary};

/// (name, rules as TOML, legacy, candidate, expected summary)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    // difference kinds
    (
        "equal_key_order",
        "",
        r#"{"a":1,"b":[1,2]}"#,
        r#"{ "b": [1, 2], "a": 1 }"#,
        "equal",
    ),
    (
        "changed_value",
        "",
        r#"{"a":1,"s":"x"}"#,
        r#"{"a":2,"s":"y"}"#,
        "changed /a; changed /s",
    ),
    ("changed_bool", "", r#"[true]"#, r#"[false]"#, "changed /0"),
    (
        "type_change",
        "",
        r#"{"a":1,"b":null,"c":{}}"#,
        r#"{"a":"1","b":{},"c":[]}"#,
        "type_changed /a; type_changed /b; type_changed /c",
    ),
    (
        "missing",
        "",
        r#"{"a":1,"b":2}"#,
        r#"{"a":1}"#,
        "missing /b",
    ),
    (
        "extra",
        "",
        r#"{"a":1}"#,
        r#"{"a":1,"z":{"y":1}}"#,
        "extra /z",
    ),
    (
        "array_length",
        "",
        r#"{"l":[1,2,3]}"#,
        r#"{"l":[1,9]}"#,
        "changed /l/1; array_length /l",
    ),
    (
        "reordered",
        "",
        r#"{"l":[1,2,3]}"#,
        r#"{"l":[3,1,2]}"#,
        "reordered /l",
    ),
    (
        "reordered_objects",
        "",
        r#"[{"id":1},{"id":2}]"#,
        r#"[{"id":2},{"id":1}]"#,
        "reordered ",
    ),
    (
        "not_reordered_multiset_differs",
        "",
        r#"[1,1,2]"#,
        r#"[1,2,2]"#,
        "changed /1",
    ),
    ("root_type_change", "", r#"{}"#, r#"[]"#, "type_changed "),
    (
        "pointer_escapes",
        "",
        r#"{"a/b":1,"m~n":{"":2}}"#,
        r#"{"a/b":2,"m~n":{"":3}}"#,
        "changed /a~1b; changed /m~0n/",
    ),
    // numbers
    (
        "int_equals_float",
        "",
        r#"{"n":1,"m":[0,-2]}"#,
        r#"{"n":1.0,"m":[-0.0,-2.0]}"#,
        "equal",
    ),
    ("exponent_equal", "", r#"[100]"#, r#"[1e2]"#, "equal"),
    (
        "tolerance_off_by_default",
        "",
        r#"[0.1]"#,
        r#"[0.1000000001]"#,
        "changed /0",
    ),
    (
        "tolerance_absolute",
        "numbers = { tolerance = 1e-9 }",
        r#"[0.1, 5]"#,
        r#"[0.1000000001, 5.1]"#,
        "changed /1",
    ),
    (
        "tolerance_relative",
        "numbers = { relative = 1e-6 }",
        r#"[1e9, 1]"#,
        r#"[1000000100, 1.1]"#,
        "changed /1",
    ),
    // ignore
    (
        "ignore_field",
        r#"ignore = ["/generated_at"]"#,
        r#"{"generated_at":1,"a":1}"#,
        r#"{"generated_at":2,"a":1}"#,
        "equal",
    ),
    (
        "ignore_missing_and_extra",
        r#"ignore = ["/x", "/y"]"#,
        r#"{"x":1}"#,
        r#"{"y":1}"#,
        "equal",
    ),
    (
        "ignore_wildcard",
        r#"ignore = ["/items/*/score"]"#,
        r#"{"items":[{"id":1,"score":0.5},{"id":2,"score":0.7}]}"#,
        r#"{"items":[{"id":1,"score":0.6},{"id":3,"score":0.7}]}"#,
        "changed /items/1/id",
    ),
    (
        "ignore_wildcard_one_segment_only",
        r#"ignore = ["/*/score"]"#,
        r#"{"a":{"score":1},"b":{"c":{"score":1}}}"#,
        r#"{"a":{"score":2},"b":{"c":{"score":2}}}"#,
        "changed /b/c/score",
    ),
    (
        "ignore_subtree",
        r#"ignore = ["/meta"]"#,
        r#"{"meta":{"a":[1]},"v":1}"#,
        r#"{"meta":{"a":[2,3]},"v":1}"#,
        "equal",
    ),
    (
        "ignore_escaped_key",
        r#"ignore = ["/a~1b"]"#,
        r#"{"a/b":1}"#,
        r#"{"a/b":2}"#,
        "equal",
    ),
    (
        "ignore_whole_body",
        r#"ignore = [""]"#,
        r#"{"a":1}"#,
        r#"[2]"#,
        "equal",
    ),
    // arrays
    (
        "ordered_explicit",
        r#"arrays = { "/l" = "ordered" }"#,
        r#"{"l":[1,2]}"#,
        r#"{"l":[2,1]}"#,
        "reordered /l",
    ),
    (
        "unordered_equal",
        r#"arrays = { "/l" = "unordered" }"#,
        r#"{"l":[1,2,2,3]}"#,
        r#"{"l":[2,3,2,1]}"#,
        "equal",
    ),
    (
        "unordered_multiplicity",
        r#"arrays = { "/l" = "unordered" }"#,
        r#"{"l":[1,2,2]}"#,
        r#"{"l":[1,2,3]}"#,
        "changed /l/2",
    ),
    (
        "unordered_missing_extra",
        r#"arrays = { "/l" = "unordered" }"#,
        r#"{"l":[1,2,3]}"#,
        r#"{"l":[3,1]}"#,
        "missing /l/1",
    ),
    (
        "unordered_extra",
        r#"arrays = { "/l" = "unordered" }"#,
        r#"{"l":[1]}"#,
        r#"{"l":[4,1]}"#,
        "extra /l/0",
    ),
    (
        "unordered_with_ignore",
        "ignore = [\"/l/*/t\"]\narrays = { \"/l\" = \"unordered\" }",
        r#"{"l":[{"v":1,"t":1},{"v":2,"t":2}]}"#,
        r#"{"l":[{"v":2,"t":9},{"v":1,"t":8}]}"#,
        "equal",
    ),
    (
        "unordered_with_tolerance",
        "numbers = { tolerance = 0.01 }\narrays = { \"/l\" = \"unordered\" }",
        r#"{"l":[1.0, 2.0]}"#,
        r#"{"l":[2.0, 1.001]}"#,
        "equal",
    ),
    (
        "unordered_nested_wildcard",
        r#"arrays = { "/*/tags" = "unordered" }"#,
        r#"{"a":{"tags":["x","y"]},"b":{"tags":[1,2]}}"#,
        r#"{"a":{"tags":["y","x"]},"b":{"tags":[2,1]}}"#,
        "equal",
    ),
    (
        "keyed_equal_reordered",
        r#"arrays = { "/users" = { key = "id" } }"#,
        r#"{"users":[{"id":1,"n":"a"},{"id":2,"n":"b"}]}"#,
        r#"{"users":[{"id":2,"n":"b"},{"id":1,"n":"a"}]}"#,
        "equal",
    ),
    (
        "keyed_changed",
        r#"arrays = { "/users" = { key = "id" } }"#,
        r#"{"users":[{"id":1,"n":"a"},{"id":2,"n":"b"}]}"#,
        r#"{"users":[{"id":2,"n":"B"},{"id":1,"n":"a"}]}"#,
        "changed /users/1/n",
    ),
    (
        "keyed_missing_extra",
        r#"arrays = { "/users" = { key = "id" } }"#,
        r#"{"users":[{"id":"u1"},{"id":"u2"}]}"#,
        r#"{"users":[{"id":"u3"},{"id":"u1"}]}"#,
        "missing /users/1; extra /users/0",
    ),
    (
        "keyed_numeric_key_int_float",
        r#"arrays = { "/u" = { key = "id" } }"#,
        r#"{"u":[{"id":1,"v":1}]}"#,
        r#"{"u":[{"id":1.0,"v":1}]}"#,
        "equal",
    ),
    (
        "keyed_without_key_field",
        r#"arrays = { "/u" = { key = "id" } }"#,
        r#"{"u":[{"v":1},{"id":1}]}"#,
        r#"{"u":[{"id":1},{"v":2}]}"#,
        "changed /u/0/v",
    ),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (name, rules_toml, legacy, candidate, expected) in CASES {
        let got = summary(&compare(rules_toml, legacy, candidate));
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn snapshots() {
    for (name, rules_toml, legacy, candidate, _) in CASES {
        let report = compare(rules_toml, legacy, candidate);
        let snapshot = format!(
            "rules: {rules_toml}\nlegacy: {legacy}\ncandidate: {candidate}\n--- text\n{}--- json\n{}",
            render_text(&report, false),
            serde_json::to_string_pretty(&report).unwrap()
        );
        insta::assert_snapshot!(*name, snapshot);
    }
}

#[test]
fn colour_only_when_asked() {
    let report = compare("", r#"{"a":1}"#, r#"{"a":2}"#);
    assert!(!render_text(&report, false).contains('\x1b'));
    let coloured = render_text(&report, true);
    assert!(coloured.contains("\x1b[31m1\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[32m2\x1b[0m"), "{coloured:?}");
}

#[test]
fn difference_limit_truncates() {
    let legacy: Vec<u32> = (0..50).collect();
    let candidate: Vec<u32> = (100..150).collect();
    let report = Comparator::default()
        .with_max_differences(10)
        .compare_json(
            serde_json::to_string(&legacy).unwrap().as_bytes(),
            serde_json::to_string(&candidate).unwrap().as_bytes(),
        )
        .unwrap();
    let BodyDiff::Json {
        differences,
        truncated,
    } = &report.body
    else {
        panic!("{report:?}")
    };
    assert_eq!(differences.len(), 10);
    assert!(truncated);
    assert!(render_text(&report, false).ends_with("at least 10 differences\n"));
}

#[test]
fn invalid_json_is_an_error_naming_the_side() {
    let err = Comparator::default()
        .compare_json(b"{}", b"{nope")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("candidate body is not valid JSON"),
        "{err}"
    );
    let err = Comparator::default().compare_json(b"[", b"[").unwrap_err();
    assert!(
        err.to_string().starts_with("legacy body is not valid JSON"),
        "{err}"
    );
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn whole_responses() {
    let comparator = Comparator::new(rules(r#"compare_headers = ["content-type", "x-version"]"#));
    let json = headers(&[("content-type", "application/json"), ("date", "mon")]);
    let json_v2 = headers(&[
        ("content-type", "application/json"),
        ("x-version", "2"),
        ("date", "tue"),
    ]);
    let text = headers(&[("content-type", "text/plain")]);
    let respond = |status, headers, body| Response {
        status,
        headers,
        body,
    };

    // Status and a compared header differ; `date` is not compared.
    let report = comparator.compare(
        &respond(200, &json, br#"{"a":1}"#),
        &respond(500, &json_v2, br#"{ "a": 1 }"#),
    );
    insta::assert_snapshot!(
        "whole_response_status_header",
        format!(
            "{}--- json\n{}\n--- fields {:?}",
            render_text(&report, false),
            serde_json::to_string_pretty(&report).unwrap(),
            report.fields()
        )
    );

    // Non-JSON bodies compare by bytes.
    let report = comparator.compare(
        &respond(200, &text, b"hello"),
        &respond(200, &text, b"hullo"),
    );
    insta::assert_snapshot!(
        "whole_response_bytes",
        format!(
            "{}--- json\n{}\n--- fields {:?}",
            render_text(&report, false),
            serde_json::to_string_pretty(&report).unwrap(),
            report.fields()
        )
    );
    let report = comparator.compare(&respond(200, &text, b"same"), &respond(200, &text, b"same"));
    assert_eq!(report.body, BodyDiff::Identical);

    // JSON content type but garbage: bytes, with a note.
    let report = comparator.compare(&respond(200, &json, b"{}"), &respond(200, &json, b"<html>"));
    let BodyDiff::Bytes {
        note: Some(note), ..
    } = &report.body
    else {
        panic!("{report:?}")
    };
    assert!(
        note.starts_with("candidate body is not valid JSON"),
        "{note}"
    );

    // No content type at all: sniffed as JSON.
    let none = HeaderMap::new();
    let report = comparator.compare(
        &respond(200, &none, br#"{"a":1,"b":2}"#),
        &respond(200, &none, br#"{"b":2,"a":1}"#),
    );
    assert!(report.is_equal(), "{report:?}");
}

#[test]
fn json_content_types() {
    for (ct, json) in [
        ("application/json", true),
        ("application/json; charset=utf-8", true),
        ("Application/JSON", true),
        ("application/problem+json", true),
        ("text/json", false),
        ("text/html", false),
    ] {
        assert_eq!(shadow_compare::is_json_content_type(ct), json, "{ct}");
    }
}

#[test]
fn integers_equal_their_float_spellings_exactly() {
    // Found by the property test: without correctly rounded float parsing,
    // 1945422047887759.0 parsed one ULP off and was reported as changed.
    for candidate in [
        "[1945422047887759.0]",
        "[1945422047887759e0]",
        "[1.945422047887759e15]",
        "[9007199254740991.0]",
    ] {
        let legacy = if candidate.starts_with("[9") {
            "[9007199254740991]"
        } else {
            "[1945422047887759]"
        };
        let report = Comparator::default()
            .compare_json(legacy.as_bytes(), candidate.as_bytes())
            .unwrap();
        assert!(report.is_equal(), "{legacy} vs {candidate}: {report:?}");
        // And through the tree diff (a second difference forces it past the fast path).
        let legacy = format!(r#"{{"n":{legacy},"a":1}}"#);
        let candidate = format!(r#"{{"n":{candidate},"a":2}}"#);
        let report = Comparator::default()
            .compare_json(legacy.as_bytes(), candidate.as_bytes())
            .unwrap();
        let pointers: Vec<&str> = report
            .differences()
            .iter()
            .map(|d| d.pointer.as_str())
            .collect();
        assert_eq!(pointers, ["/a"], "{report:?}");
    }
}
