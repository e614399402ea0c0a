//! A flat tape of JSON tokens, produced in one pass over the bytes, for the fast equal path.
//!
//! Owns tokenizing and validation only; knows nothing about noise rules or differences.
//! A container token records the index one past its last token, so a walk can skip a whole
//! subtree in O(1). Strings and numbers are byte ranges into the input: strings stay raw
//! (escapes are decoded only when a comparison needs them, see [`Tape::decode`]) and numbers
//! keep their text (parsed only when two texts differ, see [`Tape::num`]).
//!
//! Validation is **at least as strict as serde_json's** `from_slice`: everything serde_json
//! rejects is rejected here (bad escapes, unpaired surrogates, invalid UTF-8 in strings,
//! control characters in strings, bad numbers, numbers out of `f64` range, trailing
//! characters, nesting of 128 or more); the only documents accepted by serde_json and
//! rejected here are those over 4 GiB. Callers treat any rejection as "undecided" and fall
//! back to serde_json, so the public result for invalid JSON is serde_json's.

use crate::tree::{Node, Num};

/// serde_json's default recursion limit: 128 nested containers fail, 127 parse.
pub(crate) const MAX_DEPTH: usize = 127;

/// Integers with at most this many digits are below 2^53, so they convert to `f64` exactly.
const SMALL_INT_DIGITS: usize = 15;

/// Why the tokenizer rejected a document (byte offsets into the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TapeError {
    /// Not UTF-8 at all.
    #[error("invalid UTF-8 at byte {offset}")]
    Utf8 {
        /// First invalid byte.
        offset: usize,
    },
    /// The document ended early.
    #[error("unexpected end of input (expected {expected})")]
    Eof {
        /// What was expected.
        expected: &'static str,
    },
    /// An unexpected byte.
    #[error("unexpected byte at {offset} (expected {expected})")]
    Syntax {
        /// Offset of the byte.
        offset: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A backslash escape that is not valid JSON, or an unpaired surrogate.
    #[error("invalid escape at byte {offset}")]
    Escape {
        /// Offset of the backslash.
        offset: usize,
    },
    /// A raw control character (below U+0020) inside a string.
    #[error("control character in a string at byte {offset}")]
    Control {
        /// Offset of the character.
        offset: usize,
    },
    /// A number serde_json would not parse as `f64` (out of range).
    #[error("number out of range at byte {offset}")]
    NumberRange {
        /// Offset of the number.
        offset: usize,
    },
    /// Deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at byte {offset}")]
    Depth {
        /// Offset of the opening bracket.
        offset: usize,
    },
    /// Longer than `u32::MAX` bytes.
    #[error("document of {len} bytes is too large for a tape")]
    TooLarge {
        /// Length in bytes.
        len: usize,
    },
}

/// What a number token's text looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumKind {
    /// An integer of at most 15 digits: converts without serde_json, exactly.
    SmallInt,
    /// An integer of 16 or more digits: may not convert to `f64` exactly.
    BigInt,
    /// Has a fraction or an exponent.
    Float,
}

/// One token. Indices are into the tape, `start..end` into the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// `{`, followed by `len` key/value pairs (a string token, then a value); `end` is the
    /// index one past the last token of the object.
    Object {
        end: u32,
        len: u32,
    },
    /// `[`, followed by `len` values; `end` as for objects.
    Array {
        end: u32,
        len: u32,
    },
    /// A string (value or key), the raw bytes between the quotes.
    String {
        start: u32,
        end: u32,
        escaped: bool,
    },
    /// A number, its text.
    Number {
        start: u32,
        end: u32,
        kind: NumKind,
    },
    True,
    False,
    Null,
}

impl Token {
    /// The index of the token after this one's value (skips a whole container).
    pub(crate) fn next(self, index: usize) -> usize {
        match self {
            Token::Object { end, .. } | Token::Array { end, .. } => end as usize,
            _ => index + 1,
        }
    }
}

