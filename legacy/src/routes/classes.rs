//! Live classes, bookings and instructors.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fitness_data::models::{Booking, Category, Class, Instructor};
use fitness_data::queries::{self, ClassFilter};
use fitness_data::time::{now_unix, parse_rfc3339};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ClassQuery {
    pub category: Option<String>,
    pub instructor_id: Option<i64>,
    /// RFC 3339; only classes starting at or after it.
    pub from: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Classes {
    pub items: Vec<Class>,
}

/// `GET /api/classes?category=&instructor_id=&from=&limit=` (public), by start time.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ClassQuery>,
) -> Result<Json<Classes>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: must be between 1 and 200"
        )));
    }
    let category = match q.category.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(
            c.parse::<Category>()
                .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?,
        ),
        None => None,
    };
    let from = match q.from.as_deref() {
        Some(f) => Some(parse_rfc3339(f).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid from {f:?}: expected RFC 3339 like 2025-06-01T00:00:00Z"
            ))
        })?),
        None => None,
    };
    let filter = ClassFilter {
        category,
        instructor_id: q.instructor_id,
        from,
        limit,
    };
    let items = state
        .db(move |c| Ok(queries::list_classes(c, &filter)?))
        .await?;
    Ok(Json(Classes { items }))
}

/// `POST /api/classes/{id}/bookings` — authenticated (cookie from any origin: CSRF). Books
/// the caller. 201; 404 unknown class; 409 full or already booked.
pub async fn book(
    who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Booking>), ApiError> {
    let booking = state
        .db(move |c| Ok(queries::book_class(c, id, who.user_id, now_unix())?))
        .await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

#[derive(Debug, Serialize)]
pub struct InstructorDetail {
    #[serde(flatten)]
    pub instructor: Instructor,
    pub content_count: i64,
}

/// `GET /api/instructors/{id}` (public).
pub async fn instructor(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InstructorDetail>, ApiError> {
    let detail = state
        .db(move |c| {
            let instructor = queries::instructor(c, id)?;
            let content_count = queries::instructor_content_count(c, id)?;
            Ok(InstructorDetail {
                instructor,
                content_count,
            })
        })
        .await?;
    Ok(Json(detail))
}
