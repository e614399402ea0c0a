//! JSON request bodies, strictly: `Content-Type: application/json` (415 otherwise, which also
//! closes the legacy's `text/plain` CSRF hole), well-formed JSON (400 otherwise). Shape and
//! values are the service's to check, so it can report every field error at once (422).

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::error::ApiError;

/// Checks the content type and parses `bytes` as JSON.
pub fn json_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported content type {content_type:?}: send application/json"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn content_type_and_syntax() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            json_body(&h, b"{}"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(json_body(&h, b"{\"a\":1}").unwrap()["a"], 1);
        assert!(matches!(json_body(&h, b"{"), Err(ApiError::BadRequest(_))));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            json_body(&h, b"{}"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
