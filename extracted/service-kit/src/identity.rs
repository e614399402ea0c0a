//! Who is calling, as the proxy says: `X-Ficus-Subject` (the user id it authenticated) and
//! `X-Ficus-Roles` (comma separated). Services never parse client tokens; the proxy strips
//! these headers from client requests and sets them itself.
//!
//! The rule every service applies to `/api/users/{id}/...` ([`Identity::authorize_owner`]):
//! no subject -> 401; subject equal to `{id}` or role `admin`/`support` -> allowed; otherwise
//! 403. Public endpoints (`GET /api/content/top`) need no identity.

use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The header carrying the authenticated subject (a user id).
pub const SUBJECT_HEADER: &str = "x-ficus-subject";
/// The header carrying the subject's roles, comma separated.
pub const ROLES_HEADER: &str = "x-ficus-roles";
/// Roles that may act on any user's resources.
pub const PRIVILEGED_ROLES: &[&str] = &["admin", "support"];

/// An authenticated caller, from the proxy's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub roles: Vec<String>,
}

impl Identity {
    /// Reads the identity headers; `Ok(None)` when there is no subject.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(raw) = headers.get(SUBJECT_HEADER) else {
            return Ok(None);
        };
        let subject = raw
            .to_str()
            .map_err(|_| {
                ApiError::Unauthenticated(format!("invalid {SUBJECT_HEADER} header: not ASCII"))
            })?
            .trim()
            .to_owned();
        if subject.is_empty() {
            return Ok(None);
        }
        let roles = headers
            .get_all(ROLES_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        Ok(Some(Self { subject, roles }))
    }

    /// Whether the caller has `role` (roles compare case-insensitively).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// Whether the caller may act on every user (`admin` or `support`).
    pub fn is_privileged(&self) -> bool {
        PRIVILEGED_ROLES.iter().any(|r| self.has_role(r))
    }

    /// Allows the owner of `user_id` and privileged roles; 403 for anyone else.
    pub fn authorize_owner(&self, user_id: i64) -> Result<(), ApiError> {
        if self.subject == user_id.to_string() || self.is_privileged() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "subject {:?} may not access user {user_id}: only the user or an admin/support role may",
                self.subject
            )))
        }
    }

    /// Allows callers having one of `roles`; 403 otherwise.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.has_role(r)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "subject {:?} lacks a required role (one of {})",
                self.subject,
                roles.join(", ")
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::from_headers(&parts.headers)?.ok_or_else(|| {
            ApiError::Unauthenticated(format!(
                "missing {SUBJECT_HEADER} header: call this service through the ficus proxy"
            ))
        })
    }
}

/// The `{id}` of `/api/users/{id}/...`: a positive integer, else 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))?;
        parse_user_id(&raw).map(Self)
    }
}

/// Parses a user id from a path segment.
pub fn parse_user_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "invalid user id {raw:?}: expected a positive integer"
        ))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(subject: Option<&str>, roles: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = subject {
            h.insert(SUBJECT_HEADER, HeaderValue::from_str(s).unwrap());
        }
        if let Some(r) = roles {
            h.insert(ROLES_HEADER, HeaderValue::from_str(r).unwrap());
        }
        h
    }

    #[test]
    fn owner_rule() {
        let me = Identity::from_headers(&headers(Some("7"), Some("member")))
            .unwrap()
            .unwrap();
        assert!(me.authorize_owner(7).is_ok());
        assert!(matches!(me.authorize_owner(8), Err(ApiError::Forbidden(_))));
        let support = Identity::from_headers(&headers(Some("1"), Some(" Member , SUPPORT")))
            .unwrap()
            .unwrap();
        assert_eq!(support.roles, vec!["member", "support"]);
        assert!(support.authorize_owner(8).is_ok());
        assert_eq!(
            Identity::from_headers(&headers(Some("  "), None)).unwrap(),
            None
        );
        assert_eq!(
            Identity::from_headers(&headers(None, Some("admin"))).unwrap(),
            None
        );
    }

    #[test]
    fn user_ids_must_be_positive_integers() {
        assert_eq!(parse_user_id("42").unwrap(), 42);
        for bad in ["0", "-3", "abc", "1.5", ""] {
            let e = parse_user_id(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
