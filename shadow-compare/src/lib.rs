//! Compare a legacy and a candidate HTTP response, field by field, under noise rules.
//!
//! This crate is the "Comparison" half of Ficus's shadow mode and has no dependency on the
//! proxy. The proxy builds one [`Comparator`] per route from the route's checked
//! [`NoiseRules`] (themselves built from [`NoiseRulesFile`], the serde mirror of the
//! `routes.toml` keys) and calls [`Comparator::compare`] for each mirrored request.
//!
//! ```
//! use shadow_compare::{Comparator, DiffKind, NoiseRules, NoiseRulesFile};
//!
//! let file = NoiseRulesFile {
//!     ignore: vec!["/generated_at".into()],
//!     ..NoiseRulesFile::default()
//! };
//! let comparator = Comparator::new(NoiseRules::try_from(file).expect("valid rules"));
//! let report = comparator
//!     .compare_json(br#"{"n": 1, "generated_at": 5}"#, br#"{"generated_at": 6, "n": 2}"#)
//!     .expect("both parse");
//! assert_eq!(report.differences()[0].pointer, "/n");
//! assert_eq!(report.differences()[0].kind, DiffKind::Changed);
//! ```
//!
//! Modules: `pointer` (RFC 6901 syntax), `rules` (raw and checked noise rules), `tree`
//! (borrowed JSON parse), `diff` (the structural walk), `tape` (one-pass tokenizer) and
//! `fast` (the equal-only walk over two tapes), `comparison` (whole responses), `learn`
//! (learned noise), `render` (text output).
//!
//! A JSON comparison first tries `fast`, which can only answer "equal"; anything else
//! (a difference, invalid JSON, a case it does not decide) goes to `tree` + `diff`, which
//! produce every reported difference and every error.

mod comparison;
mod diff;
mod fast;
mod learn;
pub mod pointer;
mod render;
mod rules;
mod tape;
mod tree;

pub use comparison::{
    BodyDiff, BodyDigest, Comparator, CompareError, DEFAULT_MAX_DIFFERENCES, DiffReport,
    HeaderDiff, Response, Side, StatusDiff, is_json_content_type,
};
pub use diff::{DiffKind, Difference};
pub use learn::{LearnedNoise, nondeterministic_fields};
pub use pointer::{PointerError, collapse_indices};
pub use render::render_text;
pub use rules::{
    ArrayMode, ArrayModeFile, NoiseRules, NoiseRulesFile, NumberTolerance, NumbersFile, RuleError,
    RuleErrors,
};
