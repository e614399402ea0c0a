//! The JWT pre-checks never panic on any token, never accept more than the size limit,
//! and never let an algorithm outside the allow-list (or `none`) through.
#![no_main]

use ficus::auth::jwt::{Rules, precheck};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let rules = Rules {
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        issuer: None,
        audiences: Vec::new(),
        leeway: 0,
        max_token_bytes: 4096,
        roles_claim: "roles".into(),
    };
    if let Ok(header) = precheck(token, &rules) {
        assert!(token.len() <= rules.max_token_bytes);
        assert!(rules.algorithms.contains(&header.alg));
        assert_eq!(token.split('.').count(), 3);
    }
});
