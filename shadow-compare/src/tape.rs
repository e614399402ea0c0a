//! A flat tape of JSON tokens, produced in one pass over the bytes, for the fast equal path.
//!
//! Owns tokenizing and validation only; knows nothing about noise rules or differences.
//! A container token records the index one past its last token, so a walk can skip a whole
//! subtree in O(1). Strings and numbers are byte ranges into the input: strings stay raw
//! (escapes are decoded only when a comparison needs them, see [`Tape::decode`]) and numbers
//! keep their text (parsed only when two texts differ, see [`Tape::num`]).
//!
//! Validation is **at least as strict as serde_json's** `from_slice`: everything serde_json
//! rejects is rejected here (bad escapes, unpaired surrogates, invalid UTF-8, control
//! characters in strings, bad numbers, numbers out of `f64` range, trailing characters,
//! nesting of 128 or more). A few documents serde_json accepts are rejected too (invalid
//! UTF-8 outside strings is a syntax error for both; documents over 4 GiB are rejected
//! here only). Callers treat any rejection as "undecided" and fall back to serde_json, so
//! the public result for invalid JSON is serde_json's.

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
        let raw = self.raw(start, end);
        if !escaped {
            return Some(raw);
        }
        buf.clear();
        decode_into(raw, buf)?;
        Some(buf)
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

#[derive(Clone, Copy, Default)]
struct Frame {
    token: u32,
    len: u32,
    object: bool,
}

struct Tokenizer<'a, 't> {
    bytes: &'a [u8],
    pos: usize,
    tokens: &'t mut Vec<Token>,
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    big_ints: bool,
}

/// Fill `tokens`; returns whether some integer has 16 or more digits.
fn tokenize(input: &[u8], tokens: &mut Vec<Token>) -> Result<bool, TapeError> {
    if u32::try_from(input.len()).is_err() {
        return Err(TapeError::TooLarge { len: input.len() });
    }
    // serde_json checks UTF-8 inside strings; outside them any non-ASCII byte is a syntax
    // error anyway, so checking the whole document at once is equivalent (and fast).
    if let Err(e) = std::str::from_utf8(input) {
        return Err(TapeError::Utf8 {
            offset: e.valid_up_to(),
        });
    }
    let mut t = Tokenizer {
        bytes: input,
        pos: 0,
        tokens,
        stack: [Frame::default(); MAX_DEPTH],
        depth: 0,
        big_ints: false,
    };
    t.run()?;
    Ok(t.big_ints)
}

const VALUE: &str = "a JSON value";

impl Tokenizer<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &'static str) -> TapeError {
        if self.pos >= self.bytes.len() {
            TapeError::Eof { expected }
        } else {
            TapeError::Syntax {
                offset: self.pos,
                expected,
            }
        }
    }

    fn index(&self) -> u32 {
        // The tape has at most one token per input byte, and the input fits in u32.
        self.tokens.len() as u32
    }

    fn run(&mut self) -> Result<(), TapeError> {
        'value: loop {
            self.skip_ws();
            let Some(b) = self.peek() else {
                return Err(TapeError::Eof { expected: VALUE });
            };
            match b {
                b'{' | b'[' => {
                    let object = b == b'{';
                    if self.depth >= MAX_DEPTH {
                        return Err(TapeError::Depth { offset: self.pos });
                    }
                    self.stack[self.depth] = Frame {
                        token: self.index(),
                        len: 0,
                        object,
                    };
                    self.depth += 1;
                    self.tokens.push(if object {
                        Token::Object { end: 0, len: 0 }
                    } else {
                        Token::Array { end: 0, len: 0 }
                    });
                    self.pos += 1;
                    self.skip_ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        self.close();
                    } else {
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true", Token::True)?,
                b'f' => self.literal(b"false", Token::False)?,
                b'n' => self.literal(b"null", Token::Null)?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(self.unexpected(VALUE)),
            }
            // A value is complete: count it in its container, then a separator or a close.
            loop {
                let Some(frame) = self.depth.checked_sub(1).map(|d| &mut self.stack[d]) else {
                    self.skip_ws();
                    if self.pos == self.bytes.len() {
                        return Ok(());
                    }
                    return Err(self.unexpected("the end of the document"));
                };
                frame.len += 1;
                let object = frame.object;
                self.skip_ws();
                match (self.peek(), object) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        if object {
                            self.skip_ws();
                            self.key()?;
                        }
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.close();
                    }
                    (_, true) => return Err(self.unexpected("',' or '}'")),
                    (_, false) => return Err(self.unexpected("',' or ']'")),
                }
            }
        }
    }

    /// Close the innermost container: record its end and length.
    fn close(&mut self) {
        self.depth -= 1;
        let frame = self.stack[self.depth];
        let end = self.index();
        if let Some(token) = self.tokens.get_mut(frame.token as usize) {
            *token = if frame.object {
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

    /// An object key and its colon.
    fn key(&mut self) -> Result<(), TapeError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string key"));
        }
        self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.unexpected("':'"));
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, text: &'static [u8], token: Token) -> Result<(), TapeError> {
        if self.bytes.get(self.pos..self.pos + text.len()) != Some(text) {
            return Err(TapeError::Syntax {
                offset: self.pos,
                expected: VALUE,
            });
        }
        self.pos += text.len();
        self.tokens.push(token);
        Ok(())
    }

    /// A string; `pos` is at the opening quote.
    fn string(&mut self) -> Result<(), TapeError> {
        let bytes = self.bytes;
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while none is a quote, a backslash or a control byte.
            while let Some(chunk) = bytes.get(i..i + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let special = special_bytes(u64::from_le_bytes(word));
                if special != 0 {
                    i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            let Some(&c) = bytes.get(i) else {
                self.pos = i;
                return Err(TapeError::Eof {
                    expected: "'\"' to close a string",
                });
            };
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i = escape(bytes, i)?;
                }
                0x00..=0x1f => return Err(TapeError::Control { offset: i }),
                _ => i += 1,
            }
        }
        self.tokens.push(Token::String {
            start: start as u32,
            end: i as u32,
            escaped,
        });
        self.pos = i + 1;
        Ok(())
    }

    /// A number, as JSON's grammar (and serde_json) has it:
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<(), TapeError> {
        let bytes = self.bytes;
        let start = self.pos;
        let digits = |mut i: usize| {
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            i
        };
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i + 1),
            _ => {
                self.pos = i;
                return Err(self.unexpected("a digit"));
            }
        }
        let int_digits = i - int_start;
        let mut float = false;
        if bytes.get(i) == Some(&b'.') {
            let frac = i + 1;
            i = digits(frac);
            if i == frac {
                self.pos = i;
                return Err(self.unexpected("a digit after '.'"));
            }
            float = true;
        }
        // Decimal exponent of the value's magnitude, if it could reach f64's range.
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
                self.pos = i;
                return Err(self.unexpected("a digit in the exponent"));
            }
            float = true;
            if !negative {
                let exp = &bytes[exp_start..i];
                let exp = exp
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
                self.big_ints = true;
                NumKind::BigInt
            }
        };
        self.tokens.push(Token::Number {
            start: start as u32,
            end: i as u32,
            kind,
        });
        self.pos = i;
        Ok(())
    }
}

/// A word with the high bit set in each byte that is `"`, `\` or below 0x20. Bits above the
/// first such byte may be spurious; the lowest set bit is exact.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    quote | backslash | control
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