/// A tokenized document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tape<'a> {
    input: &'a [u8],
    tokens: &'a [Token],
    big_ints: bool,
}

impl<'a> Tape<'a> {
    /// Tokenize `input` into `tokens` (cleared first, capacity reused).
    pub(crate) fn parse(input: &'a [u8], tokens: &'a mut Vec<Token>) -> Result<Self, TapeError> {
        tokens.clear();
        // About one token per 6 bytes in typical API responses; grows if there are more.
        tokens.reserve(input.len() / 6 + 1);
        let big_ints = tokenize(input, tokens)?;
        Ok(Tape {
            input,
            tokens,
            big_ints,
        })
    }

    /// The token at `index`; the root is at 0. `None` past the end (a walk treats that as
    /// "undecided", never as a value).
    pub(crate) fn token(&self, index: usize) -> Option<Token> {
        self.tokens.get(index).copied()
    }

    /// The `n` tokens from `index` on.
    pub(crate) fn tokens(&self, index: usize, n: usize) -> Option<&'a [Token]> {
        self.tokens.get(index..index.checked_add(n)?)
    }

    /// The number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether some integer has 16 or more digits (so `1 == 1.0`-style equality between
    /// numbers may not be transitive).
    pub(crate) fn has_big_ints(&self) -> bool {
        self.big_ints
    }

    /// The raw bytes of a string or number token.
    pub(crate) fn raw(&self, start: u32, end: u32) -> &'a [u8] {
        self.input
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// A string's content with escapes decoded: borrowed when it has none, else written
    /// to `buf`. `None` only if the tape is inconsistent (never for a tape from `parse`).
    pub(crate) fn decode<'b>(
        &self,
        start: u32,
        end: u32,
        escaped: bool,
        buf: &'b mut Vec<u8>,
    ) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        decode(self.raw(start, end), escaped, buf)
    }

    /// The number as serde_json (and so the tree) parses it.
    pub(crate) fn num(&self, start: u32, end: u32, kind: NumKind) -> Option<Num> {
        let text = self.raw(start, end);
        if kind == NumKind::SmallInt {
            let (negative, digits) = match text.split_first() {
                Some((b'-', rest)) => (true, rest),
                _ => (false, text),
            };
            let mut value: u64 = 0;
            for &d in digits {
                value = value * 10 + u64::from(d.wrapping_sub(b'0'));
            }
            return Some(match (negative, value) {
                (false, v) => Num::U(v),
                // serde_json parses `-0` as the float -0.0.
                (true, 0) => Num::F(-0.0),
                (true, v) => Num::I(-(v as i64)),
            });
        }
        match Node::parse(text) {
            Ok(Node::Number(n)) => Some(n),
            _ => None,
        }
    }
}

/// A raw string's content with escapes decoded: `raw` itself when it has none, else
/// written to `buf`. `None` only for a raw string the tokenizer did not accept.
pub(crate) fn decode<'b>(raw: &'b [u8], escaped: bool, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    if !escaped {
        return Some(raw);
    }
    buf.clear();
    decode_into(raw, buf)?;
    Some(buf)
}

/// Byte equality tuned for the short keys and values of JSON documents (a `memcmp` call
/// costs more than the comparison itself below 16 bytes).
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let load = |s: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let load4 = |s: &[u8], at: usize| {
        let mut word = [0u8; 4];
        word.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(word)
    };
    // Two loads that overlap in the middle cover every length in a range.
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        8..=16 => load(a, 0) == load(b, 0) && load(a, n - 8) == load(b, n - 8),
        _ => a == b,
    }
}

