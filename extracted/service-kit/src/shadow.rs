//! The shadow contract: a request carrying `X-Ficus-Shadow: dry-run` is processed fully
//! (validation, reads, response) but commits no side effect. Handlers that write take a
//! [`DryRun`] and pass it to their store, which runs the write in a transaction and rolls it
//! back. Any other value of the header is refused with 400 rather than risk a real write.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The header the proxy sets on mirrored requests.
pub const SHADOW_HEADER: &str = "x-ficus-shadow";
/// Its only accepted value.
pub const DRY_RUN: &str = "dry-run";

/// Whether this request must commit nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DryRun(pub bool);

impl DryRun {
    /// Reads `X-Ficus-Shadow`: absent -> live, `dry-run` -> dry run, anything else -> 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        match headers.get(SHADOW_HEADER) {
            None => Ok(Self(false)),
            Some(v) if v.as_bytes().eq_ignore_ascii_case(DRY_RUN.as_bytes()) => Ok(Self(true)),
            Some(v) => Err(ApiError::BadRequest(format!(
                "unsupported {SHADOW_HEADER} value {:?}: only {DRY_RUN:?} is understood",
                String::from_utf8_lossy(v.as_bytes())
            ))),
        }
    }

    /// Whether to roll back.
    pub fn is_dry_run(self) -> bool {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DryRun {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::from_headers(&parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_dry_run_is_understood() {
        let mut h = HeaderMap::new();
        assert_eq!(DryRun::from_headers(&h).unwrap(), DryRun(false));
        h.insert(SHADOW_HEADER, HeaderValue::from_static("Dry-Run"));
        assert_eq!(DryRun::from_headers(&h).unwrap(), DryRun(true));
        h.insert(SHADOW_HEADER, HeaderValue::from_static("mirror"));
        let e = DryRun::from_headers(&h).unwrap_err();
        assert!(e.to_string().contains("\"mirror\""), "{e}");
    }
}
