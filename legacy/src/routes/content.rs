//! `/api/content`: listing with filters, detail, top (ranking), search.
//!
//! **Hole, on purpose:** `search` answers a too-short query or an empty result with an HTML
//! page that contains `q` unescaped (reflected XSS).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use fitness_data::models::{Category, Content, Intensity, Page};
use fitness_data::queries::{self, ContentFilter};
use fitness_data::ranking::{DEFAULT_LIMIT, MAX_LIMIT, TopResponse};
use fitness_data::time::now_unix;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub category: Option<String>,
    pub intensity: Option<String>,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

fn parse_opt<T: std::str::FromStr>(value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
        })
        .transpose()
}

/// `GET /api/content?category=&intensity=&min_duration=&max_duration=&page=&per_page=`
/// (public). Ordered by id; `per_page` 1..=100, default 20.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Content>>, ApiError> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(20);
    if page < 1 {
        return Err(ApiError::BadRequest(format!(
            "invalid page {page}: pages start at 1"
        )));
    }
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::BadRequest(format!(
            "invalid per_page {per_page}: must be between 1 and 100"
        )));
    }
    let filter = ContentFilter {
        category: parse_opt::<Category>(q.category.as_deref())?,
        intensity: parse_opt::<Intensity>(q.intensity.as_deref())?,
        min_duration: q.min_duration,
        max_duration: q.max_duration,
        page,
        per_page,
    };
    Ok(Json(
        state
            .db(move |c| Ok(queries::list_content(c, &filter)?))
            .await?,
    ))
}

#[derive(Debug, Serialize)]
pub struct InstructorRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct ContentDetail {
    #[serde(flatten)]
    pub content: Content,
    pub favorites: i64,
    pub instructor: InstructorRef,
}

/// `GET /api/content/{id}` (public): the item, its favorite count and its instructor.
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ContentDetail>, ApiError> {
    let detail = state
        .db(move |c| {
            let content = queries::content(c, id)?;
            let favorites = queries::favorite_count(c, id)?;
            let i = queries::instructor(c, content.instructor_id)?;
            Ok(ContentDetail {
                content,
                favorites,
                instructor: InstructorRef {
                    id: i.id,
                    name: i.name,
                },
            })
        })
        .await?;
    Ok(Json(detail))
}

#[derive(Debug, Deserialize)]
pub struct TopQuery {
    pub limit: Option<i64>,
    pub user_id: Option<i64>,
}

/// `GET /api/content/top?limit=&user_id=` (public): see `fitness_data::ranking` for the formula.
pub async fn top(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TopQuery>,
) -> Result<Json<TopResponse>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: must be between 1 and {MAX_LIMIT}"
        )));
    }
    let user_id = q.user_id;
    let body = state
        .db(move |c| Ok(crate::ranking::top(c, user_id, limit, now_unix())?))
        .await?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub query: String,
    pub total: usize,
    pub items: Vec<Content>,
}

/// Most results a search returns.
pub const SEARCH_LIMIT: i64 = 50;

/// `GET /api/content/search?q=` (public). JSON when something matches; otherwise an HTML
/// page with `q` **unescaped** (hole): 400 when `q` has fewer than 2 characters, 404 when
/// nothing matches.
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    let q = query.q.unwrap_or_default();
    if q.trim().chars().count() < 2 {
        let page = html_page(
            "Search too short",
            &format!("<p>Your search <b>{q}</b> is too short: type at least 2 characters.</p>"),
        );
        return Ok((
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response());
    }
    let needle = q.trim().to_owned();
    let items = state
        .db(move |c| Ok(queries::search_content(c, &needle, SEARCH_LIMIT)?))
        .await?;
    if items.is_empty() {
        let page = html_page("No results", &format!("<p>No results for <b>{q}</b>.</p>"));
        return Ok((
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response());
    }
    Ok(Json(SearchResults {
        query: q,
        total: items.len(),
        items,
    })
    .into_response())
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title} - Fitness</title></head>\n\
         <body><h1>{title}</h1>\n{body}\n<p><a href=\"/\">Back</a></p></body></html>\n"
    )
}
