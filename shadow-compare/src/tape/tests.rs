//! Tokenizer tests: the tape's shape, and agreement with serde_json on what is valid.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn tape_ok(input: &[u8]) -> Result<Vec<Token>, TapeError> {
    let mut tokens = Vec::new();
    Tape::parse(input, &mut tokens)?;
    Ok(tokens)
}

fn serde_ok(input: &[u8]) -> bool {
    Node::parse(input).is_ok()
}

#[test]
fn shape_of_a_small_document() {
    let input = br#" {"a": [1, "x\n", true], "b": {}, "c": null, "d": -2.5e3} "#;
    let tokens = tape_ok(input).unwrap();
    assert_eq!(tokens.len(), 12);
    assert_eq!(tokens[0], Token::Object { end: 12, len: 4 });
    assert_eq!(tokens[2], Token::Array { end: 6, len: 3 });
    assert_eq!(tokens[5], Token::True);
    assert_eq!(tokens[7], Token::Object { end: 8, len: 0 });
    assert_eq!(tokens[9], Token::Null);
    let mut buf = Vec::new();
    let tape = Tape::parse(input, &mut buf).unwrap();
    let Some(Token::String {
        start,
        end,
        escaped,
    }) = tape.token(4)
    else {
        panic!("{:?}", tape.token(4));
    };
    assert!(escaped);
    assert_eq!(tape.raw(start, end), br"x\n");
    let mut scratch = Vec::new();
    assert_eq!(
        tape.decode(start, end, escaped, &mut scratch).unwrap(),
        b"x\n"
    );
    let Some(Token::Number { start, end, kind }) = tape.token(11) else {
        panic!();
    };
    assert_eq!(kind, NumKind::Float);
    assert_eq!(tape.raw(start, end), b"-2.5e3");
    assert_eq!(tape.token(0).unwrap().next(0), 12);
    assert_eq!(tape.token(2).unwrap().next(2), 6);
    assert!(tape.token(12).is_none());
}

/// Whitespace runs of up to three bytes (a single space is taken on a shortcut) in every
/// gap between tokens and at both ends: the same token structure as the compact document;
/// a run with another byte in it (vertical tab) is rejected, as serde_json does.
#[test]
fn whitespace_runs_in_every_gap() {
    let parts = [
        "{", "\"a\"", ":", "[", "1", ",", "\"x\"", "]", ",", "\"b\"", ":", "{}", "}",
    ];
    let mut runs = vec![String::new()];
    for _ in 0..3 {
        let longer: Vec<String> = runs
            .iter()
            .flat_map(|r| [" ", "\n", "\t", "\r", "\x0b"].map(|w| format!("{r}{w}")))
            .collect();
        runs.extend(longer);
    }
    runs.sort();
    runs.dedup();
    let compact = tape_ok(parts.concat().as_bytes()).unwrap();
    for gap in 0..=parts.len() {
        for run in &runs {
            let mut text = parts[..gap].concat();
            text.push_str(run);
            text.push_str(&parts[gap..].concat());
            let bytes = text.as_bytes();
            let valid = !run.contains('\x0b');
            assert_eq!(serde_ok(bytes), valid, "{text:?}");
            match tape_ok(bytes) {
                Ok(tokens) => {
                    assert!(valid, "{text:?}");
                    let kinds = |t: &[Token]| t.iter().map(|t| t.next(0)).collect::<Vec<_>>();
                    assert_eq!(kinds(&tokens), kinds(&compact), "{text:?}");
                }
                Err(_) => assert!(!valid, "{text:?}"),
            }
        }
    }
}

