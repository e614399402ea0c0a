//! The fast equal path: decides "equal under the noise rules" by walking two tapes
//! ([`crate::tape`]) side by side, without building a tree.
//!
//! Answers `true` only when the tree diff (`tree` + `diff`) would report no difference;
//! `false` means "different, or not decided here", and the caller then runs the tree diff,
//! which produces every reported difference. So this module never reports anything and
//! must never be more lenient than `diff`. It mirrors `diff`'s rules: ignored pointers,
//! ordered / unordered / keyed arrays, numeric equality with tolerance, object members in
//! any order (with no rules in force, a container spelled with the same tokens is decided
//! in one pass over them, objects whose keys come in the same order are compared member by
//! member, without indexing keys, and reordered small objects match keys by fingerprint in
//! local arrays). Numbers compare by text first and are parsed (by serde_json, as the tree
//! does) only when the texts differ; strings compare raw and are decoded only when one
//! side has escapes.
//!
//! It gives up (answers `false`) on what it cannot decide cheaply and exactly: invalid
//! JSON (the tokenizer is at least as strict as serde_json), duplicate object keys (unless
//! both objects have the same member sequence, where "last wins" makes them equal),
//! unordered arrays when a number tolerance is set or a document has integers of 16+
//! digits (numeric equality is then not transitive, so a matching found here might not be
//! the one `diff` finds), unordered or keyed arrays whose elements are ignored or whose
//! rules name literal indices, keyed arrays whose key values are objects or arrays, and
//! hash buckets that need more than a few probes.
//!
//! Memory: each thread keeps its two token buffers between calls (12 bytes per token,
//! about one token per 6–10 bytes of JSON, so about 2 bytes per input byte) unless one grew
//! beyond [`RETAIN_BYTES`] (4 MiB, documents up to about 2 MiB); so at most 8 MiB per
//! thread stay allocated. Larger documents allocate their tapes per call.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use crate::diff::IdentityHash;
use crate::pointer::Step;
use crate::rules::{ArrayMode, Matcher, NoiseRules, NumberTolerance, State};
use crate::tape::{self, Tape, Token, bytes_eq};
use crate::tree;

/// Token buffers larger than this (in bytes) are freed after use instead of kept.
pub(crate) const RETAIN_BYTES: usize = 4 << 20;

/// Objects with more candidate members than this are matched by sorting, not by scanning.
const SMALL_OBJECT: usize = 64;

/// Rule-free objects with at most this many members are matched in local arrays (see
/// [`Walk::objects_local`]).
const LOCAL_OBJECT: usize = 16;

/// Room made for candidate members when the first key-matched object is met (later
/// objects reuse it; deeper or larger ones grow it).
const MEMBERS_RESERVED: usize = 32;

/// How many same-hash candidates an array element may try before the fast path gives up.
const MAX_PROBES: usize = 16;

const NONE: u32 = u32::MAX;

thread_local! {
    static TAPES: RefCell<[Vec<Token>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Run `f` with this thread's two token buffers (fresh ones if they are in use or gone).
fn with_buffers<R>(f: impl FnOnce(&mut Vec<Token>, &mut Vec<Token>) -> R) -> R {
    let [mut a, mut b] = TAPES
        .try_with(|t| t.try_borrow_mut().map(|mut t| std::mem::take(&mut *t)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let out = f(&mut a, &mut b);
    for buffer in [&mut a, &mut b] {
        if buffer.capacity() * size_of::<Token>() > RETAIN_BYTES {
            *buffer = Vec::new();
        }
    }
    let _ = TAPES.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            *t = [a, b];
        }
    });
    out
}

/// Whether `bytes` is JSON serde_json would accept. `false` may also mean "not decided".
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    with_buffers(|tokens, _| Tape::parse(bytes, tokens).is_ok())
}

/// Whether the tree diff of these documents under `rules` would report no difference.
/// `false` means different, invalid, or not decided here.
pub(crate) fn proven_equal(legacy: &[u8], candidate: &[u8], rules: &NoiseRules) -> bool {
    with_buffers(|ta, tb| {
        let Ok(a) = Tape::parse(legacy, ta) else {
            return false;
        };
        let Ok(b) = Tape::parse(candidate, tb) else {
            return false;
        };
        let matcher = rules.matcher();
        let root = matcher.root();
        if matcher.ignored(&root) {
            return true;
        }
        let numbers = rules.numbers();
        let mut walk = Walk {
            matcher,
            numbers,
            a,
            b,
            unordered_safe: numbers.is_exact() && !a.has_big_ints() && !b.has_big_ints(),
            members: Vec::new(),
            bufs: [Vec::new(), Vec::new()],
        };
        walk.eq(0, 0, &root)
    })
}

/// The index after the value at `index` (the end of the tape if there is no such value,
/// where every lookup answers `None`).
fn skip(tape: &Tape<'_>, index: usize) -> usize {
    tape.token(index).map_or(tape.len(), |t| t.next(index))
}

/// The token indices of an array's elements.
fn elements(tape: &Tape<'_>, array: usize, len: u32) -> Vec<usize> {
    let mut out = Vec::with_capacity(len as usize);
    let mut at = array + 1;
    for _ in 0..len {
        out.push(at);
        at = skip(tape, at);
    }
    out
}

