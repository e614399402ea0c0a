//! Who is calling: the session cookie or a `Bearer` JWT (HS256), and the deliberately weak
//! "any credentials" check. The legacy does no CSRF check and no ownership check: handlers
//! trust the user id of the path (see `docs/legacy.md`).

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use fitness_data::models::Role;
use fitness_data::queries;
use fitness_data::time::now_unix;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::{AppState, JWT_TTL_SECS};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "legacy_session";
/// Name of the cookie that carries the login JWT (for the web app).
pub const TOKEN_COOKIE: &str = "fitness_token";

/// Claims of the JWTs the legacy issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    pub email: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Signs a JWT for this user, valid [`JWT_TTL_SECS`] from `now`.
pub fn issue_jwt(
    secret: &str,
    user_id: i64,
    email: &str,
    role: Role,
    now: i64,
) -> Result<String, ApiError> {
    let claims = Claims {
        sub: user_id.to_string(),
        email: email.to_owned(),
        role,
        iat: now,
        exp: now + JWT_TTL_SECS,
    };
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| ApiError::Internal(format!("invalid jwt secret: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| ApiError::Internal(format!("cannot sign jwt: {e}")))
}

/// Checks signature and expiry of a JWT.
pub fn verify_jwt(secret: &str, token: &str) -> Result<Claims, ApiError> {
    let validation = Validation::new(Algorithm::HS256);
    let key = DecodingKey::from_secret(secret.as_bytes())
        .map_err(|e| ApiError::Internal(format!("invalid jwt secret: {e}")))?;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| ApiError::Unauthorized(format!("invalid bearer token: {e}")))
}

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `name`, if the request has one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The token of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Cookie,
    Bearer,
}

/// An authenticated caller: a live session cookie or a valid JWT. The cookie wins when both
/// are present. No CSRF check, no ownership check (on purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: i64,
    pub method: AuthMethod,
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = session_cookie(&parts.headers) {
            let user = state
                .db(move |c| Ok(queries::session_user(c, &token, now_unix())?))
                .await?;
            if let Some(user_id) = user {
                return Ok(Self {
                    user_id,
                    method: AuthMethod::Cookie,
                });
            }
            if bearer(&parts.headers).is_none() {
                return Err(ApiError::Unauthorized(
                    "session cookie is unknown or expired; log in again".into(),
                ));
            }
        }
        if let (Some(token), None) = (cookie(&parts.headers, TOKEN_COOKIE), bearer(&parts.headers))
        {
            let claims = verify_jwt(&state.config.jwt_secret, &token)?;
            let user_id = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized(format!(
                    "invalid token cookie: subject {:?} is not a user id",
                    claims.sub
                ))
            })?;
            return Ok(Self {
                user_id,
                method: AuthMethod::Cookie,
            });
        }
        if let Some(token) = bearer(&parts.headers) {
            let claims = verify_jwt(&state.config.jwt_secret, token)?;
            let user_id = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized(format!(
                    "invalid bearer token: subject {:?} is not a user id",
                    claims.sub
                ))
            })?;
            return Ok(Self {
                user_id,
                method: AuthMethod::Bearer,
            });
        }
        Err(ApiError::Unauthorized(format!(
            "authentication required: send the {SESSION_COOKIE} cookie or an Authorization: Bearer token"
        )))
    }
}

/// **Hole, on purpose:** "some credentials" — any `Authorization` header or any session
/// cookie, never checked. Used by the read endpoints listed in `docs/legacy.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyCredentials;

impl<S: Send + Sync> FromRequestParts<S> for AnyCredentials {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if parts.headers.contains_key(AUTHORIZATION) || session_cookie(&parts.headers).is_some() {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized(
                "authentication required: send an Authorization header or a session cookie".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn jwt_round_trip_and_wrong_secret() {
        let now = now_unix();
        let t = issue_jwt("s3cret", 7, "user7@fitness.example", Role::Member, now).unwrap();
        let c = verify_jwt("s3cret", &t).unwrap();
        assert_eq!((c.sub.as_str(), c.exp - c.iat), ("7", JWT_TTL_SECS));
        assert!(verify_jwt("other", &t).is_err());
        let expired = issue_jwt("s3cret", 7, "e", Role::Member, now - 2 * JWT_TTL_SECS).unwrap();
        assert!(verify_jwt("s3cret", &expired).is_err());
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; legacy_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(bearer(&h), Some("xyz"));
        let mut none = HeaderMap::new();
        none.insert(COOKIE, HeaderValue::from_static("legacy_session="));
        assert_eq!(session_cookie(&none), None);
    }
}
