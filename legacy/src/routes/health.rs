//! Liveness (`/healthz`) and the legacy's own health page (`/api/health`, with row counts).

use axum::Json;
use axum::extract::State;
use fitness_data::queries::{self, Counts};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
pub struct Healthz {
    pub status: &'static str,
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Healthz> {
    Json(Healthz { status: "ok" })
}

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub counts: Counts,
}

/// `GET /api/health`: the database answers.
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let counts = state.db(|c| Ok(queries::counts(c)?)).await?;
    Ok(Json(Health {
        status: "ok",
        service: "legacy",
        counts,
    }))
}
