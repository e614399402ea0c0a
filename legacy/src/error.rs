//! The one mapping from errors to HTTP responses: a status and a client-safe JSON body
//! `{"error": code, "message": text, "fields": [...]}`; internal detail goes to the log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fitness_data::DataError;
use serde::Serialize;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed path, query or JSON.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed body with invalid values.
    #[error("{message}")]
    Validation {
        message: String,
        fields: Vec<FieldError>,
    },
    /// 500: logged in full, shown as "internal error".
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for these field errors.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        Self::Validation {
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }

    /// The status and the `error` code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound { .. } => Self::NotFound(e.to_string()),
            DataError::Conflict(m) => Self::Conflict(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, fields): (String, &[FieldError]) = match &self {
            Self::Internal(detail) => {
                tracing::error!(source = "internal", %detail, "request failed");
                ("internal error".to_owned(), &[])
            }
            Self::Validation { message, fields } => (message.clone(), fields),
            other => (other.to_string(), &[]),
        };
        (
            status,
            Json(Body {
                error: code,
                message: &message,
                fields,
            }),
        )
            .into_response()
    }
}
