//! The definition of "top content": the score formula, its constants and the response shape.
//! Both the legacy `GET /api/content/top` and the extracted content-ranking service build on
//! these functions, so they agree by construction; how fast each computes the sums is theirs.
//!
//! The formula (also in `docs/legacy.md`):
//! - reference time `R` = `meta.dataset_now` (the dataset clock, not the wall clock);
//! - a favorite created at `t` is `age_days = max(0, R - t) / 86400` (integer division) old and
//!   weighs `floor(1_000_000 * 2^(-age_days / 30))` micro-points ([`favorite_weight`]);
//! - `base(c)` = sum of the weights of the favorites of content `c` (exact integer sum);
//! - with `?user_id=` whose preferences exist, `percent(c)` = 100, +50 if `c.category` is one
//!   of the preferred categories, +25 if `c.intensity` is the preferred intensity, -50 if
//!   `max_duration_minutes` is set and `c.duration_minutes` exceeds it; otherwise 100;
//! - `score(c) = base(c) * percent(c) / 100` (integer division);
//! - every content item is a candidate; order by score descending, then content id ascending.

use serde::{Deserialize, Serialize};

use crate::models::{Category, Content, Intensity, Preferences};
use crate::time::{DAY, Timestamp};

/// Micro-points per point: scores are integers in micro-points until they are shown.
pub const SCALE: i64 = 1_000_000;

/// Days after which a favorite counts half.
pub const HALF_LIFE_DAYS: i64 = 30;

/// Default and maximum `limit` of a top request.
pub const DEFAULT_LIMIT: i64 = 10;
/// Largest accepted `limit`.
pub const MAX_LIMIT: i64 = 100;

/// The weight in micro-points of a favorite created at `created_at`, seen at `reference`.
pub fn favorite_weight(reference: i64, created_at: i64) -> i64 {
    weight_for_age_days((reference - created_at).max(0) / DAY)
}

/// The weight in micro-points of a favorite `age_days` whole days old.
pub fn weight_for_age_days(age_days: i64) -> i64 {
    let age = age_days.max(0) as f64;
    (SCALE as f64 * (-age / HALF_LIFE_DAYS as f64).exp2()).floor() as i64
}

/// The personalisation multiplier in percent for `content` and the user's preferences.
pub fn preference_percent(content: &Content, prefs: Option<&Preferences>) -> i64 {
    let Some(p) = prefs else { return 100 };
    let mut percent = 100;
    if p.categories.contains(&content.category) {
        percent += 50;
    }
    if p.intensity == Some(content.intensity) {
        percent += 25;
    }
    if p.max_duration_minutes
        .is_some_and(|m| content.duration_minutes > m)
    {
        percent -= 50;
    }
    percent
}

/// `base * percent / 100`, in micro-points.
pub fn personalise(base: i64, percent: i64) -> i64 {
    base.saturating_mul(percent) / 100
}

/// Micro-points as the number shown in responses.
pub fn score_points(micro: i64) -> f64 {
    micro as f64 / SCALE as f64
}

/// The ranking order: higher score first, then lower content id.
pub fn ranks_before(a: (i64, i64), b: (i64, i64)) -> std::cmp::Ordering {
    let ((score_a, id_a), (score_b, id_b)) = (a, b);
    score_b.cmp(&score_a).then(id_a.cmp(&id_b))
}

/// One ranked item, as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopItem {
    pub rank: i64,
    pub content_id: i64,
    pub title: String,
    pub category: Category,
    pub intensity: Intensity,
    pub duration_minutes: i64,
    /// How many users favorited it (undecayed).
    pub favorites: i64,
    /// `score / 1_000_000`.
    pub score: f64,
}

/// The body of `GET /api/content/top`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopResponse {
    /// When the response was made (wall clock): differs on every call, on purpose.
    pub generated_at: Timestamp,
    /// The user whose preferences personalised the ranking, if any.
    pub user_id: Option<i64>,
    /// Whether preferences were applied (false when the user has none).
    pub personalised: bool,
    /// The reference time of the recency decay (`meta.dataset_now`).
    pub reference_time: Timestamp,
    pub limit: i64,
    pub items: Vec<TopItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_halves_every_half_life() {
        assert_eq!(weight_for_age_days(0), 1_000_000);
        assert_eq!(weight_for_age_days(30), 500_000);
        assert_eq!(weight_for_age_days(60), 250_000);
        assert_eq!(weight_for_age_days(-5), 1_000_000);
        assert_eq!(favorite_weight(10 * DAY, 10 * DAY - 1), 1_000_000);
        assert_eq!(favorite_weight(100 * DAY, 70 * DAY), 500_000);
        assert!(weight_for_age_days(15) > 700_000 && weight_for_age_days(15) < 710_000);
    }

    #[test]
    fn ordering_breaks_ties_by_id() {
        let mut v = vec![(5, 3), (7, 9), (5, 1), (0, 2)];
        v.sort_by(|a, b| ranks_before(*a, *b));
        assert_eq!(v, vec![(7, 9), (5, 1), (5, 3), (0, 2)]);
    }

    #[test]
    fn percent_combines_preferences() {
        let c = Content {
            id: 1,
            title: String::new(),
            description: String::new(),
            category: Category::Yoga,
            intensity: Intensity::Low,
            duration_minutes: 45,
            instructor_id: 1,
            published_at: Timestamp(0),
        };
        let mut p = Preferences {
            user_id: 1,
            categories: vec![Category::Hiit, Category::Yoga],
            intensity: Some(Intensity::Low),
            max_duration_minutes: Some(30),
            email_opt_in: false,
            updated_at: Timestamp(0),
        };
        assert_eq!(preference_percent(&c, None), 100);
        assert_eq!(preference_percent(&c, Some(&p)), 125);
        p.max_duration_minutes = None;
        assert_eq!(preference_percent(&c, Some(&p)), 175);
        assert_eq!(personalise(1_000_001, 175), 1_750_001);
    }
}