/// A string token's decoded bytes, borrowed from the input when it has no escapes.
/// The raw bytes of the string at `index` if it has no escapes (so raw equality is equality).
#[inline(always)]
fn unescaped<'a>(tape: &Tape<'a>, index: usize) -> Option<&'a [u8]> {
    match tape.token(index)? {
        Token::String {
            start,
            end,
            escaped: false,
        } => Some(tape.raw(start, end)),
        _ => None,
    }
}

fn string_bytes<'a>(tape: &Tape<'a>, index: usize) -> Option<Cow<'a, [u8]>> {
    let Some(Token::String {
        start,
        end,
        escaped,
    }) = tape.token(index)
    else {
        return None;
    };
    if !escaped {
        return Some(Cow::Borrowed(tape.raw(start, end)));
    }
    let mut buf = Vec::new();
    tape.decode(start, end, escaped, &mut buf)?;
    Some(Cow::Owned(buf))
}

/// An object member: its raw key (and the key's [`fingerprint`]) and the index of its
/// value token.
#[derive(Clone, Copy)]
struct Member<'a> {
    key: &'a [u8],
    fingerprint: u64,
    escaped: bool,
    value: u32,
}

/// Keys shorter than this are their own [`fingerprint`].
const EXACT_KEY: usize = 8;

/// A summary of a raw key in one word, so that a scan for a key compares integers. A key
/// shorter than [`EXACT_KEY`] bytes is packed whole (its bytes, its length in the top
/// byte): equal fingerprints then mean equal keys. Longer keys mix their length and first
/// and last eight bytes (top bit set, so never equal to a short key's): equal fingerprints
/// must be confirmed byte by byte.
#[inline(always)]
fn fingerprint(key: &[u8]) -> u64 {
    let n = key.len();
    let byte = |at: usize| u64::from(key[at]) << (8 * at);
    let word = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&key[at..at + 4]);
        u64::from(u32::from_le_bytes(w)) << (8 * at)
    };
    // Overlapping pieces cover every length in a range (a byte written twice is the same).
    let packed = match n {
        0 => 0,
        1..4 => byte(0) | byte(n / 2) | byte(n - 1),
        4..EXACT_KEY => word(0) | word(n - 4),
        _ => {
            let long = |at: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&key[at..at + 8]);
                u64::from_le_bytes(w)
            };
            return (long(0) ^ long(n - 8).rotate_left(29) ^ n as u64) | 1 << 63;
        }
    };
    packed | (n as u64) << 56
}

/// Whether the keys of two members with equal fingerprints are equal: at once for short
/// keys, else by their bytes.
#[inline(always)]
fn same_key(x: &[u8], y: &[u8]) -> bool {
    x.len() < EXACT_KEY || bytes_eq(x, y)
}

impl<'a> Member<'a> {
    /// The member whose key token is at `at`.
    fn at(tape: &Tape<'a>, at: usize) -> Option<Self> {
        match tape.token(at)? {
            Token::String {
                start,
                end,
                escaped,
            } => {
                let key = tape.raw(start, end);
                Some(Member {
                    key,
                    fingerprint: fingerprint(key),
                    escaped,
                    value: (at + 1) as u32,
                })
            }
            _ => None,
        }
    }
}

/// Whether no two members have the same (decoded) key. A member matching by key finds *a*
/// member with that key; with duplicate keys ("last wins", as serde_json and the tree have
/// it) a matching of equal pairs can still pair the wrong occurrences, so objects with
/// duplicates are left to the tree (unless the member sequences are the same, see
/// [`Walk::objects_lockstep`]). Objects under rules only: without rules the matching
/// itself excludes duplicates (see [`Walk::objects_plain`]).
fn distinct_keys(members: &[Member<'_>]) -> bool {
    if members.len() <= 16 {
        for (k, x) in members.iter().enumerate() {
            if x.escaped {
                return distinct_decoded(members);
            }
            for y in &members[k + 1..] {
                // Lengths first: most pairs differ there.
                if x.key.len() == y.key.len() && bytes_eq(x.key, y.key) {
                    return false;
                }
            }
        }
        return true;
    }
    distinct_decoded(members)
}

/// [`distinct_keys`] by sorting the decoded keys.
fn distinct_decoded(members: &[Member<'_>]) -> bool {
    let mut keys = Vec::with_capacity(members.len());
    for m in members {
        if m.escaped {
            let mut buf = Vec::new();
            if tape::decode(m.key, true, &mut buf).is_none() {
                return false;
            }
            keys.push(Cow::Owned(buf));
        } else {
            keys.push(Cow::Borrowed(m.key));
        }
    }
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1])
}

struct Walk<'r, 'a> {
    matcher: &'r Matcher,
    numbers: NumberTolerance,
    /// Legacy.
    a: Tape<'a>,
    /// Candidate.
    b: Tape<'a>,
    /// Equality under the rules is an equivalence here, so a matching found by hashing
    /// exists iff `diff`'s greedy matching succeeds.
    unordered_safe: bool,
    /// Members of candidate objects being matched; a stack shared by the recursion.
    members: Vec<Member<'a>>,
    /// Scratch for decoding escaped strings: legacy, candidate.
    bufs: [Vec<u8>; 2],
}

