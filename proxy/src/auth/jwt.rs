//! JWT verification: cheap pre-checks on the raw token, then jsonwebtoken for the
//! signature and the registered claims.
//!
//! Before anything is decoded: the size limit, the three-part shape, the base64url
//! alphabet. Then the header alone: `alg` must be in the configured allow-list (never
//! chosen by the token; `none` is always refused), `crit` is refused (Ficus understands no
//! extension), and `kid` selects the key. The key's family must match the algorithm's.
//! jsonwebtoken then checks the signature, `exp`, `nbf`, `iss`, `aud` with the leeway.
//!
//! Keys come from PEM files, an HS256 secret in the environment, a JWKS file, or a JWKS
//! URL whose document is cached per process (see [`super::jwks`]).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub roles: Vec<String>,
}

/// Why a token was refused. Messages are fixed strings: nothing from the token is echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("unsigned token (alg none)")]
    AlgNone,
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("unsupported critical header")]
    CriticalHeader,
    #[error("no key for this token")]
    UnknownKey,
    #[error("signing keys unavailable")]
    KeysUnavailable,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing required claim")]
    MissingClaim,
    #[error("invalid subject")]
    InvalidSubject,
}

impl TokenError {
    /// Short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::AlgNone => "alg_none",
            TokenError::AlgorithmNotAllowed => "alg_not_allowed",
            TokenError::CriticalHeader => "crit",
            TokenError::UnknownKey => "unknown_key",
            TokenError::KeysUnavailable => "keys_unavailable",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::MissingClaim => "missing_claim",
            TokenError::InvalidSubject => "invalid_subject",
        }
    }
}

/// One verification key.
pub struct Key {
    pub kid: Option<String>,
    /// `alg` named by a JWK, if any: the key is then used for that algorithm only.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl Key {
    fn family(&self) -> AlgorithmFamily {
        self.key.family()
    }
}

/// The keys a verifier may use.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// Keys from a JWKS document. Keys of unsupported types are skipped; a document with
    /// no usable key is an error.
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push(Key {
                    kid,
                    alg: jwk
                        .common
                        .key_algorithm
                        .and_then(|a| a.to_string().parse::<Algorithm>().ok()),
                    key,
                }),
                Err(e) => skipped.push(format!("{}: {e}", kid.as_deref().unwrap_or("(no kid)"))),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "JWKS has no usable key{}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (skipped {})", skipped.join(", "))
                }
            ));
        }
        Ok(KeySet { keys })
    }

    /// The key from a PEM file: RSA or EC public key (or certificate-less SPKI).
    pub fn pem(text: &[u8]) -> Result<Key, String> {
        let key = DecodingKey::from_rsa_pem(text)
            .or_else(|_| DecodingKey::from_ec_pem(text))
            .map_err(|e| format!("not an RSA or EC public key in PEM: {e}"))?;
        Ok(Key {
            kid: None,
            alg: None,
            key,
        })
    }

    fn candidates<'a>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.family() == alg.family()
                && k.alg.is_none_or(|a| a == alg)
                && match (kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    (Some(_), None) => true,
                    (None, _) => true,
                }
        })
    }

    /// Whether some key is named `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The checked `[auth]` claims policy.
pub struct Rules {
    pub algorithms: Vec<Algorithm>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub leeway: u64,
    pub max_token_bytes: usize,
    pub roles_claim: String,
}

/// The parts of a token header Ficus acts on.
#[derive(Debug)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

fn is_b64url(s: &[u8]) -> bool {
    s.iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Shape, size and header checks; nothing here trusts the token.
pub fn precheck(token: &str, rules: &Rules) -> Result<Header, TokenError> {
    if token.len() > rules.max_token_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if h.is_empty() || p.is_empty() {
        return Err(TokenError::Malformed);
    }
    for part in [h, p, s] {
        if !is_b64url(part.as_bytes()) {
            return Err(TokenError::Malformed);
        }
    }
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| TokenError::Malformed)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(TokenError::Malformed),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    if s.is_empty() {
        return Err(TokenError::Malformed);
    }
    let alg = alg
        .parse::<Algorithm>()
        .ok()
        .filter(|a| rules.algorithms.contains(a))
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: a recipient must refuse a token whose critical extensions it
        // does not understand. Ficus understands none.
        return Err(TokenError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok(Header { alg, kid })
}

/// Verifies `token` against `keys`. Call [`precheck`] first.
pub fn verify(
    token: &str,
    header: &Header,
    keys: &KeySet,
    rules: &Rules,
) -> Result<Identity, TokenError> {
    let mut validation = Validation::new(header.alg);
    validation.leeway = rules.leeway;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = &rules.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    if rules.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&rules.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);

    let mut tried = false;
    let mut last = TokenError::UnknownKey;
    for key in keys.candidates(header.alg, header.kid.as_deref()) {
        tried = true;
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
            Ok(data) => return identity(data.claims, rules),
            Err(e) => {
                last = map_error(&e);
                if last != TokenError::BadSignature {
                    // Claims were read, so the signature held: the verdict is final.
                    return Err(last);
                }
            }
        }
    }
    Err(if tried { last } else { TokenError::UnknownKey })
}

