//! The one mapping from errors to HTTP responses for every extracted service. Bodies are
//! client-safe JSON `{"error": <kind>, "message": <detail>, ...}`; internal detail only goes to
//! the log, tagged with where it came from.
//!
//! | status | `error` | extra fields |
//! | --- | --- | --- |
//! | 400 | `bad request` | |
//! | 401 | `unauthenticated` | |
//! | 403 | `forbidden` | |
//! | 404 | `not found` | |
//! | 405 | `method not allowed` | |
//! | 409 | `invalid transition` | `from`, `to` |
//! | 409 | `conflict` | |
//! | 415 | `unsupported media type` | |
//! | 422 | `validation failed` | `fields: [{field, message}]` |
//! | 500 | `internal error` | |
//! | 503 | `unavailable` | |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fitness_data::DataError;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed path, query, header or JSON.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no identity headers from the proxy.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: identity present but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: a state change the state machine refuses; the body names both states.
    #[error("{message}")]
    InvalidTransition {
        message: String,
        from: String,
        to: String,
    },
    /// 409: any other conflict with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 415: the body is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed body with invalid values; all of them at once.
    #[error("invalid fields: {}", .0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>().join(", "))]
    Validation(Vec<FieldError>),
    /// 503: a dependency (the database) is not usable right now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged in full, shown as "internal error".
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status and the `error` kind.
    pub fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::InvalidTransition { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body this error is shown as.
    pub fn body(&self) -> Value {
        let (_, kind) = self.status_and_kind();
        let mut body = Map::new();
        body.insert("error".into(), json!(kind));
        match self {
            Self::Internal(_) => {
                body.insert("message".into(), json!("internal error"));
            }
            Self::InvalidTransition { message, from, to } => {
                body.insert("message".into(), json!(message));
                body.insert("from".into(), json!(from));
                body.insert("to".into(), json!(to));
            }
            Self::Validation(fields) => {
                body.insert("message".into(), json!(self.to_string()));
                body.insert("fields".into(), json!(fields));
            }
            other => {
                body.insert("message".into(), json!(other.to_string()));
            }
        }
        Value::Object(body)
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound { .. } => Self::NotFound(e.to_string()),
            DataError::Conflict(m) => Self::Conflict(m),
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        match &self {
            Self::Internal(detail) => {
                tracing::error!(source = "internal", %detail, "request failed");
            }
            Self::Unavailable(detail) => {
                tracing::warn!(source = "downstream", %detail, "dependency unavailable");
            }
            other => tracing::debug!(source = "request", kind, detail = %other, "request refused"),
        }
        (status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_lists_every_field() {
        let e = ApiError::Validation(vec![
            FieldError::new("categories[0]", "unknown category \"x\""),
            FieldError::new("email_opt_in", "is required"),
        ]);
        assert_eq!(e.status_and_kind().0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.body(),
            json!({"error": "validation_failed",
                   "message": "invalid fields: categories[0], email_opt_in",
                   "fields": [{"field": "categories[0]", "message": "unknown category \"x\""},
                              {"field": "email_opt_in", "message": "is required"}]})
        );
    }

    #[test]
    fn internal_detail_is_hidden_and_transitions_name_states() {
        let e = ApiError::Internal("disk on fire at /var/x".into());
        assert_eq!(
            e.body(),
            json!({"error": "internal", "message": "internal error"})
        );
        let e = ApiError::InvalidTransition {
            message: "m".into(),
            from: "expired".into(),
            to: "cancelled".into(),
        };
        assert_eq!(e.body()["from"], "expired");
        assert_eq!(e.body()["to"], "cancelled");
        let nf: ApiError = DataError::NotFound {
            what: "user",
            id: 9,
        }
        .into();
        assert_eq!(nf.body()["message"], "user 9 not found");
    }
}