/// The end of the input and a NUL byte (which `peek` uses for "no more bytes") where a
/// value, a key, a colon or a separator is expected: an early end, and a syntax error at
/// the byte.
#[test]
fn end_of_input_and_nul_bytes_are_told_apart() {
    let eof = |expected| Err(TapeError::Eof { expected });
    let syntax = |offset, expected| Err(TapeError::Syntax { offset, expected });
    assert_eq!(tape_ok(b"[1,"), eof(VALUE));
    assert_eq!(tape_ok(b"[1, "), eof(VALUE));
    assert_eq!(tape_ok(b"[1 "), eof("',' or ']'"));
    assert_eq!(tape_ok(b"{\"a\":1"), eof("',' or '}'"));
    assert_eq!(tape_ok(b"[\0]"), syntax(1, VALUE));
    assert_eq!(tape_ok(b"[ \0]"), syntax(2, VALUE));
    assert_eq!(tape_ok(b"[1\0]"), syntax(2, "',' or ']'"));
    assert_eq!(tape_ok(b"{\"a\":1 \0}"), syntax(7, "',' or '}'"));
    assert_eq!(tape_ok(b"1 \0"), syntax(2, "the end of the document"));
    assert_eq!(tape_ok(b"["), eof(VALUE));
    assert_eq!(tape_ok(b"{ "), eof("a string key"));
    assert_eq!(tape_ok(b"{\0}"), syntax(1, "a string key"));
    assert_eq!(tape_ok(b"{\"a\":1, \0}"), syntax(8, "a string key"));
    assert_eq!(tape_ok(b"{\"a\" "), eof("':'"));
    assert_eq!(tape_ok(b"{\"a\" \0"), syntax(5, "':'"));
    // After a minus sign (the number's first byte is read by the caller, the second here).
    assert_eq!(tape_ok(b"-"), eof("a digit"));
    assert_eq!(tape_ok(b"[-"), eof("a digit"));
    assert_eq!(tape_ok(b"[-\0]"), syntax(2, "a digit"));
    assert_eq!(tape_ok(b"[- 1]"), syntax(2, "a digit"));
    assert_eq!(tape_ok(b"[--1]"), syntax(2, "a digit"));
}

/// An empty container closes only with its own bracket (found as the open bracket + 2).
#[test]
fn empty_containers_close_with_their_own_bracket() {
    let syntax = |offset, expected| Err(TapeError::Syntax { offset, expected });
    let empty = |object| {
        Ok(vec![if object {
            Token::Object { end: 1, len: 0 }
        } else {
            Token::Array { end: 1, len: 0 }
        }])
    };
    assert_eq!(tape_ok(b"{}"), empty(true));
    assert_eq!(tape_ok(b"[ ]"), empty(false));
    assert_eq!(tape_ok(b"{]"), syntax(1, "a string key"));
    assert_eq!(tape_ok(b"[ }"), syntax(2, VALUE));
    assert_eq!(tape_ok(b"{|"), syntax(1, "a string key"));
    assert_eq!(tape_ok(b"[\\]"), syntax(1, VALUE));
}

#[test]
fn invalid_documents_are_rejected_like_serde_json() {
    let cases: &[&[u8]] = &[
        b"",
        b"   ",
        b"[1,2",
        b"[1,]",
        b"[,1]",
        b"{\"a\":1,}",
        b"{\"a\" 1}",
        b"{1:2}",
        b"{\"a\":}",
        b"[1] 2",
        b"{}x",
        b"[1 2]",
        b"tru",
        b"nul",
        b"NaN",
        b"Infinity",
        b"\xef\xbb\xbf[]",
        // numbers
        b"01",
        b"-01",
        b"1.",
        b".5",
        b"-",
        b"1e",
        b"1e+",
        b"+1",
        b"1e400",
        b"-1e400",
        b"[1E309]",
        b"0x10",
        // strings
        b"\"abc",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\\u12g4\"",
        b"\"\\uD800\"",
        b"\"\\uDC00\"",
        b"\"\\uD800\\u0041\"",
        b"\"\\uD800\\n\"",
        b"\"\\uD800\\uD800\"",
        b"\"a\nb\"",
        b"\"a\tb\"",
        b"\"\x00\"",
        b"\"\x1f\"",
        b"\"\xff\"",
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"[\"ok\", \x80]",
        b"{\"\\q\": 1}",
    ];
    for &input in cases {
        let shown = String::from_utf8_lossy(input);
        assert!(!serde_ok(input), "serde_json accepts {shown:?}");
        assert!(tape_ok(input).is_err(), "tape accepts {shown:?}");
    }
}

