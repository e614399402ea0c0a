//! `/api/users/{id}` and everything under it: profile, favorites, preferences, subscription,
//! workouts.
//!
//! **Holes, on purpose** (docs/legacy.md): `GET /api/users/{id}` needs no authentication;
//! the subscription and workout reads accept any credentials unchecked; every other handler
//! authenticates the caller but then acts on the `{id}` of the path, not on the caller (IDOR),
//! and accepts a cookie session from any origin (no CSRF defence).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fitness_data::models::{
    Category, FavoriteItem, Intensity, Preferences, Subscription, User, Workout,
};
use fitness_data::queries::{self, NewWorkout, UserPatch};
use fitness_data::time::{Timestamp, now_unix};
use serde::{Deserialize, Serialize};

use crate::auth::{AnyCredentials, Identity};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiPath, ApiQuery, LaxJson};
use crate::state::AppState;

/// `GET /api/users/{id}` — no authentication at all (hole).
pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.db(move |c| Ok(queries::user(c, id)?)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

fn validate_patch(p: PatchUser) -> Result<UserPatch, ApiError> {
    let mut errors = Vec::new();
    let display_name = p.display_name.map(|n| n.trim().to_owned());
    if let Some(n) = &display_name {
        let len = n.chars().count();
        if !(1..=80).contains(&len) {
            errors.push(FieldError::new(
                "display_name",
                format!("must be 1 to 80 characters, got {len}"),
            ));
        }
    }
    let email = p.email.map(|e| e.trim().to_ascii_lowercase());
    if let Some(e) = &email {
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
        if !ok {
            errors.push(FieldError::new(
                "email",
                format!("{e:?} is not an email address"),
            ));
        }
    }
    if display_name.is_none() && email.is_none() {
        errors.push(FieldError::new(
            "body",
            "nothing to update: send display_name and/or email",
        ));
    }
    if errors.is_empty() {
        Ok(UserPatch {
            display_name,
            email,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `PATCH /api/users/{id}` — authenticated, but any user may edit any profile (IDOR, CSRF).
pub async fn patch_user(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    LaxJson(body): LaxJson<PatchUser>,
) -> Result<Json<User>, ApiError> {
    let patch = validate_patch(body)?;
    Ok(Json(
        state
            .db(move |c| Ok(queries::update_user(c, id, &patch, now_unix())?))
            .await?,
    ))
}

#[derive(Debug, Serialize)]
pub struct Favorites {
    pub user_id: i64,
    pub total: usize,
    pub items: Vec<FavoriteItem>,
}

/// `GET /api/users/{id}/favorites` — IDOR.
pub async fn list_favorites(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Favorites>, ApiError> {
    let items = state
        .db(move |c| {
            queries::user(c, id)?;
            Ok(queries::favorites(c, id)?)
        })
        .await?;
    Ok(Json(Favorites {
        user_id: id,
        total: items.len(),
        items,
    }))
}

#[derive(Debug, Deserialize)]
pub struct AddFavorite {
    pub content_id: i64,
}

/// `POST /api/users/{id}/favorites` — IDOR, CSRF. 201 with the new favorite.
pub async fn add_favorite(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    LaxJson(body): LaxJson<AddFavorite>,
) -> Result<(StatusCode, Json<fitness_data::models::Favorite>), ApiError> {
    let fav = state
        .db(move |c| Ok(queries::add_favorite(c, id, body.content_id, now_unix())?))
        .await?;
    Ok((StatusCode::CREATED, Json(fav)))
}

/// `DELETE /api/users/{id}/favorites/{content_id}` — IDOR, CSRF. 204.
pub async fn remove_favorite(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath((id, content_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .db(move |c| {
            queries::remove_favorite(c, id, content_id).map_err(|e| match e {
                fitness_data::DataError::NotFound { .. } => ApiError::NotFound(format!(
                    "content {content_id} is not a favorite of user {id}"
                )),
                other => other.into(),
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/users/{id}/preferences` — IDOR. 404 when the user never saved any.
pub async fn get_preferences(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Preferences>, ApiError> {
    let prefs = state
        .db(move |c| {
            queries::user(c, id)?;
            Ok(queries::preferences(c, id)?)
        })
        .await?;
    prefs
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("preferences of user {id} not found")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPreferences {
    pub categories: Vec<String>,
    pub intensity: Option<String>,
    pub max_duration_minutes: Option<i64>,
    pub email_opt_in: bool,
}

/// Checks a preferences body; all field errors at once.
pub fn validate_preferences(
    user_id: i64,
    body: PutPreferences,
    now: i64,
) -> Result<Preferences, ApiError> {
    let mut errors = Vec::new();
    let mut categories: Vec<Category> = Vec::new();
    for (i, name) in body.categories.iter().enumerate() {
        match name.parse::<Category>() {
            Ok(c) if categories.contains(&c) => errors.push(FieldError::new(
                &format!("categories[{i}]"),
                format!("duplicate category {name:?}"),
            )),
            Ok(c) => categories.push(c),
            Err(e) => errors.push(FieldError::new(&format!("categories[{i}]"), e.to_string())),
        }
    }
    if body.categories.len() > 5 {
        errors.push(FieldError::new(
            "categories",
            format!("at most 5 categories, got {}", body.categories.len()),
        ));
    }
    let intensity = match body.intensity.as_deref().map(str::parse::<Intensity>) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(e)) => {
            errors.push(FieldError::new("intensity", e.to_string()));
            None
        }
    };
    if let Some(m) = body.max_duration_minutes {
        if !(5..=180).contains(&m) {
            errors.push(FieldError::new(
                "max_duration_minutes",
                format!("must be between 5 and 180, got {m}"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Preferences {
        user_id,
        categories,
        intensity,
        max_duration_minutes: body.max_duration_minutes,
        email_opt_in: body.email_opt_in,
        updated_at: Timestamp(now),
    })
}

/// `PUT /api/users/{id}/preferences` — IDOR, CSRF. Replaces the preferences, returns them.
pub async fn put_preferences(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    LaxJson(body): LaxJson<PutPreferences>,
) -> Result<Json<Preferences>, ApiError> {
    let prefs = validate_preferences(id, body, now_unix())?;
    let stored = prefs.clone();
    state
        .db(move |c| Ok(queries::put_preferences(c, &stored)?))
        .await?;
    Ok(Json(prefs))
}

/// `GET /api/users/{id}/subscription` — any credentials, unchecked (hole), and IDOR.
pub async fn get_subscription(
    _any: AnyCredentials,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(
        state.db(move |c| Ok(queries::subscription(c, id)?)).await?,
    ))
}

/// `POST /api/users/{id}/subscription/cancel` — IDOR, CSRF. 409 unless trial/active/past_due.
pub async fn cancel_subscription(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(
        state
            .db(move |c| Ok(queries::cancel_subscription(c, id, now_unix())?))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct WorkoutQuery {
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Workouts {
    pub user_id: i64,
    pub items: Vec<Workout>,
}

/// `GET /api/users/{id}/workouts?limit=` — any credentials, unchecked (hole), and IDOR.
pub async fn list_workouts(
    _any: AnyCredentials,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<WorkoutQuery>,
) -> Result<Json<Workouts>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: must be between 1 and 200"
        )));
    }
    let items = state
        .db(move |c| {
            queries::user(c, id)?;
            Ok(queries::workouts(c, id, limit)?)
        })
        .await?;
    Ok(Json(Workouts { user_id: id, items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostWorkout {
    pub category: String,
    pub duration_minutes: i64,
    pub calories: i64,
    pub content_id: Option<i64>,
    pub performed_at: Option<Timestamp>,
}

/// `POST /api/users/{id}/workouts` — IDOR, CSRF. 201 with the logged workout.
pub async fn add_workout(
    _who: Identity,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    LaxJson(body): LaxJson<PostWorkout>,
) -> Result<(StatusCode, Json<Workout>), ApiError> {
    let mut errors = Vec::new();
    let category = body
        .category
        .parse::<Category>()
        .map_err(|e| errors.push(FieldError::new("category", e.to_string())))
        .ok();
    if !(1..=600).contains(&body.duration_minutes) {
        errors.push(FieldError::new(
            "duration_minutes",
            format!("must be between 1 and 600, got {}", body.duration_minutes),
        ));
    }
    if !(0..=10_000).contains(&body.calories) {
        errors.push(FieldError::new(
            "calories",
            format!("must be between 0 and 10000, got {}", body.calories),
        ));
    }
    let (Some(category), true) = (category, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let now = now_unix();
    let new = NewWorkout {
        user_id: id,
        content_id: body.content_id,
        category,
        duration_minutes: body.duration_minutes,
        calories: body.calories,
        performed_at: body.performed_at.map_or(now, |t| t.0),
    };
    let w = state
        .db(move |c| Ok(queries::add_workout(c, &new)?))
        .await?;
    Ok((StatusCode::CREATED, Json(w)))
}
