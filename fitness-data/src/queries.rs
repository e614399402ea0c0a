//! The queries both the legacy monolith and the extracted services run against the shared
//! database. Every function takes a `&Connection` (a `Transaction` derefs to one) and, when it
//! writes, the `now` to stamp rows with; none of them reads the clock.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{DataError, Result};
use crate::models::{
    Booking, Category, Class, Content, Credentials, Favorite, FavoriteItem, Instructor, Intensity,
    Page, Preferences, Subscription, SubscriptionStatus, User, Workout,
};
use crate::time::Timestamp;

const USER_COLUMNS: &str = "id, email, display_name, role, created_at, updated_at";
const CONTENT_COLUMNS: &str =
    "id, title, description, category, intensity, duration_minutes, instructor_id, published_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

fn content_row(r: &Row<'_>) -> rusqlite::Result<Content> {
    Ok(Content {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        category: r.get(3)?,
        intensity: r.get(4)?,
        duration_minutes: r.get(5)?,
        instructor_id: r.get(6)?,
        published_at: r.get(7)?,
    })
}

fn not_found(what: &'static str, id: i64) -> DataError {
    DataError::NotFound { what, id }
}

// ---------------------------------------------------------------- users and sessions

/// The user `id`.
pub fn user(conn: &Connection, id: i64) -> Result<User> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_row,
    )
    .optional()?
    .ok_or_else(|| not_found("user", id))
}

/// Whether user `id` exists.
pub fn user_exists(conn: &Connection, id: i64) -> Result<bool> {
    Ok(
        conn.query_row("SELECT COUNT(*) > 0 FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })?,
    )
}

/// The password fields of the user with this email (exact match), if any.
pub fn credentials_by_email(conn: &Connection, email: &str) -> Result<Option<Credentials>> {
    Ok(conn
        .query_row(
            "SELECT id, email, role, password_salt, password_hash FROM users WHERE email = ?1",
            [email],
            |r| {
                Ok(Credentials {
                    user_id: r.get(0)?,
                    email: r.get(1)?,
                    role: r.get(2)?,
                    password_salt: r.get(3)?,
                    password_hash: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// A partial update of a user's profile; `None` leaves the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// Applies `patch` to user `id`. A taken email is a [`DataError::Conflict`].
pub fn update_user(conn: &Connection, id: i64, patch: &UserPatch, now: i64) -> Result<User> {
    let current = user(conn, id)?;
    if let Some(email) = &patch.email {
        let taken: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM users WHERE email = ?1 AND id <> ?2",
            params![email, id],
            |r| r.get(0),
        )?;
        if taken {
            return Err(DataError::Conflict(format!(
                "email {email:?} is already taken"
            )));
        }
    }
    conn.execute(
        "UPDATE users SET display_name = ?1, email = ?2, updated_at = ?3 WHERE id = ?4",
        params![
            patch.display_name.as_ref().unwrap_or(&current.display_name),
            patch.email.as_ref().unwrap_or(&current.email),
            now,
            id
        ],
    )?;
    user(conn, id)
}

/// Stores a login session.
pub fn create_session(
    conn: &Connection,
    token: &str,
    user_id: i64,
    now: i64,
    ttl_secs: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (token, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token, user_id, now, now + ttl_secs],
    )?;
    Ok(())
}

/// The user of a session that has not expired at `now`.
pub fn session_user(conn: &Connection, token: &str, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT user_id FROM sessions WHERE token = ?1 AND expires_at > ?2",
            params![token, now],
            |r| r.get(0),
        )
        .optional()?)
}

/// Removes a session; returns whether it existed.
pub fn delete_session(conn: &Connection, token: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE token = ?1", [token])? > 0)
}

/// Removes every session expired at `now`; returns how many.
pub fn delete_expired_sessions(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
}

// ---------------------------------------------------------------- favorites

/// User `user_id`'s favorites, newest first, ties by content id.
pub fn favorites(conn: &Connection, user_id: i64) -> Result<Vec<FavoriteItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.content_id, c.title, c.category, c.intensity, c.duration_minutes, f.created_at \
         FROM favorites f JOIN content c ON c.id = f.content_id \
         WHERE f.user_id = ?1 ORDER BY f.created_at DESC, f.content_id ASC",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(FavoriteItem {
            content_id: r.get(0)?,
            title: r.get(1)?,
            category: r.get(2)?,
            intensity: r.get(3)?,
            duration_minutes: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a favorite. Unknown user or content is [`DataError::NotFound`], an existing favorite
/// a [`DataError::Conflict`].
pub fn add_favorite(
    conn: &Connection,
    user_id: i64,
    content_id: i64,
    now: i64,
) -> Result<Favorite> {
    if !user_exists(conn, user_id)? {
        return Err(not_found("user", user_id));
    }
    content(conn, content_id)?;
    let inserted = conn.execute(
        "INSERT INTO favorites (user_id, content_id, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id, content_id) DO NOTHING",
        params![user_id, content_id, now],
    )?;
    if inserted == 0 {
        return Err(DataError::Conflict(format!(
            "content {content_id} is already a favorite of user {user_id}"
        )));
    }
    Ok(Favorite {
        user_id,
        content_id,
        created_at: Timestamp(now),
    })
}

/// Removes a favorite; [`DataError::NotFound`] (what = "favorite", id = content id) if absent.
pub fn remove_favorite(conn: &Connection, user_id: i64, content_id: i64) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM favorites WHERE user_id = ?1 AND content_id = ?2",
        params![user_id, content_id],
    )?;
    if n == 0 {
        Err(not_found("favorite", content_id))
    } else {
        Ok(())
    }
}

/// Every favorite, ordered by content id then user id.
pub fn all_favorites(conn: &Connection) -> Result<Vec<Favorite>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, content_id, created_at FROM favorites ORDER BY content_id, user_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Favorite {
            user_id: r.get(0)?,
            content_id: r.get(1)?,
            created_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many users favorited `content_id`.
pub fn favorite_count(conn: &Connection, content_id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM favorites WHERE content_id = ?1",
        [content_id],
        |r| r.get(0),
    )?)
}