/// Decode the escapes of a validated raw string into `out`.
fn decode_into(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < raw.len() {
        let Some(offset) = raw[i..].iter().position(|&b| b == b'\\') else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + offset]);
        i += offset;
        let byte = match raw.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = hex4(raw, i + 2)?;
                let (code, len) = if (0xD800..0xDC00).contains(&high) {
                    let low = hex4(raw, i + 8)?;
                    (0x1_0000 + ((high - 0xD800) << 10) + (low - 0xDC00), 12)
                } else {
                    (high, 6)
                };
                let c = char::from_u32(code)?;
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                i += len;
                continue;
            }
            _ => return None,
        };
        out.push(byte);
        i += 2;
    }
    Some(())
}

/// Four hex digits at `at`.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let mut n = 0u32;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = n * 16 + u32::from(v);
    }
    Some(n)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// An open container: its token's index and its values so far. (Whether it is an object
/// is kept apart, so that a frame has no padding and the stack is set up as zeroes.)
#[derive(Clone, Copy, Default)]
struct Frame {
    token: u32,
    len: u32,
}

const VALUE: &str = "a JSON value";

/// The error for an unexpected byte at `pos` (or the end of the input).
#[cold]
fn unexpected(bytes: &[u8], pos: usize, expected: &'static str) -> TapeError {
    if pos >= bytes.len() {
        TapeError::Eof { expected }
    } else {
        TapeError::Syntax {
            offset: pos,
            expected,
        }
    }
}

#[inline(always)]
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    // Most calls land on a token at once, or after one space (as `", "` and `": "`
    // separators have it); whitespace bytes are all at or below b' '.
    match bytes.get(pos) {
        Some(&b) if b > b' ' => return pos,
        Some(b' ') => match bytes.get(pos + 1) {
            Some(&b) if b > b' ' => return pos + 1,
            _ => pos += 1,
        },
        _ => {}
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The next byte that is not whitespace, and its position; 0 (never valid there) at the end
/// of the input. One bounds check when a token follows at once.
#[inline(always)]
fn peek(bytes: &[u8], pos: usize) -> (usize, u8) {
    match bytes.get(pos) {
        Some(&b) if b > b' ' => return (pos, b),
        // After one space (the `", "` and `": "` separators) the byte read is the answer.
        Some(b' ') => {
            if let Some(&b) = bytes.get(pos + 1) {
                if b > b' ' {
                    return (pos + 1, b);
                }
            }
        }
        _ => {}
    }
    let pos = skip_ws(bytes, pos);
    (pos, bytes.get(pos).copied().unwrap_or(0))
}

/// Fill `tokens`; returns whether some integer has 16 or more digits.
///
/// One loop with the position, the container stack and the token vector in locals: parse a
/// value, then consume separators and closing brackets until the next value starts.
fn tokenize(bytes: &[u8], tokens: &mut Vec<Token>) -> Result<bool, TapeError> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(TapeError::TooLarge { len: bytes.len() });
    }
    // serde_json checks UTF-8 inside strings (so does `string`); outside them any
    // non-ASCII byte is a syntax error.
    let mut stack = [Frame::default(); MAX_DEPTH];
    let mut objects = [false; MAX_DEPTH];
    let mut depth = 0usize;
    let mut pos = 0usize;
    let mut big_ints = false;
    'value: loop {
        let b;
        (pos, b) = peek(bytes, pos);
        match b {
            b'"' => pos = string(bytes, pos, tokens)?,
            b'{' | b'[' => {
                let object = b == b'{';
                let (Some(frame), Some(kind)) = (stack.get_mut(depth), objects.get_mut(depth))
                else {
                    return Err(TapeError::Depth { offset: pos });
                };
                // The tape has at most one token per input byte, and the input fits in u32.
                *frame = Frame {
                    token: tokens.len() as u32,
                    len: 0,
                };
                *kind = object;
                depth += 1;
                tokens.push(if object {
                    Token::Object { end: 0, len: 0 }
                } else {
                    Token::Array { end: 0, len: 0 }
                });
                let next;
                (pos, next) = peek(bytes, pos + 1);
                // The matching close bracket is two above the open one in ASCII.
                if next == b + 2 {
                    pos += 1;
                    depth -= 1;
                    close_container(tokens, stack[depth], object);
                } else {
                    if object {
                        pos = key(bytes, pos, tokens)?;
                    }
                    continue 'value;
                }
            }
            b'-' | b'0'..=b'9' => pos = number(bytes, pos, b, tokens, &mut big_ints)?,
            b't' => pos = literal(bytes, pos, b"true", Token::True, tokens)?,
            b'f' => pos = literal(bytes, pos, b"false", Token::False, tokens)?,
            b'n' => pos = literal(bytes, pos, b"null", Token::Null, tokens)?,
            _ => return Err(unexpected(bytes, pos, VALUE)),
        }
        // A value is complete: count it in its container, then a separator or a close.
        loop {
            let (Some(frame), Some(&object)) = (
                depth.checked_sub(1).and_then(|d| stack.get_mut(d)),
                depth.checked_sub(1).and_then(|d| objects.get(d)),
            ) else {
                pos = skip_ws(bytes, pos);
                if pos == bytes.len() {
                    return Ok(big_ints);
                }
                return Err(unexpected(bytes, pos, "the end of the document"));
            };
            frame.len += 1;
            let c;
            (pos, c) = peek(bytes, pos);
            match (c, object) {
                (b',', true) => {
                    pos = key(bytes, pos + 1, tokens)?;
                    continue 'value;
                }
                (b',', false) => {
                    pos += 1;
                    continue 'value;
                }
                (b'}', true) | (b']', false) => {
                    pos += 1;
                    depth -= 1;
                    close_container(tokens, *frame, object);
                }
                (_, true) => return Err(unexpected(bytes, pos, "',' or '}'")),
                (_, false) => return Err(unexpected(bytes, pos, "',' or ']'")),
            }
        }
    }
}

