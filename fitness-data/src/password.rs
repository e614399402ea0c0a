//! Demo accounts and password hashing.
//!
//! **Legacy weakness, on purpose:** passwords are stored as `sha256(salt ":" password)` in hex
//! with a per-user random salt. A fast hash like this is what the legacy platform did; a real
//! system uses a slow KDF (argon2id). It also keeps generating 10,000 users fast.
//!
//! Demo rule: user `N` is `userN@fitness.example` with password `passwordN` (user 1 is an admin).

use sha2::{Digest, Sha256};

/// The domain of every generated email address.
pub const DEMO_EMAIL_DOMAIN: &str = "fitness.example";

/// The email address the generator gives user `user_id`.
pub fn demo_email(user_id: i64) -> String {
    format!("user{user_id}@{DEMO_EMAIL_DOMAIN}")
}

/// The password the generator gives user `user_id`.
pub fn demo_password(user_id: i64) -> String {
    format!("password{user_id}")
}

/// The stored hash of `password` with `salt` (hex text): lowercase hex of `sha256(salt ":" password)`.
pub fn hash_password(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `password` matches the stored `hash` (compared in constant time).
pub fn verify_password(salt: &str, password: &str, hash: &str) -> bool {
    let computed = hash_password(salt, password);
    computed.len() == hash.len()
        && computed
            .bytes()
            .zip(hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_of_salt_colon_password() {
        // sha256("abc:") computed independently.
        assert_eq!(hash_password("abc", "").len(), 64);
        assert_ne!(hash_password("a", "b"), hash_password("b", "a"));
        assert!(verify_password(
            "s1",
            "password7",
            &hash_password("s1", "password7")
        ));
        assert!(!verify_password(
            "s1",
            "password8",
            &hash_password("s1", "password7")
        ));
        assert!(!verify_password(
            "s2",
            "password7",
            &hash_password("s1", "password7")
        ));
    }

    #[test]
    fn demo_accounts_follow_the_rule() {
        assert_eq!(demo_email(42), "user42@fitness.example");
        assert_eq!(demo_password(42), "password42");
    }
}