#[test]
fn long_numbers_near_the_range_agree_with_serde_json() {
    let big_int = format!("1{}", "0".repeat(400));
    let fine_int = format!("1{}", "0".repeat(250));
    let cases = [
        "1e308".to_owned(),
        "1.7976931348623157e308".to_owned(),
        "1.8e308".to_owned(),
        "0e99999999999999999999".to_owned(),
        "1e-99999999999999999999".to_owned(),
        "-0.0e400".to_owned(),
        "1e0000000000000000000000000000001".to_owned(),
        big_int.clone(),
        fine_int,
        format!("{big_int}e-200"),
        format!("0.{}1e300", "0".repeat(100)),
    ];
    for text in cases {
        assert_eq!(
            tape_ok(text.as_bytes()).is_ok(),
            serde_ok(text.as_bytes()),
            "{text}"
        );
    }
}

#[test]
fn depth_limit_matches_serde_json() {
    for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 200] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let input = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            assert_eq!(
                tape_ok(input.as_bytes()).is_ok(),
                serde_ok(input.as_bytes()),
                "depth {depth} {open}"
            );
            assert_eq!(tape_ok(input.as_bytes()).is_ok(), depth <= MAX_DEPTH);
        }
    }
}

#[test]
fn escapes_decode_as_serde_json_does() {
    let cases = [
        r#""\u0041\u00e9\u4e2d\ud83d\ude00""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""plain""#,
        r#""mixed é and \u00E9""#,
    ];
    for input in cases {
        let mut tokens = Vec::new();
        let tape = Tape::parse(input.as_bytes(), &mut tokens).unwrap();
        let Some(Token::String {
            start,
            end,
            escaped,
        }) = tape.token(0)
        else {
            panic!();
        };
        let mut buf = Vec::new();
        let decoded = tape.decode(start, end, escaped, &mut buf).unwrap();
        let expected: String = serde_json::from_str(input).unwrap();
        assert_eq!(decoded, expected.as_bytes(), "{input}");
    }
}

#[test]
fn numbers_parse_as_the_tree_does() {
    let cases = [
        "0",
        "-0",
        "7",
        "-7",
        "999999999999999",
        "-999999999999999",
        "1000000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "1.5",
        "-0.0",
        "1e2",
        "2.5E-3",
    ];
    for text in cases {
        let mut tokens = Vec::new();
        let tape = Tape::parse(text.as_bytes(), &mut tokens).unwrap();
        let Some(Token::Number { start, end, kind }) = tape.token(0) else {
            panic!();
        };
        let Node::Number(expected) = Node::parse(text.as_bytes()).unwrap() else {
            panic!();
        };
        let got = tape.num(start, end, kind).unwrap();
        assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{text}");
    }
}

#[test]
fn special_bytes_finds_the_first_one() {
    let word = |bytes: &[u8; 8]| special_bytes(u64::from_le_bytes(*bytes));
    assert_eq!(word(b"abcdefgh"), 0);
    assert_eq!(word(b"ab\"defgh").trailing_zeros() / 8, 2);
    assert_eq!(word(b"abcdefg\\").trailing_zeros() / 8, 7);
    assert_eq!(word(b"a\x1f\"\0\xff\xfe\x7f ").trailing_zeros() / 8, 1);
    assert_eq!(word(b"\xc3\xa9\xe4\xb8\xad\x7f ~"), 0);
}