/// Record a closed container's end and length in its token.
#[inline(always)]
fn close_container(tokens: &mut [Token], frame: Frame, object: bool) {
    let end = tokens.len() as u32;
    if let Some(token) = tokens.get_mut(frame.token as usize) {
        *token = if object {
            Token::Object {
                end,
                len: frame.len,
            }
        } else {
            Token::Array {
                end,
                len: frame.len,
            }
        };
    }
}

/// An object key (after any whitespace at `pos`) and its colon; returns the position after
/// the colon.
#[inline(always)]
fn key(bytes: &[u8], pos: usize, tokens: &mut Vec<Token>) -> Result<usize, TapeError> {
    let (pos, quote) = peek(bytes, pos);
    if quote != b'"' {
        return Err(unexpected(bytes, pos, "a string key"));
    }
    let (pos, colon) = peek(bytes, string(bytes, pos, tokens)?);
    if colon != b':' {
        return Err(unexpected(bytes, pos, "':'"));
    }
    Ok(pos + 1)
}

#[inline(always)]
fn literal(
    bytes: &[u8],
    pos: usize,
    text: &'static [u8],
    token: Token,
    tokens: &mut Vec<Token>,
) -> Result<usize, TapeError> {
    if bytes.get(pos..pos + text.len()) != Some(text) {
        return Err(TapeError::Syntax {
            offset: pos,
            expected: VALUE,
        });
    }
    tokens.push(token);
    Ok(pos + text.len())
}

/// A string at `pos` (the opening quote); returns the position after the closing quote.
///
/// The common case stays inline and small: ASCII without escapes, its closing quote found
/// eight bytes at a time. Anything else (a backslash, a non-ASCII or control byte, fewer
/// than eight bytes left in the input) continues in [`string_rest`].
#[inline(always)]
fn string(bytes: &[u8], pos: usize, tokens: &mut Vec<Token>) -> Result<usize, TapeError> {
    let start = pos + 1;
    let mut i = start;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let stop = special_bytes(word) | (word & HIGH);
        if stop != 0 {
            // The lowest set bit is the high bit of the first byte to stop at.
            let shift = stop.trailing_zeros() & !7;
            i += (shift / 8) as usize;
            if (word >> shift) as u8 == b'"' {
                tokens.push(Token::String {
                    start: start as u32,
                    end: i as u32,
                    escaped: false,
                });
                return Ok(i + 1);
            }
            break;
        }
        i += 8;
    }
    string_rest(bytes, start, i, tokens)
}

