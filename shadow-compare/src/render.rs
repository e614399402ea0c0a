//! Human-readable rendering of a [`DiffReport`], optionally with ANSI colours.
//!
//! One line per difference, prefixed by a sigil: `~` changed, `!` type changed, `-` missing
//! in the candidate, `+` extra in the candidate, `#` array length, `^` reordered. Legacy
//! values are red, candidate values green. Knows nothing about terminals: the caller
//! decides whether to colour.

use std::fmt::Write as _;

use serde_json::Value;

use crate::comparison::{BodyDiff, DiffReport};
use crate::diff::DiffKind;

/// Longest rendered value before it is cut with `…`.
const MAX_VALUE_CHARS: usize = 80;

struct Paint {
    colour: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn legacy(&self, text: &str) -> String {
        self.wrap("31", text)
    }
    fn candidate(&self, text: &str) -> String {
        self.wrap("32", text)
    }
    fn pointer(&self, text: &str) -> String {
        self.wrap("1;36", text)
    }
    fn dim(&self, text: &str) -> String {
        self.wrap("2", text)
    }
}

fn value(v: Option<&Value>) -> String {
    let text = v.map_or_else(|| "(none)".to_owned(), Value::to_string);
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "none",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// `number 1`, `string "1"`, `object {}`; just `null` for null.
fn typed(v: Option<&Value>) -> String {
    match v {
        Some(Value::Null) => "null".to_owned(),
        v => format!("{} {}", type_name(v), value(v)),
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(root)"
    } else {
        pointer
    }
}

/// Render a report as text. The last line is a summary: `equal` or `N difference(s)`.
pub fn render_text(report: &DiffReport, colour: bool) -> String {
    let p = Paint { colour };
    let mut out = String::new();
    let mut count = 0usize;
    if let Some(status) = &report.status {
        count += 1;
        let _ = writeln!(
            out,
            "~ {}: {} -> {}",
            p.pointer("status"),
            p.legacy(&status.legacy.to_string()),
            p.candidate(&status.candidate.to_string())
        );
    }
    for header in &report.headers {
        count += 1;
        let show = |v: &Option<String>| {
            v.as_ref()
                .map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
        };
        let _ = writeln!(
            out,
            "~ {}: {} -> {}",
            p.pointer(&format!("header {}", header.name)),
            p.legacy(&show(&header.legacy)),
            p.candidate(&show(&header.candidate))
        );
    }
    match &report.body {
        BodyDiff::Identical | BodyDiff::Ignored => {}
        BodyDiff::Bytes {
            legacy,
            candidate,
            note,
        } => {
            count += 1;
            let _ = writeln!(
                out,
                "~ {}: {} -> {}",
                p.pointer("body bytes"),
                p.legacy(&format!("{} bytes xxh3 {}", legacy.len, legacy.xxh3)),
                p.candidate(&format!("{} bytes xxh3 {}", candidate.len, candidate.xxh3))
            );
            if let Some(note) = note {
                let _ = writeln!(out, "  {}", p.dim(note));
            }
        }
        BodyDiff::Json {
            differences,
            truncated,
        } => {
            for d in differences {
                count += 1;
                let ptr = p.pointer(display_pointer(&d.pointer));
                let (l, c) = (d.legacy.as_ref(), d.candidate.as_ref());
                let _ = match d.kind {
                    DiffKind::Changed => writeln!(
                        out,
                        "~ {ptr}: {} -> {}",
                        p.legacy(&value(l)),
                        p.candidate(&value(c))
                    ),
                    DiffKind::TypeChanged => writeln!(
                        out,
                        "! {ptr}: {} -> {}",
                        p.legacy(&typed(l)),
                        p.candidate(&typed(c))
                    ),
                    DiffKind::Missing => writeln!(
                        out,
                        "- {ptr}: {} {}",
                        p.legacy(&value(l)),
                        p.dim("(missing in candidate)")
                    ),
                    DiffKind::Extra => writeln!(
                        out,
                        "+ {ptr}: {} {}",
                        p.candidate(&value(c)),
                        p.dim("(extra in candidate)")
                    ),
                    DiffKind::ArrayLength => writeln!(
                        out,
                        "# {ptr}: array length {} -> {}",
                        p.legacy(&value(l)),
                        p.candidate(&value(c))
                    ),
                    DiffKind::Reordered => {
                        writeln!(out, "^ {ptr}: {}", p.dim("same elements, different order"))
                    }
                };
            }
            if *truncated {
                let _ = writeln!(out, "{}", p.dim("… more differences not shown"));
            }
        }
    }
    if count == 0 {
        out.push_str("equal\n");
    } else {
        let plural = if count == 1 { "" } else { "s" };
        let truncated = matches!(
            report.body,
            BodyDiff::Json {
                truncated: true,
                ..
            }
        );
        let _ = writeln!(
            out,
            "{}{count} difference{plural}",
            if truncated { "at least " } else { "" }
        );
    }
    out
}
