//! Request ids: kept from the client's `X-Request-Id` when well-formed, generated otherwise.
//!
//! Generated ids are 32 lowercase hex digits: a random per-thread prefix and a per-thread
//! counter, so generating one costs no lock, no syscall and one small allocation.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::HeaderValue;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

thread_local! {
    static STATE: Cell<(u64, u64)> = Cell::new((random_u64(), 0));
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS per process and varies per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

/// A client-supplied id is kept if it is 1..=128 visible ASCII characters.
pub fn is_acceptable(value: &HeaderValue) -> bool {
    let b = value.as_bytes();
    !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| c.is_ascii_graphic())
}

pub fn generate() -> HeaderValue {
    let (prefix, n) = STATE.with(|s| {
        let (prefix, n) = s.get();
        s.set((prefix, n.wrapping_add(1)));
        (prefix, n)
    });
    let mut buf = [0u8; 32];
    hex(prefix, &mut buf[..16]);
    hex(n, &mut buf[16..]);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn hex(mut v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_well_formed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(is_acceptable(&a));
    }

    #[test]
    fn client_ids_are_vetted() {
        assert!(is_acceptable(&HeaderValue::from_static("abc-123")));
        assert!(!is_acceptable(&HeaderValue::from_static("")));
        assert!(!is_acceptable(&HeaderValue::from_static("has space")));
        assert!(!is_acceptable(
            &HeaderValue::from_str(&"x".repeat(129)).unwrap_or(HeaderValue::from_static(""))
        ));
    }
}