/// The rest of the string that starts at `start`, from `i` (every byte before `i` is
/// ASCII, not a quote, a backslash or a control byte): escapes, non-ASCII bytes (the
/// string is then checked as UTF-8 at the end), control bytes, and the end of the input.
#[inline(never)]
fn string_rest(
    bytes: &[u8],
    start: usize,
    mut i: usize,
    tokens: &mut Vec<Token>,
) -> Result<usize, TapeError> {
    // Fewer than eight bytes left (the document's last string): one look at them padded
    // with NUL bytes, which stop the scan as control bytes do.
    if let Some(rest) = bytes.get(i..).filter(|rest| rest.len() < 8) {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        let word = u64::from_le_bytes(word);
        let stop = special_bytes(word) | (word & HIGH);
        let shift = stop.trailing_zeros() & !7;
        if stop != 0 && (word >> shift) as u8 == b'"' {
            let end = i + (shift / 8) as usize;
            tokens.push(Token::String {
                start: start as u32,
                end: end as u32,
                escaped: false,
            });
            return Ok(end + 1);
        }
    }
    let mut escaped = false;
    // Whether the string has a non-ASCII byte (then it is checked as UTF-8 at the end).
    let mut non_ascii = false;
    // The eight-byte scan also stops at non-ASCII bytes until the first is seen, so an
    // ASCII string costs no extra work per word.
    let mut stop_high = HIGH;
    loop {
        // Eight bytes at a time while none is a quote, a backslash or a control byte.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let special = special_bytes(word) | (word & stop_high);
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match bytes.get(i) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                i = escape(bytes, i)?;
            }
            Some(0x00..=0x1f) => return Err(TapeError::Control { offset: i }),
            Some(&b) => {
                if b >= 0x80 {
                    non_ascii = true;
                    stop_high = 0;
                }
                i += 1;
            }
            None => {
                return Err(TapeError::Eof {
                    expected: "'\"' to close a string",
                });
            }
        }
    }
    if non_ascii {
        if let Err(e) = std::str::from_utf8(&bytes[start..i]) {
            return Err(TapeError::Utf8 {
                offset: start + e.valid_up_to(),
            });
        }
    }
    tokens.push(Token::String {
        start: start as u32,
        end: i as u32,
        escaped,
    });
    Ok(i + 1)
}

