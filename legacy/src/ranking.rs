//! The legacy's naive `top`: on every request it loads all content and all favorites and sums
//! the decayed weights in Rust. The formula itself lives in `fitness_data::ranking` (and in
//! `docs/legacy.md`); this module only applies it, slowly.

use std::collections::BTreeMap;

use fitness_data::ranking::{
    TopItem, TopResponse, favorite_weight, personalise, preference_percent, ranks_before,
    score_points,
};
use fitness_data::rusqlite::Connection;
use fitness_data::schema::dataset_now;
use fitness_data::time::Timestamp;
use fitness_data::{DataError, queries};

/// Ranks every content item for `user_id` (or everyone), keeping the first `limit`.
/// `generated_at` is `now`, the only field that changes between two identical calls.
pub fn top(
    conn: &Connection,
    user_id: Option<i64>,
    limit: i64,
    now: i64,
) -> Result<TopResponse, DataError> {
    let reference = dataset_now(conn)?;
    let prefs = match user_id {
        Some(id) => {
            if !queries::user_exists(conn, id)? {
                return Err(DataError::NotFound { what: "user", id });
            }
            queries::preferences(conn, id)?
        }
        None => None,
    };
    // content id -> (sum of weights, number of favorites)
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for f in queries::all_favorites(conn)? {
        let entry = sums.entry(f.content_id).or_default();
        entry.0 += favorite_weight(reference, f.created_at.0);
        entry.1 += 1;
    }
    let mut scored: Vec<(i64, i64, TopItem)> = queries::all_content(conn)?
        .into_iter()
        .map(|c| {
            let (base, count) = sums.get(&c.id).copied().unwrap_or((0, 0));
            let score = personalise(base, preference_percent(&c, prefs.as_ref()));
            let item = TopItem {
                rank: 0,
                content_id: c.id,
                title: c.title,
                category: c.category,
                intensity: c.intensity,
                duration_minutes: c.duration_minutes,
                favorites: count,
                score: score_points(score),
            };
            (score, c.id, item)
        })
        .collect();
    scored.sort_by(|a, b| ranks_before((a.0, a.1), (b.0, b.1)));
    let items = scored
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .enumerate()
        .map(|(i, (_, _, mut item))| {
            item.rank = i as i64 + 1;
            item
        })
        .collect();
    Ok(TopResponse {
        generated_at: Timestamp(now),
        user_id,
        personalised: prefs.is_some(),
        reference_time: Timestamp(reference),
        limit,
        items,
    })
}