/// The string scan reads eight bytes at a time inline and leaves everything else to
/// `string_rest`: a byte to stop at (quote, backslash, control, non-ASCII, and bytes next to
/// them in value) at every offset of the first and second word, strings that end with fewer
/// than eight bytes of input left, and strings that never end. Each input is accepted
/// exactly when serde_json accepts it, with the same content.
#[test]
fn strings_agree_with_serde_json_wherever_the_scan_stops() {
    let stops: &[&[u8]] = &[
        b"\"",
        b"\\n",
        b"\\\"",
        b"\\u00e9",
        b"\\ud83d\\ude00",
        b"\\",
        b"\\q",
        b"\x00",
        b"\x01",
        b"\x1f",
        b" ",
        b"!",
        b"#",
        b"[",
        b"]",
        b"\x7f",
        b"\xc3\xa9",
        b"\xe4\xb8\xad",
        b"\xc3",
        b"\xff",
        b"",
    ];
    for before in 0..18 {
        for stop in stops {
            for after in 0..10 {
                for (open, close) in [("", ""), ("[", "]"), ("{\"k\": ", "}"), ("[", " ]        ")]
                {
                    for closed in [true, false] {
                        let mut input = open.as_bytes().to_vec();
                        input.push(b'"');
                        input.extend(std::iter::repeat_n(b'a', before));
                        input.extend_from_slice(stop);
                        input.extend(std::iter::repeat_n(b'z', after));
                        if closed {
                            input.push(b'"');
                        }
                        input.extend_from_slice(close.as_bytes());
                        let shown = String::from_utf8_lossy(&input).into_owned();
                        let expected = serde_json::from_slice::<serde_json::Value>(&input).ok();
                        let mut tokens = Vec::new();
                        let tape = Tape::parse(&input, &mut tokens);
                        assert_eq!(tape.is_ok(), expected.is_some(), "{shown:?}: {tape:?}");
                        let (Ok(tape), Some(expected)) = (tape, expected) else {
                            continue;
                        };
                        let string = (0..tape.len())
                            .rev()
                            .find_map(|i| match tape.token(i) {
                                Some(Token::String {
                                    start,
                                    end,
                                    escaped,
                                }) => Some((start, end, escaped)),
                                _ => None,
                            })
                            .unwrap();
                        let (start, end, escaped) = string;
                        let raw = tape.raw(start, end);
                        assert_eq!(escaped, raw.contains(&b'\\'), "{shown:?}");
                        let mut buf = Vec::new();
                        let decoded = tape.decode(start, end, escaped, &mut buf).unwrap();
                        let text = match &expected {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Array(items) => items[0].as_str().unwrap(),
                            serde_json::Value::Object(members) => members["k"].as_str().unwrap(),
                            _ => panic!("{shown:?}"),
                        };
                        assert_eq!(decoded, text.as_bytes(), "{shown:?}");
                    }
                }
            }
        }
    }
}

/// Fraction digits are scanned eight bytes at a time: a fraction ending at every offset of
/// the first three words, on every kind of byte and at the end of the input, is accepted
/// exactly when serde_json accepts it, with the number's whole text.
#[test]
fn fractions_end_wherever_the_scan_stops() {
    let ends: &[&[u8]] = &[
        b"",
        b"]",
        b",1]",
        b" ]",
        b"e5]",
        b"E-5]",
        b"e]",
        b".5]",
        b"x]",
        b"/]",
        b":]",
        b"\x80]",
        b"\xc3\xa9]",
        b"\x00]",
    ];
    for len in 0..26 {
        for end in ends {
            for open in ["", "["] {
                let mut input = format!("{open}-1.").into_bytes();
                input.extend((0..len).map(|k| b"0123456789"[k % 10]));
                input.extend_from_slice(end);
                let shown = String::from_utf8_lossy(&input).into_owned();
                let mut tokens = Vec::new();
                let tape = Tape::parse(&input, &mut tokens);
                assert_eq!(tape.is_ok(), serde_ok(&input), "{shown:?}: {tape:?}");
                let Ok(tape) = tape else {
                    continue;
                };
                let Some(Token::Number { start, end, kind }) = tape.token(open.len()) else {
                    panic!("{shown:?}");
                };
                assert_eq!(kind, NumKind::Float);
                let text = tape.raw(start, end);
                assert!(
                    text.starts_with(b"-1.") && !text.ends_with(b"]"),
                    "{shown:?}"
                );
                let expected: f64 = std::str::from_utf8(text).unwrap().parse().unwrap();
                assert_eq!(tape.num(start, end, kind).unwrap().as_f64(), expected);
            }
        }
    }
}