/// A number at `pos`, as JSON's grammar (and serde_json) has it:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, whose first byte `first` the caller
/// has read. Returns the position after it.
#[inline(always)]
fn number(
    bytes: &[u8],
    start: usize,
    first: u8,
    tokens: &mut Vec<Token>,
    big_ints: &mut bool,
) -> Result<usize, TapeError> {
    let digits = |mut i: usize| {
        while let Some(b'0'..=b'9') = bytes.get(i) {
            i += 1;
        }
        i
    };
    // Fractions are often long (printed floats): eight bytes at a time while all are digits.
    let many_digits = |mut i: usize| {
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let stop = non_digits(u64::from_le_bytes(word));
            if stop != 0 {
                return i + (stop.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        digits(i)
    };
    // The caller has read the first byte: no second read unless it is a minus sign.
    let (int_start, first) = match first {
        b'-' => (start + 1, bytes.get(start + 1).copied().unwrap_or(0)),
        _ => (start, first),
    };
    let mut i = int_start;
    match first {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i + 1),
        _ => return Err(unexpected(bytes, i, "a digit")),
    }
    let int_digits = i - int_start;
    // Most numbers are short integers: no fraction, no exponent, nothing more to check.
    if !matches!(bytes.get(i), Some(b'.' | b'e' | b'E')) && int_digits <= SMALL_INT_DIGITS {
        tokens.push(Token::Number {
            start: start as u32,
            end: i as u32,
            kind: NumKind::SmallInt,
        });
        return Ok(i);
    }
    let mut float = false;
    if bytes.get(i) == Some(&b'.') {
        let frac = i + 1;
        i = many_digits(frac);
        if i == frac {
            return Err(unexpected(bytes, i, "a digit after '.'"));
        }
        float = true;
    }
    // Whether the magnitude could reach f64's range (then serde_json decides).
    let mut risky = int_digits > 300;
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        let negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        i = digits(exp_start);
        if i == exp_start {
            return Err(unexpected(bytes, i, "a digit in the exponent"));
        }
        float = true;
        if !negative {
            let exp = bytes[exp_start..i]
                .iter()
                .skip_while(|&&d| d == b'0')
                .try_fold(0usize, |acc, &d| {
                    let acc = acc * 10 + usize::from(d - b'0');
                    (acc <= 1000).then_some(acc)
                });
            risky |= exp.is_none_or(|e| int_digits + e > 300);
        }
    }
    // Far from f64's range the value is finite for sure; near it, ask serde_json.
    if risky && Node::parse(&bytes[start..i]).is_err() {
        return Err(TapeError::NumberRange { offset: start });
    }
    let kind = match (float, int_digits <= SMALL_INT_DIGITS) {
        (true, _) => NumKind::Float,
        (false, true) => NumKind::SmallInt,
        (false, false) => {
            *big_ints = true;
            NumKind::BigInt
        }
    };
    tokens.push(Token::Number {
        start: start as u32,
        end: i as u32,
        kind,
    });
    Ok(i)
}

/// A word with the high bit set in each byte that is `"`, `\` or below 0x20. Bits above the
/// first such byte may be spurious; the lowest set bit is exact.
#[inline(always)]
fn special_bytes(word: u64) -> u64 {
    // After `^ 0x02`, `"` (0x22) becomes 0x20 and the control bytes stay below 0x20 (the
    // space and `!` move up to 0x22 and 0x23): so "below 0x21" finds both at once. A byte
    // borrows only when it is below 0x21, so bytes below the first such one are exact;
    // `!word` drops non-ASCII bytes, whose high bit a subtraction may also set.
    let quote_or_control = (word ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (quote_or_control | backslash) & !word & HIGH
}

/// A word with the high bit set in each byte that is not an ASCII digit (exactly: no
/// carries between bytes).
#[inline(always)]
fn non_digits(word: u64) -> u64 {
    // Digits become 0..=9; every other byte 10 or more. Adding 0x76 to the low seven bits
    // sets the high bit from 10 up, without carrying out of the byte.
    let x = word ^ (ONES * u64::from(b'0'));
    (((x & (ONES * 0x7f)) + ONES * 0x76) | x) & HIGH
}

/// Validate the escape at `at` (a backslash); returns the index after it. Surrogates must
/// come in pairs, as serde_json requires when it produces a `str`.
fn escape(bytes: &[u8], at: usize) -> Result<usize, TapeError> {
    let error = TapeError::Escape { offset: at };
    match bytes.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let n = hex4(bytes, at + 2).ok_or(error.clone())?;
            match n {
                0xDC00..=0xDFFF => Err(error),
                0xD800..=0xDBFF => {
                    if bytes.get(at + 6..at + 8) != Some(b"\\u") {
                        return Err(error);
                    }
                    match hex4(bytes, at + 8) {
                        Some(0xDC00..=0xDFFF) => Ok(at + 12),
                        _ => Err(error),
                    }
                }
                _ => Ok(at + 6),
            }
        }
        _ => Err(error),
    }
}

#[cfg(test)]
mod tests;
