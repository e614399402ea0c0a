//! The ranking, fast: a [`Snapshot`] holds every content item with its precomputed base score
//! (the sum of its favorites' decayed weights) already in ranking order, so an anonymous
//! request is a copy of the first `limit` items and a personalised one a single pass over
//! 2,000 integers plus a partial sort. The formula itself is `fitness_data::ranking`'s, used
//! as is; only where the sums come from differs from the legacy.
//!
//! Pure: no I/O, no clock. The store builds snapshots, the handler asks for rankings.

use std::collections::HashMap;

use fitness_data::models::{Content, Preferences};
use fitness_data::ranking::{
    TopItem, personalise, preference_percent, ranks_before, score_points, weight_for_age_days,
};

/// One content item with its aggregated favorites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub content: Content,
    /// Sum of the decayed weights of its favorites, in micro-points.
    pub base: i64,
    /// How many users favorited it.
    pub favorites: i64,
}

/// Every content item, ranked for an anonymous caller, at one reference time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// `meta.dataset_now`: the reference time of the decay.
    pub reference: i64,
    /// Ordered by base score descending, then content id ascending.
    pub items: Vec<Ranked>,
}

impl Snapshot {
    /// Builds a snapshot from every content item and the favorites aggregated by
    /// `(content_id, age_days, count)`, where `age_days = max(0, reference - created_at) / 86400`.
    /// Grouping by whole days is exact: the weight depends only on the age in days.
    pub fn build(
        reference: i64,
        content: Vec<Content>,
        aggregates: impl IntoIterator<Item = (i64, i64, i64)>,
    ) -> Self {
        let mut sums: HashMap<i64, (i64, i64)> = HashMap::new();
        for (content_id, age_days, count) in aggregates {
            let e = sums.entry(content_id).or_default();
            e.0 =
                e.0.saturating_add(weight_for_age_days(age_days).saturating_mul(count));
            e.1 += count;
        }
        let mut items: Vec<Ranked> = content
            .into_iter()
            .map(|c| {
                let (base, favorites) = sums.get(&c.id).copied().unwrap_or((0, 0));
                Ranked {
                    content: c,
                    base,
                    favorites,
                }
            })
            .collect();
        items.sort_by(|a, b| ranks_before((a.base, a.content.id), (b.base, b.content.id)));
        Self { reference, items }
    }

    /// The first `limit` items for a caller with `prefs` (or none), ranks from 1.
    pub fn top(&self, prefs: Option<&Preferences>, limit: usize) -> Vec<TopItem> {
        let limit = limit.min(self.items.len());
        let chosen: Vec<(i64, &Ranked)> = match prefs {
            // Anonymous order is the snapshot order: personalise(base, 100) == base.
            None => self.items[..limit].iter().map(|r| (r.base, r)).collect(),
            Some(p) => {
                let mut scored: Vec<(i64, &Ranked)> = self
                    .items
                    .iter()
                    .map(|r| {
                        (
                            personalise(r.base, preference_percent(&r.content, Some(p))),
                            r,
                        )
                    })
                    .collect();
                let order = |a: &(i64, &Ranked), b: &(i64, &Ranked)| {
                    ranks_before((a.0, a.1.content.id), (b.0, b.1.content.id))
                };
                if limit > 0 && limit < scored.len() {
                    scored.select_nth_unstable_by(limit - 1, order);
                    scored.truncate(limit);
                }
                scored.sort_by(order);
                scored.truncate(limit);
                scored
            }
        };
        chosen
            .into_iter()
            .enumerate()
            .map(|(i, (score, r))| TopItem {
                rank: i as i64 + 1,
                content_id: r.content.id,
                title: r.content.title.clone(),
                category: r.content.category,
                intensity: r.content.intensity,
                duration_minutes: r.content.duration_minutes,
                favorites: r.favorites,
                score: score_points(score),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use fitness_data::models::{Category, Intensity};
    use fitness_data::time::Timestamp;

    use super::*;

    fn content(id: i64, category: Category, duration: i64) -> Content {
        Content {
            id,
            title: format!("c{id}"),
            description: String::new(),
            category,
            intensity: Intensity::Low,
            duration_minutes: duration,
            instructor_id: 1,
            published_at: Timestamp(0),
        }
    }

    #[test]
    fn sums_decayed_weights_and_breaks_ties_by_id() {
        let s = Snapshot::build(
            0,
            vec![
                content(1, Category::Yoga, 20),
                content(2, Category::Hiit, 20),
                content(3, Category::Yoga, 20),
            ],
            [(2, 0, 1), (2, 30, 2), (3, 0, 2), (1, 0, 1), (1, 30, 2)],
        );
        let ids: Vec<i64> = s.items.iter().map(|r| r.content.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(s.items[0].base, 2_000_000);
        assert_eq!(s.items[0].favorites, 3);
        let top = s.top(None, 2);
        assert_eq!(
            top.iter()
                .map(|t| (t.rank, t.content_id))
                .collect::<Vec<_>>(),
            vec![(1, 1), (2, 2)]
        );
    }

    #[test]
    fn preferences_reorder() {
        let s = Snapshot::build(
            0,
            vec![
                content(1, Category::Yoga, 20),
                content(2, Category::Hiit, 90),
            ],
            [(1, 0, 2), (2, 0, 3)],
        );
        let p = Preferences {
            user_id: 5,
            categories: vec![Category::Yoga],
            intensity: None,
            max_duration_minutes: Some(60),
            email_opt_in: false,
            updated_at: Timestamp(0),
        };
        let top = s.top(Some(&p), 10);
        assert_eq!(top[0].content_id, 1);
        assert_eq!(top[0].score, 3.0);
        assert_eq!(top[1].score, 1.5);
        assert!(s.top(Some(&p), 0).is_empty());
    }
}