/// Integers take a shortcut when no fraction or exponent follows and they have at most 15
/// digits: every length on both sides of that limit, followed by every kind of byte.
#[test]
fn integers_end_wherever_the_shortcut_stops() {
    let ends: &[&[u8]] = &[
        b"", b"]", b",1]", b" ]", b".5]", b".]", b"e5]", b"E+5]", b"e]", b"x]", b"-]", b"0]",
        b"\x00]", b"\x80]",
    ];
    for len in 1..22 {
        for end in ends {
            for (open, sign, first) in [("", "", "1"), ("[", "-", "9"), ("[", "", "0")] {
                let mut input = format!("{open}{sign}{first}").into_bytes();
                input.extend((1..len).map(|k| b"0123456789"[k % 10]));
                input.extend_from_slice(end);
                let shown = String::from_utf8_lossy(&input).into_owned();
                let mut tokens = Vec::new();
                let tape = Tape::parse(&input, &mut tokens);
                assert_eq!(tape.is_ok(), serde_ok(&input), "{shown:?}: {tape:?}");
                let Ok(tape) = tape else {
                    continue;
                };
                let Some(Token::Number { start, end, kind }) = tape.token(open.len()) else {
                    panic!("{shown:?}");
                };
                let text = tape.raw(start, end);
                let integer = text.iter().all(|&b| b == b'-' || b.is_ascii_digit());
                let digits = text.iter().filter(|b| b.is_ascii_digit()).count();
                let expected_kind = match (integer, digits <= SMALL_INT_DIGITS) {
                    (false, _) => NumKind::Float,
                    (true, true) => NumKind::SmallInt,
                    (true, false) => NumKind::BigInt,
                };
                assert_eq!(kind, expected_kind, "{shown:?}");
                assert_eq!(tape.has_big_ints(), expected_kind == NumKind::BigInt);
                let Ok(Node::Number(expected)) = Node::parse(text) else {
                    panic!("{shown:?}");
                };
                let num = tape.num(start, end, kind);
                assert_eq!(
                    format!("{num:?}"),
                    format!("{:?}", Some(expected)),
                    "{shown:?}"
                );
            }
        }
    }
}

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "\\PC{0,6}".prop_map(|s| serde_json::Value::String(s).to_string()),
        "[a\\\\\"u0-9A-F]{0,8}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z\\\\]{0,3}", inner), 0..6).prop_map(|v| {
                let members: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random (often invalid) documents and byte-level mutations of them: the tokenizer
    /// accepts exactly what serde_json accepts.
    #[test]
    fn validity_agrees_with_serde_json(
        text in json_text(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(
                b"\"\\u{}[],:.eE+-0123456789 \n\x01\x7f\xc3\xa9\xff/tfn".to_vec()
            ), 0u8..3),
            0..3,
        ),
    ) {
        let mut bytes = text.into_bytes();
        for (at, byte, op) in edits {
            let i = if bytes.is_empty() { 0 } else { at.index(bytes.len()) };
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let tape = tape_ok(&bytes);
        prop_assert_eq!(
            tape.is_ok(),
            serde_ok(&bytes),
            "{:?}: tape says {:?}",
            String::from_utf8_lossy(&bytes),
            tape.err()
        );
    }
}

#[test]
fn bytes_eq_at_every_length() {
    let text: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
    for n in 0..text.len() {
        let a = &text[..n];
        // A copy elsewhere in memory, so nothing can shortcut on the address.
        let copy = a.to_vec();
        assert!(bytes_eq(a, &copy), "{n}");
        for at in 0..n {
            let mut b = a.to_vec();
            b[at] ^= 1;
            assert!(!bytes_eq(a, &b), "{n} differs at {at}");
        }
        assert!(!bytes_eq(a, &text[..n + 1]));
    }
}