impl<'a> Walk<'_, 'a> {
    fn child(&self, states: &[State], step: Step<'_>) -> Vec<State> {
        if states.is_empty() {
            Vec::new()
        } else {
            self.matcher.step(states, step)
        }
    }

    fn ignored(&self, states: &[State]) -> bool {
        !states.is_empty() && self.matcher.ignored(states)
    }

    /// The states of an object member. `None` if undecidable.
    fn key_states(
        &mut self,
        member: Member<'_>,
        states: &[State],
        buf: usize,
    ) -> Option<Vec<State>> {
        if states.is_empty() {
            return Some(Vec::new());
        }
        let bytes = tape::decode(member.key, member.escaped, &mut self.bufs[buf])?;
        let key = std::str::from_utf8(bytes).ok()?;
        Some(self.matcher.step(states, Step::Key(key)))
    }

    /// Push the `m` members of the candidate object at `j` onto `members`; returns where
    /// they start and whether some key has escapes.
    fn push_members(&mut self, j: usize, m: u32) -> Option<(usize, bool)> {
        let base = self.members.len();
        // One allocation for the usual nesting of small objects, not a doubling series.
        if self.members.capacity() == 0 {
            self.members.reserve(MEMBERS_RESERVED);
        }
        let mut escaped = false;
        let mut y = j + 1;
        for _ in 0..m {
            let member = Member::at(&self.b, y)?;
            escaped |= member.escaped;
            self.members.push(member);
            y = skip(&self.b, y + 1);
        }
        Some((base, escaped))
    }

    /// The states shared by every element of the array at `states`, for unordered and keyed
    /// arrays. `None` when they depend on the index or ignore the elements (cases where
    /// `diff`'s hashing and matching are not plain equivalences; left to `diff`).
    fn element_states(&self, states: &[State]) -> Option<Vec<State>> {
        if states.is_empty() {
            return Some(Vec::new());
        }
        if self.matcher.index_dependent(states) {
            return None;
        }
        let child = self.matcher.step(states, Step::Index(0));
        (!self.ignored(&child)).then_some(child)
    }

    /// Legacy value `i` equals candidate value `j` under the rules at `states`.
    fn eq(&mut self, i: usize, j: usize, states: &[State]) -> bool {
        if states.is_empty() {
            // A rule-free value: containers spelled alike are decided in one pass.
            if let Some(Token::Object { .. } | Token::Array { .. }) = self.a.token(i) {
                if self.same_tokens(i, j) {
                    return true;
                }
            }
            return self.eq_plain(i, j).is_some();
        }
        let (Some(x), Some(y)) = (self.a.token(i), self.b.token(j)) else {
            return false;
        };
        match (x, y) {
            (Token::Array { len: n, .. }, Token::Array { len: m, .. }) => {
                let matcher = self.matcher;
                match matcher.array_mode(states) {
                    ArrayMode::Ordered => self.ordered(i, n, j, m, states),
                    ArrayMode::Unordered => self.unordered(i, n, j, m, states),
                    ArrayMode::Keyed(key) => self.keyed(i, n, j, m, states, key),
                }
            }
            (Token::Object { len: n, .. }, Token::Object { len: m, .. }) => {
                self.objects(i, n, j, m, states)
            }
            _ => self.scalars_eq(x, y, true),
        }
    }

    /// Two scalar tokens are equal (numbers within the tolerance when `tolerant`);
    /// anything else, including a container, is not.
    fn scalars_eq(&mut self, x: Token, y: Token, tolerant: bool) -> bool {
        match (x, y) {
            (Token::Null, Token::Null)
            | (Token::True, Token::True)
            | (Token::False, Token::False) => true,
            (Token::Number { .. }, Token::Number { .. }) => self.numbers_eq(x, y, tolerant),
            (Token::String { .. }, Token::String { .. }) => self.strings_eq(x, y),
            _ => false,
        }
    }

    /// [`Walk::eq`] where no rule applies (the states are empty), as for most of a
    /// document: arrays are ordered, nothing is ignored, so no states are computed. Returns
    /// the index after the legacy value when the values are equal (so that a caller walking
    /// members or elements need not look at the value's token again).
    fn eq_plain(&mut self, i: usize, j: usize) -> Option<usize> {
        let (Some(x), Some(y)) = (self.a.token(i), self.b.token(j)) else {
            return None;
        };
        let equal = match (x, y) {
            (Token::Null, Token::Null)
            | (Token::True, Token::True)
            | (Token::False, Token::False) => true,
            // The common cases first, inline: same text.
            (
                Token::String {
                    start: s1,
                    end: e1,
                    escaped: false,
                },
                Token::String {
                    start: s2,
                    end: e2,
                    escaped: false,
                },
            ) => bytes_eq(self.a.raw(s1, e1), self.b.raw(s2, e2)),
            (
                Token::Number {
                    start: s1, end: e1, ..
                },
                Token::Number {
                    start: s2, end: e2, ..
                },
            ) if bytes_eq(self.a.raw(s1, e1), self.b.raw(s2, e2)) => true,
            (Token::Number { .. }, Token::Number { .. }) => self.numbers_eq(x, y, true),
            (Token::String { .. }, Token::String { .. }) => self.strings_eq(x, y),
            (Token::Array { len: n, .. }, Token::Array { len: m, .. }) => {
                if n != m {
                    return None;
                }
                let (mut x, mut y) = (i + 1, j + 1);
                for _ in 0..n {
                    x = self.eq_plain(x, y)?;
                    y = skip(&self.b, y);
                }
                true
            }
            (Token::Object { len: n, .. }, Token::Object { len: m, .. }) => {
                if n != m {
                    return None;
                }
                if let Some(equal) = (n == 2).then(|| self.pair_swapped(i, j)).flatten() {
                    equal
                } else if let Some(equal) = self
                    .same_first_key(i, j)
                    .then(|| self.objects_lockstep(i, j, n))
                    .flatten()
                {
                    equal
                } else if let Some(equal) = (m as usize <= LOCAL_OBJECT)
                    .then(|| self.objects_local(i, j, n))
                    .flatten()
                {
                    equal
                } else if m as usize > SMALL_OBJECT {
                    self.objects_sorted(i, n, j, m, &[])
                } else {
                    let (base, escaped) = self.push_members(j, m)?;
                    let equal = self.objects_plain(i, n, base, escaped);
                    self.members.truncate(base);
                    equal
                }
            }
            _ => false,
        };
        equal.then(|| x.next(i))
    }

    /// Whether the objects at `i` and `j` start with the same unescaped key (so that the
    /// lockstep walk may succeed; reordered objects skip it at once).
    #[inline(always)]
    fn same_first_key(&self, i: usize, j: usize) -> bool {
        match (unescaped(&self.a, i + 1), unescaped(&self.b, j + 1)) {
            (Some(k1), Some(k2)) => bytes_eq(k1, k2),
            _ => false,
        }
    }

    /// Objects of `n` members each whose keys come in the same order (what two serializers
    /// of one structure usually produce), no rules: compared member by member, without
    /// indexing the candidate's keys. `None` as soon as a key differs or is escaped (the
    /// caller then matches keys). Sound with duplicate keys too: equal member sequences
    /// make equal objects under "last duplicate wins".
    fn objects_lockstep(&mut self, i: usize, j: usize, n: u32) -> Option<bool> {
        let (mut x, mut y) = (i + 1, j + 1);
        for _ in 0..n {
            let (Some(k1), Some(k2)) = (unescaped(&self.a, x), unescaped(&self.b, y)) else {
                return None;
            };
            if !bytes_eq(k1, k2) {
                return None;
            }
            let Some(next) = self.eq_plain(x + 1, y + 1) else {
                return Some(false);
            };
            x = next;
            y = skip(&self.b, y + 1);
        }
        Some(true)
    }

    /// Objects of two members each whose keys come swapped (`{"a":..,"b":..}` and
    /// `{"b":..,"a":..}`), no rules: each member is compared with the other object's member
    /// of the same key, without a member list. `None` unless the four keys are unescaped and
    /// so arranged (the caller then matches keys). The keys are distinct on both sides
    /// (`a` ≠ `b`), so these are the pairs the tree compares.
    fn pair_swapped(&mut self, i: usize, j: usize) -> Option<bool> {
        let key = unescaped;
        let (x0, y0) = (i + 1, j + 1);
        let (a0, b0) = (key(&self.a, x0)?, key(&self.b, y0)?);
        // The same first key (same member order): left to the lockstep walk.
        if bytes_eq(a0, b0) {
            return None;
        }
        let (x1, y1) = (skip(&self.a, x0 + 1), skip(&self.b, y0 + 1));
        let (a1, b1) = (key(&self.a, x1)?, key(&self.b, y1)?);
        if !(bytes_eq(a0, b1) && bytes_eq(a1, b0)) {
            return None;
        }
        Some(self.eq_plain(x0 + 1, y1 + 1).is_some() && self.eq_plain(x1 + 1, y0 + 1).is_some())
    }

    /// [`Walk::objects_plain`] for objects of at most [`LOCAL_OBJECT`] members with
    /// unescaped keys, the candidate's key fingerprints and positions kept in local arrays
    /// instead of the shared member stack. `None` when a key has escapes (the caller then
    /// matches decoded keys). Each legacy key takes the first candidate member with the same
    /// key, so duplicates are excluded as there.
    fn objects_local(&mut self, i: usize, j: usize, n: u32) -> Option<bool> {
        let m = n as usize;
        let mut fingerprints = [0u64; LOCAL_OBJECT];
        let mut keys = [0u32; LOCAL_OBJECT];
        let mut y = j + 1;
        for p in 0..m {
            let Some(Token::String {
                start,
                end,
                escaped: false,
            }) = self.b.token(y)
            else {
                return None;
            };
            fingerprints[p] = fingerprint(self.b.raw(start, end));
            keys[p] = y as u32;
            y = skip(&self.b, y + 1);
        }
        let mut matched: u64 = 0;
        let mut x = i + 1;
        for _ in 0..n {
            let Some(Token::String {
                start,
                end,
                escaped: false,
            }) = self.a.token(x)
            else {
                return None;
            };
            let key = self.a.raw(start, end);
            let fp = fingerprint(key);
            let b = self.b;
            let found = fingerprints[..m].iter().zip(&keys).position(|(&f, &at)| {
                f == fp
                    && (key.len() < EXACT_KEY
                        || matches!(b.token(at as usize), Some(Token::String { start, end, .. })
                            if bytes_eq(b.raw(start, end), key)))
            });
            let Some(p) = found else {
                return Some(false);
            };
            if matched & (1 << p) != 0 {
                return Some(false);
            }
            matched |= 1 << p;
            let Some(next) = self.eq_plain(x + 1, keys[p] as usize + 1) else {
                return Some(false);
            };
            x = next;
        }
        Some(true)
    }

    /// Objects of `n` members each, the candidate's at `base` (`escaped` if some candidate
    /// key has escapes), no rules: every legacy key must match a distinct candidate key,
    /// with equal values.
    ///
    /// Duplicate keys need no separate check: each legacy key takes the *first* candidate
    /// member with the same (decoded) key, which depends on the key alone, so two legacy
    /// members with one key would take the same candidate member, which the `matched` bits
    /// refuse. A match of all `n` legacy members therefore proves their keys distinct, and,
    /// with `n` members on each side, pairs every candidate member with an equal key: the
    /// candidate's keys are distinct too, and every pair is the one the tree compares.
    fn objects_plain(&mut self, i: usize, n: u32, base: usize, escaped: bool) -> bool {
        let m = n as usize;
        let mut matched: u64 = 0;
        let mut x = i + 1;
        for _ in 0..n {
            let Some(key) = Member::at(&self.a, x) else {
                return false;
            };
            let found = if !(escaped || key.escaped) {
                let candidates = &self.members[base..base + m];
                candidates
                    .iter()
                    .position(|y| y.fingerprint == key.fingerprint && same_key(key.key, y.key))
            } else {
                self.scan_key(key, base, m)
            };
            let Some(p) = found else {
                return false;
            };
            if matched & (1 << p) != 0 {
                return false;
            }
            matched |= 1 << p;
            let value = self.members[base + p].value as usize;
            let Some(next) = self.eq_plain(x + 1, value) else {
                return false;
            };
            x = next;
        }
        true
    }

    /// Whether legacy value `i` and candidate value `j` are spelled with the same tokens:
    /// the same structure and member order, the same raw strings and number texts
    /// (whitespace aside). Such values are equal where no rule applies (duplicate keys
    /// too: the tree parses both alike), and one pass over the two token runs, without
    /// recursion, decides it. `false` says nothing: the caller then walks the values.
    ///
    /// Tried where the walk enters a rule-free value ([`Walk::eq`]), not again inside the
    /// walk that follows a `false` (`eq_plain` never calls it): so it adds at most one pass
    /// over the tokens it reaches, and little when the first members already differ. Not
    /// tried for the values of objects matched by key either: measured, the failed attempts
    /// on key-reordered documents cost more than the passes saved.
    fn same_tokens(&self, i: usize, j: usize) -> bool {
        let (Some(x), Some(y)) = (self.a.token(i), self.b.token(j)) else {
            return false;
        };
        let n = x.next(i) - i;
        if y.next(j) - j != n {
            return false;
        }
        let (Some(xs), Some(ys)) = (self.a.tokens(i, n), self.b.tokens(j, n)) else {
            return false;
        };
        xs.iter().zip(ys).all(|(&x, &y)| match (x, y) {
            (
                Token::String {
                    start: s1, end: e1, ..
                },
                Token::String {
                    start: s2, end: e2, ..
                },
            )
            | (
                Token::Number {
                    start: s1, end: e1, ..
                },
                Token::Number {
                    start: s2, end: e2, ..
                },
            ) => bytes_eq(self.a.raw(s1, e1), self.b.raw(s2, e2)),
            // With the same kinds and lengths throughout, the ends agree too (a tape is
            // its values in order, a container followed by `len` values).
            (Token::Object { len: n, .. }, Token::Object { len: m, .. })
            | (Token::Array { len: n, .. }, Token::Array { len: m, .. }) => n == m,
            (Token::Null, Token::Null)
            | (Token::True, Token::True)
            | (Token::False, Token::False) => true,
            _ => false,
        })
    }

    /// Two number tokens (legacy, candidate) are equal: numerically as the tree has it,
    /// within the tolerance when `tolerant`.
    fn numbers_eq(&self, x: Token, y: Token, tolerant: bool) -> bool {
        let (
            Token::Number {
                start: s1,
                end: e1,
                kind: k1,
            },
            Token::Number {
                start: s2,
                end: e2,
                kind: k2,
            },
        ) = (x, y)
        else {
            return false;
        };
        if bytes_eq(self.a.raw(s1, e1), self.b.raw(s2, e2)) {
            return true;
        }
        let (Some(p), Some(q)) = (self.a.num(s1, e1, k1), self.b.num(s2, e2, k2)) else {
            return false;
        };
        p.exact_eq(q)
            || (tolerant && !self.numbers.is_exact() && self.numbers.close(p.as_f64(), q.as_f64()))
    }

    /// Two string tokens (legacy, candidate) have the same decoded content.
    #[inline]
    fn strings_eq(&mut self, x: Token, y: Token) -> bool {
        let (
            Token::String {
                start: s1,
                end: e1,
                escaped: x1,
            },
            Token::String {
                start: s2,
                end: e2,
                escaped: x2,
            },
        ) = (x, y)
        else {
            return false;
        };
        if !x1 && !x2 {
            return bytes_eq(self.a.raw(s1, e1), self.b.raw(s2, e2));
        }
        let [ba, bb] = &mut self.bufs;
        match (self.a.decode(s1, e1, x1, ba), self.b.decode(s2, e2, x2, bb)) {
            (Some(p), Some(q)) => bytes_eq(p, q),
            _ => false,
        }
    }

    fn ordered(&mut self, i: usize, n: u32, j: usize, m: u32, states: &[State]) -> bool {
        if n != m {
            return false;
        }
        let shared = (states.is_empty() || !self.matcher.index_dependent(states))
            .then(|| self.child(states, Step::Index(0)));
        let (mut x, mut y) = (i + 1, j + 1);
        for index in 0..n as usize {
            let owned;
            let child: &[State] = match &shared {
                Some(child) => child,
                None => {
                    owned = self.child(states, Step::Index(index));
                    &owned
                }
            };
            if !self.ignored(child) && !self.eq(x, y, child) {
                return false;
            }
            x = skip(&self.a, x);
            y = skip(&self.b, y);
        }
        true
    }

    fn objects(&mut self, i: usize, n: u32, j: usize, m: u32, states: &[State]) -> bool {
        if states.is_empty() && n != m {
            return false;
        }
        if m as usize > SMALL_OBJECT {
            return self.objects_sorted(i, n, j, m, states);
        }
        let Some((base, _)) = self.push_members(j, m) else {
            return false;
        };
        let equal = distinct_keys(&self.members[base..])
            && self.objects_small(i, n, base, m as usize, states);
        self.members.truncate(base);
        equal
    }

    /// Two keys (legacy, candidate) are the same key.
    #[inline]
    fn keys_eq(&mut self, x: Member<'_>, y: Member<'_>) -> bool {
        if !(x.escaped || y.escaped) {
            return bytes_eq(x.key, y.key);
        }
        let [ba, bb] = &mut self.bufs;
        match (
            tape::decode(x.key, x.escaped, ba),
            tape::decode(y.key, y.escaped, bb),
        ) {
            (Some(p), Some(q)) => p == q,
            _ => false,
        }
    }

    /// Where the legacy key `x` is among the `m` candidate members at `base`: tries the
    /// neighbours of the previous match first (same or reversed member order, an
    /// unescaped byte comparison each), then scans.
    #[inline(always)]
    fn find_key(
        &mut self,
        x: Member<'_>,
        base: usize,
        m: usize,
        last: Option<usize>,
    ) -> Option<usize> {
        let hints = match last {
            Some(p) => [p + 1, p.wrapping_sub(1)],
            None => [0, m.wrapping_sub(1)],
        };
        for h in hints {
            if h >= m {
                continue;
            }
            if let Some(y) = self.members.get(base + h) {
                if !(x.escaped || y.escaped) && bytes_eq(x.key, y.key) {
                    return Some(h);
                }
            }
        }
        self.scan_key(x, base, m)
    }

    #[inline(never)]
    fn scan_key(&mut self, x: Member<'_>, base: usize, m: usize) -> Option<usize> {
        (0..m).find(|&p| self.keys_eq(x, self.members[base + p]))
    }

    /// Objects with at most [`SMALL_OBJECT`] candidate members: a scan per legacy member,
    /// a bit per candidate member.
    fn objects_small(&mut self, i: usize, n: u32, base: usize, m: usize, states: &[State]) -> bool {
        let mut matched: u64 = 0;
        let mut last = None;
        let mut x = i + 1;
        for _ in 0..n {
            let Some(key) = Member::at(&self.a, x) else {
                return false;
            };
            let found = self.find_key(key, base, m, last);
            let Some(child) = self.key_states(key, states, 0) else {
                return false;
            };
            let ignored = self.ignored(&child);
            match found {
                Some(p) => {
                    // A legacy key seen twice: duplicates are left to the tree.
                    if matched & (1 << p) != 0 {
                        return false;
                    }
                    matched |= 1 << p;
                    last = Some(p);
                    let value = self.members[base + p].value as usize;
                    if !ignored && !self.eq(x + 1, value, &child) {
                        return false;
                    }
                }
                None if ignored => {}
                None => return false,
            }
            x = skip(&self.a, x + 1);
        }
        let all = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
        let mut unmatched = all & !matched;
        while unmatched != 0 {
            let p = unmatched.trailing_zeros() as usize;
            unmatched &= unmatched - 1;
            let key = self.members[base + p];
            match self.key_states(key, states, 1) {
                Some(child) if self.ignored(&child) => {}
                _ => return false,
            }
        }
        true
    }

    /// Members with decoded keys, sorted by key; `None` on a duplicate key.
    fn sorted_members(
        tape: &Tape<'a>,
        object: usize,
        len: u32,
    ) -> Option<Vec<(Cow<'a, [u8]>, usize)>> {
        let mut members = Vec::with_capacity(len as usize);
        let mut at = object + 1;
        for _ in 0..len {
            members.push((string_bytes(tape, at)?, at));
            at = skip(tape, at + 1);
        }
        members.sort_unstable_by(|p, q| p.0.cmp(&q.0));
        if members.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        Some(members)
    }

    /// Large objects: sort both member lists by key, then merge.
    fn objects_sorted(&mut self, i: usize, n: u32, j: usize, m: u32, states: &[State]) -> bool {
        let (Some(xs), Some(ys)) = (
            Self::sorted_members(&self.a, i, n),
            Self::sorted_members(&self.b, j, m),
        ) else {
            return false;
        };
        let one_sided_ignored = |walk: &mut Self, key: &[u8]| {
            let Ok(key) = std::str::from_utf8(key) else {
                return false;
            };
            walk.ignored(&walk.child(states, Step::Key(key)))
        };
        let (mut p, mut q) = (0, 0);
        while p < xs.len() || q < ys.len() {
            let order = match (xs.get(p), ys.get(q)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Equal => {
                    let ((key, x), (_, y)) = (&xs[p], &ys[q]);
                    let Ok(key) = std::str::from_utf8(key) else {
                        return false;
                    };
                    let child = self.child(states, Step::Key(key));
                    if !self.ignored(&child) && !self.eq(x + 1, y + 1, &child) {
                        return false;
                    }
                    p += 1;
                    q += 1;
                }
                std::cmp::Ordering::Less => {
                    if !one_sided_ignored(self, &xs[p].0) {
                        return false;
                    }
                    p += 1;
                }
                std::cmp::Ordering::Greater => {
                    if !one_sided_ignored(self, &ys[q].0) {
                        return false;
                    }
                    q += 1;
                }
            }
        }
        true
    }

    /// Unordered arrays: every legacy element finds an equal candidate element by hash.
    /// Sound because, when `unordered_safe` and `element_states` hold, equality under the
    /// rules is an equivalence consistent with `diff`'s hash, so a perfect matching exists
    /// iff `diff`'s greedy matching leaves nothing over.
    fn unordered(&mut self, i: usize, n: u32, j: usize, m: u32, states: &[State]) -> bool {
        if !self.unordered_safe || n != m {
            return false;
        }
        let Some(child) = self.element_states(states) else {
            return false;
        };
        let xs = elements(&self.a, i, n);
        let ys = elements(&self.b, j, m);
        let mut heads: HashMap<u64, u32, IdentityHash> =
            HashMap::with_capacity_and_hasher(ys.len(), IdentityHash);
        let mut next = vec![NONE; ys.len()];
        for (p, &y) in ys.iter().enumerate().rev() {
            let Some(h) = self.hash(self.b, y, &child, 1) else {
                return false;
            };
            let head = heads.entry(h).or_insert(NONE);
            next[p] = *head;
            *head = p as u32;
        }
        for &x in &xs {
            let Some(h) = self.hash(self.a, x, &child, 0) else {
                return false;
            };
            let Some(head) = heads.get_mut(&h) else {
                return false;
            };
            let (mut prev, mut cur) = (NONE, *head);
            let mut probes = 0;
            loop {
                if cur == NONE || probes == MAX_PROBES {
                    return false;
                }
                let c = cur as usize;
                if self.eq(x, ys[c], &child) {
                    if prev == NONE {
                        *head = next[c];
                    } else {
                        next[prev as usize] = next[c];
                    }
                    break;
                }
                prev = cur;
                cur = next[c];
                probes += 1;
            }
        }
        true
    }

    /// The value of field `key` in the object at `index` (the last one, as serde_json
    /// keeps): `Ok(None)` when not an object or no such field, `Err` when the value is an
    /// object or array (left to the tree).
    fn key_value(
        &mut self,
        tape: Tape<'a>,
        index: usize,
        key: &str,
        buf: usize,
    ) -> Result<Option<usize>, ()> {
        let Some(Token::Object { len, .. }) = tape.token(index) else {
            return Ok(None);
        };
        let mut found = None;
        let mut at = index + 1;
        for _ in 0..len {
            let Some(Token::String {
                start,
                end,
                escaped,
            }) = tape.token(at)
            else {
                return Err(());
            };
            let name = tape
                .decode(start, end, escaped, &mut self.bufs[buf])
                .ok_or(())?;
            if name == key.as_bytes() {
                found = Some(at + 1);
            }
            at = skip(&tape, at + 1);
        }
        match found.map(|v| tape.token(v)) {
            None => Ok(None),
            Some(Some(Token::Object { .. } | Token::Array { .. }) | None) => Err(()),
            Some(Some(_)) => Ok(found),
        }
    }

    /// A hash of a scalar key value consistent with the tree's exact equality.
    fn key_hash(&mut self, tape: Tape<'a>, index: usize, buf: usize) -> Option<u64> {
        self.hash(tape, index, &[], buf)
    }

    /// Keyed arrays, matched exactly as `diff` does: each legacy element takes the
    /// lowest-index unmatched candidate element whose key is equal (exactly, numerically),
    /// then the pair must be equal; elements without the key pair up in order.
    fn keyed(&mut self, i: usize, n: u32, j: usize, m: u32, states: &[State], key: &str) -> bool {
        let Some(child) = self.element_states(states) else {
            return false;
        };
        let xs = elements(&self.a, i, n);
        let ys = elements(&self.b, j, m);
        let mut heads: HashMap<u64, u32, IdentityHash> =
            HashMap::with_capacity_and_hasher(ys.len(), IdentityHash);
        let mut next = vec![NONE; ys.len()];
        let mut keys = vec![0usize; ys.len()];
        let mut keyless_y = Vec::new();
        for (p, &y) in ys.iter().enumerate().rev() {
            match self.key_value(self.b, y, key, 1) {
                Ok(Some(k)) => {
                    let Some(h) = self.key_hash(self.b, k, 1) else {
                        return false;
                    };
                    keys[p] = k;
                    let head = heads.entry(h).or_insert(NONE);
                    next[p] = *head;
                    *head = p as u32;
                }
                Ok(None) => keyless_y.push(p),
                Err(()) => return false,
            }
        }
        keyless_y.reverse();
        let mut keyless_x = Vec::new();
        for &x in &xs {
            let k = match self.key_value(self.a, x, key, 0) {
                Ok(Some(k)) => k,
                Ok(None) => {
                    keyless_x.push(x);
                    continue;
                }
                Err(()) => return false,
            };
            let Some(h) = self.key_hash(self.a, k, 0) else {
                return false;
            };
            let Some(head) = heads.get_mut(&h) else {
                return false;
            };
            let (mut prev, mut cur) = (NONE, *head);
            let mut probes = 0;
            let found = loop {
                if cur == NONE || probes == MAX_PROBES {
                    return false;
                }
                let c = cur as usize;
                if self.key_values_eq(k, keys[c]) {
                    if prev == NONE {
                        *head = next[c];
                    } else {
                        next[prev as usize] = next[c];
                    }
                    break c;
                }
                prev = cur;
                cur = next[c];
                probes += 1;
            };
            if !self.eq(x, ys[found], &child) {
                return false;
            }
        }
        if keyless_x.len() != keyless_y.len() || xs.len() != ys.len() {
            return false;
        }
        keyless_x
            .iter()
            .zip(&keyless_y)
            .all(|(&x, &p)| self.eq(x, ys[p], &child))
    }

    /// Two scalar key values are equal as the tree's `exact_eq` has it (no tolerance).
    fn key_values_eq(&mut self, x: usize, y: usize) -> bool {
        let (Some(p), Some(q)) = (self.a.token(x), self.b.token(y)) else {
            return false;
        };
        self.scalars_eq(p, q, false)
    }

    /// A structural hash consistent with [`Walk::eq`] at zero tolerance: equal values hash
    /// alike (ignored members do not count; unordered and keyed arrays hash as multisets).
    /// Only guides the matching in `unordered`; every match is confirmed with `eq`.
    fn hash(&mut self, tape: Tape<'a>, index: usize, states: &[State], buf: usize) -> Option<u64> {
        Some(match tape.token(index)? {
            Token::Null => 0x6e75_6c6c,
            Token::True => tree::mix(0x626f_6f6c ^ 1),
            Token::False => tree::mix(0x626f_6f6c),
            Token::Number { start, end, kind } => tree::hash_num(tape.num(start, end, kind)?),
            Token::String {
                start,
                end,
                escaped,
            } => {
                let bytes = tape.decode(start, end, escaped, &mut self.bufs[buf])?;
                tree::combine(0x0073_7472, xxhash_rust::xxh3::xxh3_64(bytes))
            }
            Token::Array { len, .. } => {
                let matcher = self.matcher;
                let mode = if states.is_empty() {
                    &ArrayMode::Ordered
                } else {
                    matcher.array_mode(states)
                };
                let mut acc = tree::mix(0x0061_7272 ^ u64::from(len));
                let mut at = index + 1;
                if let ArrayMode::Ordered = mode {
                    for i in 0..len as usize {
                        let child = self.child(states, Step::Index(i));
                        let h = if self.ignored(&child) {
                            0x0001_9600
                        } else {
                            self.hash(tape, at, &child, buf)?
                        };
                        acc = tree::combine(acc, h);
                        at = skip(&tape, at);
                    }
                } else {
                    let child = self.element_states(states)?;
                    for _ in 0..len {
                        acc = acc.wrapping_add(tree::mix(self.hash(tape, at, &child, buf)?));
                        at = skip(&tape, at);
                    }
                }
                acc
            }
            Token::Object { len, .. } => {
                let mut acc: u64 = 0x006f_626a;
                let mut at = index + 1;
                for _ in 0..len {
                    let child = self.key_states(Member::at(&tape, at)?, states, buf)?;
                    if !self.ignored(&child) {
                        let Some(Token::String {
                            start,
                            end,
                            escaped,
                        }) = tape.token(at)
                        else {
                            return None;
                        };
                        let name = tape.decode(start, end, escaped, &mut self.bufs[buf])?;
                        let k = xxhash_rust::xxh3::xxh3_64(name);
                        let v = self.hash(tape, at + 1, &child, buf)?;
                        acc = acc.wrapping_add(tree::mix(tree::combine(k, v)));
                    }
                    at = skip(&tape, at + 1);
                }
                acc
            }
        })
    }
}

#[cfg(test)]
mod tests;
