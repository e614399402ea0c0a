//! Extractors whose rejections are [`ApiError`]s (JSON bodies, not axum's plain text).
//!
//! [`LaxJson`] is part of the CSRF hole on purpose: it parses the body as JSON whatever its
//! `Content-Type`, so a cross-site `<form enctype="text/plain">` can post JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters; a value that does not parse is a 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|r| ApiError::BadRequest(format!("invalid path parameter: {}", r.body_text())))
    }
}

/// Query parameters; a value that does not parse is a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|r| ApiError::BadRequest(format!("invalid query: {}", r.body_text())))
    }
}

/// A JSON body read regardless of `Content-Type` (the legacy never checked it). Broken JSON is
/// a 400; JSON of the wrong shape (missing field, wrong type, unknown field) is a 422.
pub struct LaxJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for LaxJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::Validation {
                    message: format!("invalid body: {e}"),
                    fields: Vec::new(),
                },
                _ => ApiError::BadRequest(format!("invalid JSON body: {e}")),
            })
    }
}
