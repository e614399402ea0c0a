//! The path normaliser never panics, and what it accepts is canonical: absolute, no empty,
//! `.` or `..` segment, no `\` or `;`, and a fixed point of itself.
#![no_main]

use ficus::auth::path::normalise;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(out) = normalise(path) else {
        return;
    };
    if out == "*" {
        return;
    }
    assert!(out.starts_with('/'), "{path:?} -> {out:?}");
    assert!(!out.contains('\\') && !out.contains(';'), "{path:?} -> {out:?}");
    let inner = out.trim_end_matches('/');
    for seg in inner.split('/').skip(1) {
        assert!(
            !seg.is_empty() && seg != "." && seg != "..",
            "{path:?} -> {out:?}"
        );
    }
    let again = normalise(&out).expect("canonical output is accepted");
    assert_eq!(again, out, "not a fixed point: {path:?}");
});
