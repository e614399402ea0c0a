//! The structural JSON diff: walks two parsed documents under checked noise rules and
//! reports each difference with an RFC 6901 pointer and a [`DiffKind`].
//!
//! Owns array matching (ordered, unordered, keyed), number equality and the difference
//! limit. Never allocates pointer strings on the equal path: the walk keeps a stack of
//! borrowed steps and renders a pointer only when it reports. Every array mode is
//! O(n) expected time (hash maps), O(n log n) worst case for the reorder check (a sort).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pointer::{self, Step};
use crate::rules::{ArrayMode, Matcher, NoiseRules, NumberTolerance, State};
use crate::tree::{self, Node, Num};

/// What kind of difference was found at a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Same JSON type, different value.
    Changed,
    /// Different JSON types (e.g. number vs string, null vs object).
    TypeChanged,
    /// Present in legacy, absent in the candidate.
    Missing,
    /// Absent in legacy, present in the candidate.
    Extra,
    /// An ordered array has a different length; `legacy`/`candidate` hold the lengths.
    ArrayLength,
    /// An ordered array holds the same elements (as a multiset) in a different order.
    Reordered,
}

impl DiffKind {
    /// The snake_case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Changed => "changed",
            DiffKind::TypeChanged => "type_changed",
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::ArrayLength => "array_length",
            DiffKind::Reordered => "reordered",
        }
    }
}

/// One difference between the legacy and the candidate body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// RFC 6901 pointer into the legacy document (into the candidate for `extra`).
    pub pointer: String,
    /// What differs.
    pub kind: DiffKind,
    /// The legacy value (absent for `extra` and `reordered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Value>,
    /// The candidate value (absent for `missing` and `reordered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Value>,
}

impl Difference {
    /// The pointer with array indices collapsed to `*`, for metric labels.
    pub fn metric_pointer(&self) -> String {
        pointer::collapse_indices(&self.pointer)
    }
}

/// Diff two parsed documents. Returns the differences (at most `limit`) and whether more
/// were left out.
pub(crate) fn diff_nodes<'a>(
    legacy: &'a Node<'a>,
    candidate: &'a Node<'a>,
    rules: &NoiseRules,
    limit: usize,
) -> (Vec<Difference>, bool) {
    let matcher = rules.matcher();
    let mut walker = Walker {
        matcher,
        numbers: rules.numbers(),
        path: Vec::new(),
        out: Vec::new(),
        limit,
        truncated: false,
    };
    let root = matcher.root();
    if !matcher.ignored(&root) {
        walker.diff(legacy, candidate, &root);
    }
    (walker.out, walker.truncated)
}

struct Walker<'r, 'a> {
    matcher: &'r Matcher,
    numbers: NumberTolerance,
    path: Vec<Step<'a>>,
    out: Vec<Difference>,
    limit: usize,
    truncated: bool,
}