// ---------------------------------------------------------------- preferences

/// User `user_id`'s preferences, if they ever saved any.
pub fn preferences(conn: &Connection, user_id: i64) -> Result<Option<Preferences>> {
    let row = conn
        .query_row(
            "SELECT user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at \
             FROM preferences WHERE user_id = ?1",
            [user_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<Intensity>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, Timestamp>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((user_id, cats, intensity, max_duration_minutes, email_opt_in, updated_at)) = row
    else {
        return Ok(None);
    };
    Ok(Some(Preferences {
        user_id,
        categories: parse_categories(&cats)?,
        intensity,
        max_duration_minutes,
        email_opt_in,
        updated_at,
    }))
}

/// Stored form of a category list: names joined by `,` in the user's order.
pub fn format_categories(categories: &[Category]) -> String {
    categories
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the stored form of a category list.
pub fn parse_categories(text: &str) -> Result<Vec<Category>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| DataError::Corrupt {
                field: "preferences.categories",
                value: text.to_owned(),
            })
        })
        .collect()
}

/// Inserts or replaces the preferences of `prefs.user_id` (unknown user: [`DataError::NotFound`]).
pub fn put_preferences(conn: &Connection, prefs: &Preferences) -> Result<()> {
    if !user_exists(conn, prefs.user_id)? {
        return Err(not_found("user", prefs.user_id));
    }
    conn.execute(
        "INSERT INTO preferences (user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories, \
         intensity = excluded.intensity, max_duration_minutes = excluded.max_duration_minutes, \
         email_opt_in = excluded.email_opt_in, updated_at = excluded.updated_at",
        params![
            prefs.user_id,
            format_categories(&prefs.categories),
            prefs.intensity,
            prefs.max_duration_minutes,
            prefs.email_opt_in,
            prefs.updated_at
        ],
    )?;
    Ok(())
}

// ---------------------------------------------------------------- subscriptions

