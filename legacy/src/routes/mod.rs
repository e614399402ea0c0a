//! The handlers, one module per resource. Handlers parse, call `fitness_data::queries` inside
//! [`crate::AppState::db`], and return JSON; errors go through [`crate::ApiError`].

pub mod auth;
pub mod classes;
pub mod content;
pub mod health;
pub mod users;

use axum::http::{Method, Uri};

use crate::error::ApiError;

/// JSON 404 for paths no route matches.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// JSON 405 for a known path with another method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}