impl<'a> Walker<'_, 'a> {
    fn child(&self, states: &[State], step: Step<'_>) -> Vec<State> {
        if states.is_empty() {
            Vec::new()
        } else {
            self.matcher.step(states, step)
        }
    }

    fn report(&mut self, kind: DiffKind, legacy: Option<Value>, candidate: Option<Value>) {
        if self.out.len() >= self.limit {
            self.truncated = true;
            return;
        }
        self.out.push(Difference {
            pointer: pointer::render(&self.path),
            kind,
            legacy,
            candidate,
        });
    }

    /// Report a one-sided element at `step`, unless the rules ignore it.
    fn one_sided(&mut self, states: &[State], step: Step<'a>, kind: DiffKind, node: &Node<'_>) {
        let child = self.child(states, step);
        if self.matcher.ignored(&child) {
            return;
        }
        self.path.push(step);
        let value = Some(node.to_value());
        match kind {
            DiffKind::Extra => self.report(kind, None, value),
            _ => self.report(kind, value, None),
        }
        self.path.pop();
    }

    fn numbers_equal(&self, a: Num, b: Num) -> bool {
        a.exact_eq(b) || (!self.numbers.is_exact() && self.numbers.close(a.as_f64(), b.as_f64()))
    }

    /// Diff two nodes at the current path; `states` are the rule states of this path, which
    /// the caller has already checked are not ignored.
    fn diff(&mut self, a: &'a Node<'a>, b: &'a Node<'a>, states: &[State]) {
        if self.truncated {
            return;
        }
        match (a, b) {
            (Node::Null, Node::Null) => {}
            (Node::Bool(x), Node::Bool(y)) if x == y => {}
            (Node::Number(x), Node::Number(y)) if self.numbers_equal(*x, *y) => {}
            (Node::String(x), Node::String(y)) if x == y => {}
            (Node::Array(x), Node::Array(y)) => self.arrays(x, y, states),
            (Node::Object(x), Node::Object(y)) => self.objects(x, y, states),
            (Node::Bool(_), Node::Bool(_))
            | (Node::Number(_), Node::Number(_))
            | (Node::String(_), Node::String(_)) => {
                self.report(DiffKind::Changed, Some(a.to_value()), Some(b.to_value()));
            }
            _ => self.report(
                DiffKind::TypeChanged,
                Some(a.to_value()),
                Some(b.to_value()),
            ),
        }
    }

    /// Diff a child pair reached by `step`, applying ignore rules.
    fn diff_child(&mut self, a: &'a Node<'a>, b: &'a Node<'a>, states: &[State], step: Step<'a>) {
        let child = self.child(states, step);
        if !child.is_empty() && self.matcher.ignored(&child) {
            return;
        }
        self.path.push(step);
        self.diff(a, b, &child);
        self.path.pop();
    }

    fn objects(
        &mut self,
        x: &'a [(std::borrow::Cow<'a, str>, Node<'a>)],
        y: &'a [(std::borrow::Cow<'a, str>, Node<'a>)],
        states: &[State],
    ) {
        // Both sides are sorted by key: a linear merge.
        let (mut i, mut j) = (0, 0);
        while i < x.len() && j < y.len() {
            if self.truncated {
                return;
            }
            let (kx, vx) = &x[i];
            let (ky, vy) = &y[j];
            match kx.as_ref().cmp(ky.as_ref()) {
                std::cmp::Ordering::Equal => {
                    self.diff_child(vx, vy, states, Step::Key(kx));
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    self.one_sided(states, Step::Key(kx), DiffKind::Missing, vx);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    self.one_sided(states, Step::Key(ky), DiffKind::Extra, vy);
                    j += 1;
                }
            }
        }
        for (k, v) in &x[i..] {
            self.one_sided(states, Step::Key(k), DiffKind::Missing, v);
        }
        for (k, v) in &y[j..] {
            self.one_sided(states, Step::Key(k), DiffKind::Extra, v);
        }
    }

    fn arrays(&mut self, x: &'a [Node<'a>], y: &'a [Node<'a>], states: &[State]) {
        let mode = if states.is_empty() {
            &ArrayMode::Ordered
        } else {
            self.matcher.array_mode(states)
        };
        match mode {
            ArrayMode::Ordered => self.ordered(x, y, states),
            ArrayMode::Unordered => self.unordered(x, y, states),
            ArrayMode::Keyed(key) => self.keyed(x, y, states, key),
        }
    }

    fn ordered(&mut self, x: &'a [Node<'a>], y: &'a [Node<'a>], states: &[State]) {
        let mark = self.out.len();
        let truncated_before = self.truncated;
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            if self.truncated {
                break;
            }
            self.diff_child(a, b, states, Step::Index(i));
        }
        if x.len() != y.len() {
            self.report(
                DiffKind::ArrayLength,
                Some(x.len().into()),
                Some(y.len().into()),
            );
            return;
        }
        let changed = self.out.len() > mark || self.truncated != truncated_before;
        if changed && x.len() > 1 && self.same_multiset(x, y, states) {
            self.out.truncate(mark);
            self.truncated = truncated_before;
            self.report(DiffKind::Reordered, None, None);
        }
    }

    fn same_multiset(&self, x: &[Node<'_>], y: &[Node<'_>], states: &[State]) -> bool {
        let mut hx = self.element_hashes(x, states);
        let mut hy = self.element_hashes(y, states);
        hx.sort_unstable();
        hy.sort_unstable();
        hx == hy
    }

    fn element_hashes(&self, items: &[Node<'_>], states: &[State]) -> Vec<u64> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let child = self.child(states, Step::Index(i));
                self.hash(item, &child)
            })
            .collect()
    }

    /// Whether two elements are equal under the rules, without reporting.
    fn equal_under_rules(&mut self, a: &'a Node<'a>, b: &'a Node<'a>, states: &[State]) -> bool {
        let mark = self.out.len();
        let (limit, truncated) = (self.limit, self.truncated);
        self.limit = usize::MAX;
        self.truncated = false;
        self.diff(a, b, states);
        let equal = self.out.len() == mark;
        self.out.truncate(mark);
        self.limit = limit;
        self.truncated = truncated;
        equal
    }

    fn unordered(&mut self, x: &'a [Node<'a>], y: &'a [Node<'a>], states: &[State]) {
        let hx = self.element_hashes(x, states);
        let hy = self.element_hashes(y, states);
        // Candidate indices by hash, lowest index popped first.
        let mut buckets: HashMap<u64, Vec<usize>, IdentityHash> =
            HashMap::with_capacity_and_hasher(y.len(), IdentityHash);
        for (j, h) in hy.iter().enumerate().rev() {
            buckets.entry(*h).or_default().push(j);
        }
        let mut unmatched_x = Vec::new();
        let mut matched_y = vec![false; y.len()];
        for (i, a) in x.iter().enumerate() {
            let child = self.child(states, Step::Index(i));
            let found = match buckets.get_mut(&hx[i]) {
                Some(bucket) => {
                    let position = bucket
                        .iter()
                        .rposition(|&j| self.equal_under_rules(a, &y[j], &child));
                    position.map(|p| bucket.remove(p))
                }
                None => None,
            };
            match found {
                Some(j) => matched_y[j] = true,
                None => unmatched_x.push(i),
            }
        }
        let unmatched_y: Vec<usize> = (0..y.len()).filter(|&j| !matched_y[j]).collect();
        // Left-overs (changed elements, or equal only within tolerance) pair up in order.
        for (&i, &j) in unmatched_x.iter().zip(&unmatched_y) {
            if self.truncated {
                return;
            }
            self.diff_child(&x[i], &y[j], states, Step::Index(i));
        }
        for &i in unmatched_x.iter().skip(unmatched_y.len()) {
            self.one_sided(states, Step::Index(i), DiffKind::Missing, &x[i]);
        }
        for &j in unmatched_y.iter().skip(unmatched_x.len()) {
            self.one_sided(states, Step::Index(j), DiffKind::Extra, &y[j]);
        }
    }

    fn keyed(&mut self, x: &'a [Node<'a>], y: &'a [Node<'a>], states: &[State], key: &str) {
        let mut buckets: HashMap<u64, Vec<usize>, IdentityHash> =
            HashMap::with_capacity_and_hasher(y.len(), IdentityHash);
        let mut keyless_y = Vec::new();
        for (j, item) in y.iter().enumerate().rev() {
            match item.get(key) {
                Some(k) => buckets.entry(self.hash(k, &[])).or_default().push(j),
                None => keyless_y.push(j),
            }
        }
        keyless_y.reverse();
        let mut matched_y = vec![false; y.len()];
        let mut keyless_x = Vec::new();
        let mut missing = Vec::new();
        for (i, a) in x.iter().enumerate() {
            let Some(ka) = a.get(key) else {
                keyless_x.push(i);
                continue;
            };
            let found = buckets.get_mut(&self.hash(ka, &[])).and_then(|bucket| {
                let position = bucket
                    .iter()
                    .rposition(|&j| y[j].get(key).is_some_and(|kb| tree::exact_eq(ka, kb)));
                position.map(|p| bucket.remove(p))
            });
            match found {
                Some(j) => {
                    matched_y[j] = true;
                    if self.truncated {
                        return;
                    }
                    self.diff_child(a, &y[j], states, Step::Index(i));
                }
                None => missing.push(i),
            }
        }
        // Elements without the key field pair up in order.
        for (&i, &j) in keyless_x.iter().zip(&keyless_y) {
            matched_y[j] = true;
            self.diff_child(&x[i], &y[j], states, Step::Index(i));
        }
        missing.extend(keyless_x.iter().skip(keyless_y.len()));
        missing.sort_unstable();
        for i in missing {
            self.one_sided(states, Step::Index(i), DiffKind::Missing, &x[i]);
        }
        for (j, matched) in matched_y.iter().enumerate() {
            if !matched {
                self.one_sided(states, Step::Index(j), DiffKind::Extra, &y[j]);
            }
        }
    }

    /// Structural hash consistent with equality under the rules (tolerance aside): ignored
    /// members do not contribute, unordered and keyed arrays hash order-independently.
    fn hash(&self, node: &Node<'_>, states: &[State]) -> u64 {
        match node {
            Node::Null => 0x6e75_6c6c,
            Node::Bool(b) => tree::mix(0x626f_6f6c ^ u64::from(*b)),
            Node::Number(n) => tree::hash_num(*n),
            Node::String(s) => tree::combine(0x0073_7472, tree::hash_str(s)),
            Node::Array(items) => {
                let mode = if states.is_empty() {
                    &ArrayMode::Ordered
                } else {
                    self.matcher.array_mode(states)
                };
                let ordered = matches!(mode, ArrayMode::Ordered);
                let mut acc = tree::mix(0x0061_7272 ^ items.len() as u64);
                for (i, item) in items.iter().enumerate() {
                    let child = self.child(states, Step::Index(i));
                    let h = if !child.is_empty() && self.matcher.ignored(&child) {
                        0x0001_9600
                    } else {
                        self.hash(item, &child)
                    };
                    acc = if ordered {
                        tree::combine(acc, h)
                    } else {
                        acc.wrapping_add(tree::mix(h))
                    };
                }
                acc
            }
            Node::Object(members) => {
                let mut acc = 0x006f_626a;
                for (k, v) in members {
                    let child = self.child(states, Step::Key(k));
                    if !child.is_empty() && self.matcher.ignored(&child) {
                        continue;
                    }
                    acc =
                        tree::combine(tree::combine(acc, tree::hash_str(k)), self.hash(v, &child));
                }
                acc
            }
        }
    }
}

/// The keys are already well-mixed 64-bit hashes; hashing them again is wasted work.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdentityHash;

impl std::hash::BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

pub(crate) struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = tree::combine(self.0, u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