fn subscription_row(r: &Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: r.get(0)?,
        user_id: r.get(1)?,
        plan: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        current_period_end: r.get(5)?,
        cancelled_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// User `user_id`'s subscription ([`DataError::NotFound`] with what = "subscription of user").
pub fn subscription(conn: &Connection, user_id: i64) -> Result<Subscription> {
    conn.query_row(
        "SELECT id, user_id, plan, status, started_at, current_period_end, cancelled_at, updated_at \
         FROM subscriptions WHERE user_id = ?1",
        [user_id],
        subscription_row,
    )
    .optional()?
    .ok_or_else(|| not_found("subscription of user", user_id))
}

/// Moves user `user_id`'s subscription to `to`, enforcing the state machine
/// ([`SubscriptionStatus::can_become`]); a refused move is a [`DataError::Conflict`].
pub fn set_subscription_status(
    conn: &Connection,
    user_id: i64,
    to: SubscriptionStatus,
    now: i64,
) -> Result<Subscription> {
    let current = subscription(conn, user_id)?;
    if !current.status.can_become(to) {
        return Err(DataError::Conflict(format!(
            "subscription of user {user_id} is {}, it cannot become {to}",
            current.status
        )));
    }
    let cancelled_at = if to == SubscriptionStatus::Cancelled {
        Some(now)
    } else {
        current.cancelled_at.map(|t| t.0)
    };
    conn.execute(
        "UPDATE subscriptions SET status = ?1, cancelled_at = ?2, updated_at = ?3 WHERE user_id = ?4",
        params![to, cancelled_at, now, user_id],
    )?;
    subscription(conn, user_id)
}

/// Cancels user `user_id`'s subscription (only from trial, active or past_due).
pub fn cancel_subscription(conn: &Connection, user_id: i64, now: i64) -> Result<Subscription> {
    let current = subscription(conn, user_id)?;
    if !current.status.is_cancellable() {
        return Err(DataError::Conflict(format!(
            "subscription of user {user_id} is already {}",
            current.status
        )));
    }
    set_subscription_status(conn, user_id, SubscriptionStatus::Cancelled, now)
}

// ---------------------------------------------------------------- content

/// Filters and paging of the content listing. `page` starts at 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentFilter {
    pub category: Option<Category>,
    pub intensity: Option<Intensity>,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub page: i64,
    pub per_page: i64,
}

impl Default for ContentFilter {
    fn default() -> Self {
        Self {
            category: None,
            intensity: None,
            min_duration: None,
            max_duration: None,
            page: 1,
            per_page: 20,
        }
    }
}

/// One page of content matching `filter`, ordered by id.
pub fn list_content(conn: &Connection, filter: &ContentFilter) -> Result<Page<Content>> {
    let condition = "(?1 IS NULL OR category = ?1) AND (?2 IS NULL OR intensity = ?2) \
                     AND (?3 IS NULL OR duration_minutes >= ?3) AND (?4 IS NULL OR duration_minutes <= ?4)";
    let args = params![
        filter.category,
        filter.intensity,
        filter.min_duration,
        filter.max_duration
    ];
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM content WHERE {condition}"),
        args,
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTENT_COLUMNS} FROM content WHERE {condition} ORDER BY id LIMIT ?5 OFFSET ?6"
    ))?;
    let offset = (filter.page.max(1) - 1).saturating_mul(filter.per_page);
    let items = stmt
        .query_map(
            params![
                filter.category,
                filter.intensity,
                filter.min_duration,
                filter.max_duration,
                filter.per_page,
                offset
            ],
            content_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Page {
        page: filter.page,
        per_page: filter.per_page,
        total,
        items,
    })
}

/// The content item `id`.
pub fn content(conn: &Connection, id: i64) -> Result<Content> {
    conn.query_row(
        &format!("SELECT {CONTENT_COLUMNS} FROM content WHERE id = ?1"),
        [id],
        content_row,
    )
    .optional()?
    .ok_or_else(|| not_found("content", id))
}

/// Every content item, by id.
pub fn all_content(conn: &Connection) -> Result<Vec<Content>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTENT_COLUMNS} FROM content ORDER BY id"
    ))?;
    let rows = stmt.query_map([], content_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Content whose title or description contains `q` (ASCII case-insensitive, `%` and `_` taken
/// literally), by id, at most `limit`.
pub fn search_content(conn: &Connection, q: &str, limit: i64) -> Result<Vec<Content>> {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTENT_COLUMNS} FROM content \
         WHERE title LIKE ?1 ESCAPE '\\' OR description LIKE ?1 ESCAPE '\\' ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![pattern, limit], content_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------- classes and bookings

/// Filters of the class listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassFilter {
    pub category: Option<Category>,
    pub instructor_id: Option<i64>,
    /// Only classes starting at or after this instant.
    pub from: Option<i64>,
    pub limit: i64,
}

/// Classes matching `filter`, by start time then id, with their booking counts.
pub fn list_classes(conn: &Connection, filter: &ClassFilter) -> Result<Vec<Class>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.title, c.instructor_id, c.category, c.starts_at, c.duration_minutes, c.capacity, \
         (SELECT COUNT(*) FROM bookings b WHERE b.class_id = c.id) \
         FROM classes c WHERE (?1 IS NULL OR c.category = ?1) AND (?2 IS NULL OR c.instructor_id = ?2) \
         AND (?3 IS NULL OR c.starts_at >= ?3) ORDER BY c.starts_at, c.id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            filter.category,
            filter.instructor_id,
            filter.from,
            filter.limit
        ],
        class_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn class_row(r: &Row<'_>) -> rusqlite::Result<Class> {
    Ok(Class {
        id: r.get(0)?,
        title: r.get(1)?,
        instructor_id: r.get(2)?,
        category: r.get(3)?,
        starts_at: r.get(4)?,
        duration_minutes: r.get(5)?,
        capacity: r.get(6)?,
        booked: r.get(7)?,
    })
}

