//! `POST /api/auth/login` (session cookie **and** JWT) and `POST /api/auth/logout`.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use fitness_data::models::Role;
use fitness_data::password::verify_password;
use fitness_data::queries;
use fitness_data::time::{Timestamp, now_unix};
use serde::{Deserialize, Serialize};

use crate::auth::{SESSION_COOKIE, TOKEN_COOKIE, issue_jwt, session_cookie};
use crate::error::ApiError;
use crate::extract::LaxJson;
use crate::state::{AppState, JWT_TTL_SECS, SESSION_TTL_SECS};

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub session_expires_at: Timestamp,
}

/// `POST /api/auth/login`: checks the password, opens a session (cookie) and signs a JWT.
pub async fn login(
    State(state): State<AppState>,
    LaxJson(req): LaxJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let email = req.email.trim().to_owned();
    let creds = state
        .db(move |c| Ok(queries::credentials_by_email(c, &email)?))
        .await?;
    let creds = match creds {
        Some(c) if verify_password(&c.password_salt, &req.password, &c.password_hash) => c,
        _ => return Err(ApiError::Unauthorized("invalid email or password".into())),
    };
    let now = now_unix();
    let token = state.new_session_token()?;
    let user_id = creds.user_id;
    let session = token.clone();
    state
        .db(move |c| {
            Ok(queries::create_session(
                c,
                &session,
                user_id,
                now,
                SESSION_TTL_SECS,
            )?)
        })
        .await?;
    let jwt = issue_jwt(
        &state.config().jwt_secret,
        user_id,
        &creds.email,
        creds.role,
        now,
    )?;
    let body = LoginResponse {
        user_id,
        email: creds.email,
        role: creds.role,
        token: jwt,
        token_type: "Bearer",
        expires_in: JWT_TTL_SECS,
        session_expires_at: Timestamp(now + SESSION_TTL_SECS),
    };
    // No SameSite, no Secure: part of the CSRF hole (docs/legacy.md).
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; Max-Age={SESSION_TTL_SECS}");
    // The same JWT as a cookie, for the web app (and for the edge, which can verify it).
    let jwt_cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; Max-Age={JWT_TTL_SECS}",
        body.token
    );
    Ok((
        AppendHeaders([(SET_COOKIE, cookie), (SET_COOKIE, jwt_cookie)]),
        Json(body),
    )
        .into_response())
}

/// `POST /api/auth/logout`: ends the cookie's session (if any) and clears the cookie. Always 204.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        state
            .db(move |c| Ok(queries::delete_session(c, &token)?))
            .await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
}