fn map_error(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::BadSignature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidIssuer => TokenError::WrongIssuer,
        K::InvalidAudience => TokenError::WrongAudience,
        K::MissingRequiredClaim(_) => TokenError::MissingClaim,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
        K::InvalidSubject => TokenError::InvalidSubject,
        // Key/algorithm mismatch, bad base64 or JSON in the payload, and the rest.
        _ => TokenError::Malformed,
    }
}

/// Subjects become header values and are compared with path parameters: visible ASCII,
/// no comma, at most 256 bytes.
fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

fn valid_role(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn identity(claims: Map<String, Value>, rules: &Rules) -> Result<Identity, TokenError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(TokenError::InvalidSubject),
    };
    if !valid_subject(&subject) {
        return Err(TokenError::InvalidSubject);
    }
    // Roles that are not plain tokens are dropped, never half-trusted.
    let roles = match claims.get(&rules.roles_claim) {
        Some(Value::String(r)) => r
            .split(' ')
            .filter(|r| valid_role(r))
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| valid_role(r))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Identity { subject, roles })
}

/// Keys ready for use, shared by requests.
pub type SharedKeys = Arc<KeySet>;

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header as JwtHeader, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret";

    fn rules() -> Rules {
        Rules {
            algorithms: vec![Algorithm::HS256],
            issuer: Some("https://auth.example".into()),
            audiences: vec!["api".into()],
            leeway: 0,
            max_token_bytes: 4096,
            roles_claim: "roles".into(),
        }
    }

    fn keys() -> KeySet {
        KeySet {
            keys: vec![Key {
                kid: None,
                alg: None,
                key: DecodingKey::from_secret(SECRET).expect("key"),
            }],
        }
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn mint(claims: Value) -> String {
        encode(
            &JwtHeader::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET).expect("key"),
        )
        .expect("encode")
    }

    fn check(token: &str) -> Result<Identity, TokenError> {
        let r = rules();
        let h = precheck(token, &r)?;
        verify(token, &h, &keys(), &r)
    }

    fn good() -> Value {
        json!({"sub": "7", "iss": "https://auth.example", "aud": "api", "exp": now() + 60, "roles": ["member"]})
    }

    #[test]
    fn a_good_token_yields_the_identity() {
        assert_eq!(
            check(&mint(good())),
            Ok(Identity {
                subject: "7".into(),
                roles: vec!["member".into()]
            })
        );
    }

    #[test]
    fn claims_are_checked() {
        let mut c = good();
        c["exp"] = json!(now() - 60);
        assert_eq!(check(&mint(c)), Err(TokenError::Expired));
        let mut c = good();
        c["nbf"] = json!(now() + 600);
        assert_eq!(check(&mint(c)), Err(TokenError::NotYetValid));
        let mut c = good();
        c["iss"] = json!("https://evil.example");
        assert_eq!(check(&mint(c)), Err(TokenError::WrongIssuer));
        let mut c = good();
        c["aud"] = json!("other");
        assert_eq!(check(&mint(c)), Err(TokenError::WrongAudience));
        let mut c = good();
        c.as_object_mut().map(|o| o.remove("exp"));
        assert_eq!(check(&mint(c)), Err(TokenError::MissingClaim));
        let mut c = good();
        c["sub"] = json!("a,b");
        assert_eq!(check(&mint(c)), Err(TokenError::InvalidSubject));
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let token = mint(good());
        let other = encode(
            &JwtHeader::new(Algorithm::HS256),
            &good(),
            &EncodingKey::from_secret(b"another-secret-another-secret").expect("key"),
        )
        .expect("encode");
        assert_eq!(check(&other), Err(TokenError::BadSignature));
        assert_eq!(check("a.b"), Err(TokenError::Malformed));
        assert_eq!(check("a.b.c.d"), Err(TokenError::Malformed));
        assert_eq!(check(&format!("{token}=")), Err(TokenError::Malformed));
        assert_eq!(check(&"a".repeat(5000)), Err(TokenError::TooLarge));
        let (_, rest) = token.split_once('.').expect("dot");
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let (payload, _) = rest.split_once('.').expect("dot");
        assert_eq!(
            check(&format!("{none}.{payload}.")),
            Err(TokenError::AlgNone)
        );
        let none_upper = URL_SAFE_NO_PAD.encode(br#"{"alg":"NONE"}"#);
        assert_eq!(
            check(&format!("{none_upper}.{payload}.sig")),
            Err(TokenError::AlgNone)
        );
        let rs = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        assert_eq!(
            check(&format!("{rs}.{rest}")),
            Err(TokenError::AlgorithmNotAllowed)
        );
        let crit = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","crit":["exp"],"exp":1}"#);
        assert_eq!(
            check(&format!("{crit}.{rest}")),
            Err(TokenError::CriticalHeader)
        );
    }

    #[test]
    fn roles_from_a_string_or_an_array_and_bad_roles_dropped() {
        let mut c = good();
        c["roles"] = json!("member admin");
        assert_eq!(
            check(&mint(c)).map(|i| i.roles),
            Ok(vec!["member".into(), "admin".into()])
        );
        let mut c = good();
        c["roles"] = json!(["admin\r\nx", "staff", 3]);
        assert_eq!(check(&mint(c)).map(|i| i.roles), Ok(vec!["staff".into()]));
    }
}