/// The class `id` with its booking count.
pub fn class(conn: &Connection, id: i64) -> Result<Class> {
    conn.query_row(
        "SELECT c.id, c.title, c.instructor_id, c.category, c.starts_at, c.duration_minutes, c.capacity, \
         (SELECT COUNT(*) FROM bookings b WHERE b.class_id = c.id) FROM classes c WHERE c.id = ?1",
        [id],
        class_row,
    )
    .optional()?
    .ok_or_else(|| not_found("class", id))
}

/// Books a place in class `class_id` for `user_id`. Full or already booked: [`DataError::Conflict`].
pub fn book_class(conn: &Connection, class_id: i64, user_id: i64, now: i64) -> Result<Booking> {
    let c = class(conn, class_id)?;
    if !user_exists(conn, user_id)? {
        return Err(not_found("user", user_id));
    }
    let already: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM bookings WHERE class_id = ?1 AND user_id = ?2",
        params![class_id, user_id],
        |r| r.get(0),
    )?;
    if already {
        return Err(DataError::Conflict(format!(
            "user {user_id} has already booked class {class_id}"
        )));
    }
    if c.booked >= c.capacity {
        return Err(DataError::Conflict(format!(
            "class {class_id} is full ({} places)",
            c.capacity
        )));
    }
    conn.execute(
        "INSERT INTO bookings (class_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![class_id, user_id, now],
    )?;
    Ok(Booking {
        id: conn.last_insert_rowid(),
        class_id,
        user_id,
        created_at: Timestamp(now),
    })
}

// ---------------------------------------------------------------- workouts and instructors

/// User `user_id`'s workouts, most recent first (ties by id, descending), at most `limit`.
pub fn workouts(conn: &Connection, user_id: i64, limit: i64) -> Result<Vec<Workout>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, content_id, category, duration_minutes, calories, performed_at \
         FROM workouts WHERE user_id = ?1 ORDER BY performed_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![user_id, limit], |r| {
        Ok(Workout {
            id: r.get(0)?,
            user_id: r.get(1)?,
            content_id: r.get(2)?,
            category: r.get(3)?,
            duration_minutes: r.get(4)?,
            calories: r.get(5)?,
            performed_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A workout to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkout {
    pub user_id: i64,
    pub content_id: Option<i64>,
    pub category: Category,
    pub duration_minutes: i64,
    pub calories: i64,
    pub performed_at: i64,
}

/// Logs a workout (unknown user or content: [`DataError::NotFound`]).
pub fn add_workout(conn: &Connection, w: &NewWorkout) -> Result<Workout> {
    if !user_exists(conn, w.user_id)? {
        return Err(not_found("user", w.user_id));
    }
    if let Some(c) = w.content_id {
        content(conn, c)?;
    }
    conn.execute(
        "INSERT INTO workouts (user_id, content_id, category, duration_minutes, calories, performed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![w.user_id, w.content_id, w.category, w.duration_minutes, w.calories, w.performed_at],
    )?;
    Ok(Workout {
        id: conn.last_insert_rowid(),
        user_id: w.user_id,
        content_id: w.content_id,
        category: w.category,
        duration_minutes: w.duration_minutes,
        calories: w.calories,
        performed_at: Timestamp(w.performed_at),
    })
}

/// The instructor `id`.
pub fn instructor(conn: &Connection, id: i64) -> Result<Instructor> {
    conn.query_row(
        "SELECT id, name, bio, specialty, created_at FROM instructors WHERE id = ?1",
        [id],
        |r| {
            Ok(Instructor {
                id: r.get(0)?,
                name: r.get(1)?,
                bio: r.get(2)?,
                specialty: r.get(3)?,
                created_at: r.get(4)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| not_found("instructor", id))
}

/// How many content items instructor `id` leads.
pub fn instructor_content_count(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM content WHERE instructor_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Row counts of the main tables, for health pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub users: i64,
    pub content: i64,
    pub favorites: i64,
}

/// Row counts of the main tables.
pub fn counts(conn: &Connection) -> Result<Counts> {
    Ok(conn.query_row(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM content), (SELECT COUNT(*) FROM favorites)",
        [],
        |r| Ok(Counts { users: r.get(0)?, content: r.get(1)?, favorites: r.get(2)? }),
    )?)
}
