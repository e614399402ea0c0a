//! What each job kind does. Every function reads `now` from its [`Ctx`] (never the clock)
//! and writes only through the [`Db`], inside transactions:
//!
//! - `expiry-alerts`: finds subscriptions (trial, active, cancelled) whose
//!   `current_period_end` falls within the next N days and enqueues one `expiry-alert` each
//!   with idempotency key `expiry-alert:{user_id}:{period_end}` (so a rescan adds nothing);
//! - `expiry-alert`: delivers one alert exactly once per user and period (see
//!   [`expiry_alert`]);
//! - `expire-subscriptions`: active/past_due/cancelled past their period end -> expired;
//! - `ranking-recompute`: rewrites `content_scores` (the ranking's decayed favorite sums);
//! - `favorite-counts`: recounts `favorite_counts`, reports drift;
//! - `weekly-digest`: each opted-in user's top items, once per user per ISO week;
//! - `session-cleanup`: deletes expired sessions.
//!
//! This module owns no queue logic beyond completing a job in the same transaction as its
//! side effect; retries, leases and dead-lettering are the worker's.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike};
use fitness_data::models::{Category, Content, Intensity, Preferences, SubscriptionStatus};
use fitness_data::ranking;
use fitness_data::time::{DAY, Timestamp, rfc3339};
use serde_json::{Value as Json, json};

use crate::config::{Settings, TestHook};
use crate::db::{Conn, Db, Row};
use crate::error::JobError;
use crate::kind::Kind;
use crate::notify::{Delivery, Notification, Notifier};
use crate::queue::{self, Job, NewJob};

/// What a job runs with.
#[derive(Clone)]
pub struct Ctx {
    pub db: Db,
    pub notifier: Arc<dyn Notifier>,
    pub settings: Arc<Settings>,
    /// The time of this attempt (unix seconds).
    pub now: i64,
}

/// How a job ended successfully.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The worker must mark the job done with this result.
    Complete(Json),
    /// The job already committed its completion with its side effect (this result).
    Completed(Json),
}

/// Statuses an expiry alert is sent for: the user still has access until the period end.
pub const ALERTABLE: &[SubscriptionStatus] = &[
    SubscriptionStatus::Trial,
    SubscriptionStatus::Active,
    SubscriptionStatus::Cancelled,
];

/// Statuses the sweep expires once the period has ended.
pub const SWEPT: &[SubscriptionStatus] = &[
    SubscriptionStatus::Active,
    SubscriptionStatus::PastDue,
    SubscriptionStatus::Cancelled,
];

fn in_list(statuses: &[SubscriptionStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The idempotency key of the expiry alert of `user_id` for the period ending `period_end`.
pub fn alert_key(user_id: i64, period_end: i64) -> String {
    format!("expiry-alert:{user_id}:{period_end}")
}

/// The ISO week of `now`, e.g. `2025-W22`.
pub fn iso_week(now: i64) -> String {
    let w = DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The idempotency key of `user_id`'s digest for ISO week `week`.
pub fn digest_key(user_id: i64, week: &str) -> String {
    format!("weekly-digest:{user_id}:{week}")
}

fn int_field(payload: &Json, name: &str) -> Option<i64> {
    payload.get(name).and_then(Json::as_i64)
}

/// Runs `job` (already claimed; `job.lease()` is its lease).
pub async fn run(ctx: &Ctx, job: &Job) -> Result<Finish, JobError> {
    let kind = Kind::parse(&job.kind)?;
    kind.validate(&job.payload)?;
    let now = ctx.now;
    match kind {
        Kind::ExpiryAlerts => {
            let days = int_field(&job.payload, "days_before").unwrap_or(ctx.settings.alert_days);
            let max_attempts = ctx.settings.max_attempts;
            ctx.db
                .transaction(move |c| scan_expiring(c, now, days, max_attempts))
                .await
                .map(Finish::Complete)
        }
        Kind::ExpiryAlert => expiry_alert(ctx, job).await,
        Kind::ExpireSubscriptions => ctx
            .db
            .transaction(move |c| expire_subscriptions(c, now))
            .await
            .map(Finish::Complete),
        Kind::RankingRecompute => ctx
            .db
            .transaction(move |c| recompute_scores(c, now))
            .await
            .map(Finish::Complete),
        Kind::FavoriteCounts => ctx
            .db
            .transaction(move |c| reconcile_counts(c, now))
            .await
            .map(Finish::Complete),
        Kind::WeeklyDigest => weekly_digest(ctx, job).await.map(Finish::Complete),
        Kind::SessionCleanup => ctx
            .db
            .transaction(move |c| {
                let n = c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[now.into()])?;
                Ok(json!({"deleted": n}))
            })
            .await
            .map(Finish::Complete),
    }
}

/// `expiry-alerts`: enqueue one `expiry-alert` per subscription ending in `(now, now + days]`.
pub fn scan_expiring(
    c: &mut dyn Conn,
    now: i64,
    days: i64,
    max_attempts: i64,
) -> Result<Json, JobError> {
    let rows = c.query(
        &format!(
            "SELECT user_id, current_period_end FROM subscriptions \
             WHERE status IN ({}) AND current_period_end > $1 AND current_period_end <= $2 \
             ORDER BY user_id",
            in_list(ALERTABLE)
        ),
        &[now.into(), (now + days * DAY).into()],
    )?;
    let (mut created, mut existing) = (0, 0);
    for r in &rows {
        let (user_id, period_end) = (r.int(0)?, r.int(1)?);
        let e = queue::enqueue(
            c,
            &NewJob {
                kind: Kind::ExpiryAlert.as_str().to_owned(),
                payload: json!({"user_id": user_id, "period_end": period_end}),
                run_at: now,
                max_attempts,
                idempotency_key: Some(alert_key(user_id, period_end)),
            },
            now,
        )?;
        if e.created {
            created += 1;
        } else {
            existing += 1;
        }
    }
    Ok(
        json!({"days_before": days, "candidates": rows.len(), "enqueued": created, "already_enqueued": existing}),
    )
}

enum AlertPlan {
    Done(Json),
    Send(Notification),
}

/// `expiry-alert`: exactly one delivered alert per user and period, even across crashes.
///
/// 1. In a transaction: if `notifications` already holds the key, or the subscription no
///    longer ends at that time in an alertable status, complete the job and stop.
/// 2. Deliver to the notifier with the key (at-least-once: a crash after this step means
///    delivering again on retry, which an idempotent notifier turns into a no-op).
/// 3. In one transaction: insert the `notifications` row (UNIQUE key) **and** complete the
///    job, fenced by the lease; if the lease was lost, both roll back.
pub async fn expiry_alert(ctx: &Ctx, job: &Job) -> Result<Finish, JobError> {
    let user_id = int_field(&job.payload, "user_id").unwrap_or_default();
    let period_end = int_field(&job.payload, "period_end").unwrap_or_default();
    let key = alert_key(user_id, period_end);
    let lease = job.lease();
    let now = ctx.now;
    let plan = {
        let (key, lease) = (key.clone(), lease.clone());
        ctx.db
            .transaction(move |c| {
                let skip = |c: &mut dyn Conn, reason: &str| -> Result<AlertPlan, JobError> {
                    let result = json!({"key": key, "skipped": reason});
                    queue::complete(c, &lease, &result, now)?;
                    Ok(AlertPlan::Done(result))
                };
                if c.query_opt(
                    "SELECT 1 FROM notifications WHERE idempotency_key = $1",
                    &[key.as_str().into()],
                )?
                .is_some()
                {
                    return skip(c, "already sent");
                }
                let Some(sub) = c.query_opt(
                    "SELECT status, current_period_end, plan FROM subscriptions WHERE user_id = $1",
                    &[user_id.into()],
                )?
                else {
                    return skip(c, "no subscription");
                };
                let status = sub.text(0)?;
                let alertable =
                    SubscriptionStatus::from_str(&status).is_ok_and(|s| ALERTABLE.contains(&s));
                if sub.int(1)? != period_end || !alertable {
                    return skip(c, "subscription changed");
                }
                let plan = sub.text(2)?;
                let days_left = ((period_end - now).max(0) + DAY - 1) / DAY;
                Ok(AlertPlan::Send(Notification {
                    key: key.clone(),
                    kind: Kind::ExpiryAlert.as_str().to_owned(),
                    user_id,
                    subject: format!(
                        "your {plan} subscription ends in {days_left} day{}",
                        if days_left == 1 { "" } else { "s" }
                    ),
                    body: json!({"user_id": user_id, "status": status, "plan": plan,
                                 "period_end": rfc3339(period_end), "days_left": days_left}),
                    created_at: now,
                }))
            })
            .await?
    };
    let note = match plan {
        AlertPlan::Done(result) => return Ok(Finish::Completed(result)),
        AlertPlan::Send(n) => n,
    };
    let delivery = ctx.notifier.deliver(&note).await?;
    match ctx.settings.test_hook {
        Some(TestHook::HangAfterNotify) => {
            tracing::warn!(key = %note.key, "test hook: delivered, hanging before commit");
            std::future::pending::<()>().await;
        }
        Some(TestHook::AbortAfterNotify) => {
            tracing::warn!(key = %note.key, "test hook: delivered, aborting before commit");
            std::process::abort();
        }
        None => {}
    }
    let result = json!({"key": key, "delivery": match delivery {
        Delivery::Delivered => "delivered",
        Delivery::AlreadyDelivered => "already delivered",
    }});
    let job_id = job.id;
    let out = result.clone();
    ctx.db
        .transaction(move |c| {
            record_notification(c, &note, Some(job_id), now)?;
            queue::complete(c, &lease, &out, now)
        })
        .await?;
    Ok(Finish::Completed(result))
}

fn record_notification(
    c: &mut dyn Conn,
    n: &Notification,
    job_id: Option<i64>,
    now: i64,
) -> Result<(), JobError> {
    c.execute(
        "INSERT INTO notifications (idempotency_key, kind, user_id, body, job_id, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        &[
            n.key.as_str().into(),
            n.kind.as_str().into(),
            n.user_id.into(),
            serde_json::to_string(n).unwrap_or_default().into(),
            job_id.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// `expire-subscriptions`: [`SWEPT`] statuses whose period ended at or before `now`.
pub fn expire_subscriptions(c: &mut dyn Conn, now: i64) -> Result<Json, JobError> {
    // The state machine is fitness-data's: only statuses that may become expired are swept.
    let from: Vec<SubscriptionStatus> = SWEPT
        .iter()
        .copied()
        .filter(|s| s.can_become(SubscriptionStatus::Expired))
        .collect();
    let n = c.execute(
        &format!(
            "UPDATE subscriptions SET status = 'expired', updated_at = $1 \
             WHERE status IN ({}) AND current_period_end <= $1",
            in_list(&from)
        ),
        &[now.into()],
    )?;
    Ok(json!({"expired": n}))
}

/// Per content id: (favorites, base score in micro-points).
pub type Scores = BTreeMap<i64, (i64, i64)>;

/// The ranking's base score of every content item: `(favorites, micro-points)`, and the
/// reference time (`meta.dataset_now`, else `now`). Same formula as `fitness_data::ranking`.
pub fn scores(c: &mut dyn Conn, now: i64) -> Result<(i64, Scores), JobError> {
    let reference = match c.query_opt("SELECT value FROM meta WHERE key = 'dataset_now'", &[])? {
        Some(r) => r.int(0)?,
        None => now,
    };
    let mut out: BTreeMap<i64, (i64, i64)> = c
        .query("SELECT id FROM content ORDER BY id", &[])?
        .iter()
        .map(|r| r.int(0).map(|id| (id, (0, 0))))
        .collect::<Result<_, _>>()?;
    let rows = c.query(
        "SELECT content_id, CASE WHEN created_at >= $1 THEN 0 ELSE ($1 - created_at) / 86400 END AS age_days, \
         COUNT(*) FROM favorites GROUP BY content_id, age_days",
        &[reference.into()],
    )?;
    for r in &rows {
        let (id, age, n) = (r.int(0)?, r.int(1)?, r.int(2)?);
        let e = out.entry(id).or_default();
        e.0 += n;
        e.1 += n * ranking::weight_for_age_days(age);
    }
    Ok((reference, out))
}

/// `ranking-recompute`: rewrites `content_scores` in one transaction.
pub fn recompute_scores(c: &mut dyn Conn, now: i64) -> Result<Json, JobError> {
    let (reference, scores) = scores(c, now)?;
    c.execute("DELETE FROM content_scores", &[])?;
    let mut favorites = 0;
    for (id, (n, score)) in &scores {
        favorites += n;
        c.execute(
            "INSERT INTO content_scores (content_id, favorites, score, reference_time, computed_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[(*id).into(), (*n).into(), (*score).into(), reference.into(), now.into()],
        )?;
    }
    Ok(json!({"items": scores.len(), "favorites": favorites, "reference_time": rfc3339(reference)}))
}

/// `favorite-counts`: recounts favorites per content into `favorite_counts` and reports
/// every row whose stored count was wrong or missing (drift).
pub fn reconcile_counts(c: &mut dyn Conn, now: i64) -> Result<Json, JobError> {
    let actual = c.query(
        "SELECT c.id, COUNT(f.content_id) FROM content c LEFT JOIN favorites f ON f.content_id = c.id \
         GROUP BY c.id ORDER BY c.id",
        &[],
    )?;
    let stored: BTreeMap<i64, i64> = c
        .query("SELECT content_id, favorites FROM favorite_counts", &[])?
        .iter()
        .map(|r| Ok((r.int(0)?, r.int(1)?)))
        .collect::<Result<_, JobError>>()?;
    let initial = stored.is_empty();
    let (mut drifted, mut examples) = (0_i64, Vec::new());
    let mut seen = HashSet::new();
    for r in &actual {
        let (id, n) = (r.int(0)?, r.int(1)?);
        seen.insert(id);
        let before = stored.get(&id).copied();
        if before != Some(n) {
            if !initial {
                drifted += 1;
                if examples.len() < 10 {
                    examples.push(json!({"content_id": id, "stored": before, "actual": n}));
                }
            }
            c.execute(
                "INSERT INTO favorite_counts (content_id, favorites, counted_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (content_id) DO UPDATE SET favorites = excluded.favorites, counted_at = excluded.counted_at",
                &[id.into(), n.into(), now.into()],
            )?;
        }
    }
    for id in stored.keys().filter(|id| !seen.contains(id)) {
        drifted += 1;
        c.execute(
            "DELETE FROM favorite_counts WHERE content_id = $1",
            &[(*id).into()],
        )?;
    }
    Ok(
        json!({"content": actual.len(), "initial": initial, "drifted": drifted, "examples": examples}),
    )
}

fn content_row(r: &Row) -> Result<Content, JobError> {
    let corrupt = |field, value: String| JobError::Corrupt { field, value };
    let cat = r.text(3)?;
    let int = r.text(4)?;
    Ok(Content {
        id: r.int(0)?,
        title: r.text(1)?,
        description: r.text(2)?,
        category: Category::from_str(&cat).map_err(|_| corrupt("content.category", cat))?,
        intensity: Intensity::from_str(&int).map_err(|_| corrupt("content.intensity", int))?,
        duration_minutes: r.int(5)?,
        instructor_id: r.int(6)?,
        published_at: Timestamp(r.int(7)?),
    })
}

fn prefs_row(r: &Row) -> Result<Preferences, JobError> {
    let intensity = r
        .opt_text(2)?
        .map(|i| {
            Intensity::from_str(&i).map_err(|_| JobError::Corrupt {
                field: "preferences.intensity",
                value: i,
            })
        })
        .transpose()?;
    let cats = r.text(1)?;
    Ok(Preferences {
        user_id: r.int(0)?,
        categories: fitness_data::queries::parse_categories(&cats).map_err(|_| {
            JobError::Corrupt {
                field: "preferences.categories",
                value: cats,
            }
        })?,
        intensity,
        max_duration_minutes: r.opt_int(3)?,
        email_opt_in: r.int(4)? != 0,
        updated_at: Timestamp(r.int(5)?),
    })
}

/// The top `limit` items for `prefs`, by the ranking's personalised score.
pub fn top_for(
    content: &[Content],
    scores: &Scores,
    prefs: &Preferences,
    limit: usize,
) -> Vec<Json> {
    let mut scored: Vec<(i64, &Content)> = content
        .iter()
        .map(|c| {
            let base = scores.get(&c.id).map_or(0, |s| s.1);
            (
                ranking::personalise(base, ranking::preference_percent(c, Some(prefs))),
                c,
            )
        })
        .collect();
    scored.sort_by(|a, b| ranking::ranks_before((a.0, a.1.id), (b.0, b.1.id)));
    scored
        .into_iter()
        .take(limit)
        .map(|(score, c)| {
            json!({"content_id": c.id, "title": c.title, "category": c.category,
                   "intensity": c.intensity, "duration_minutes": c.duration_minutes,
                   "score": ranking::score_points(score)})
        })
        .collect()
}

/// `weekly-digest`: each user whose preferences have `email_opt_in` gets their top items
/// once per ISO week (key `weekly-digest:{user}:{week}`). Each user's delivery is recorded
/// in its own transaction, so a crash mid-run resumes with the users not yet recorded.
pub async fn weekly_digest(ctx: &Ctx, job: &Job) -> Result<Json, JobError> {
    let now = ctx.now;
    let week = iso_week(now);
    let limit = int_field(&job.payload, "items")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(ctx.settings.digest_items);
    let w = week.clone();
    let (content, scores, users, sent) = ctx
        .db
        .transaction(move |c| {
            let (_, scores) = scores(c, now)?;
            let content = c
                .query(
                    "SELECT id, title, description, category, intensity, duration_minutes, instructor_id, published_at \
                     FROM content ORDER BY id",
                    &[],
                )?
                .iter()
                .map(content_row)
                .collect::<Result<Vec<_>, _>>()?;
            let users = c
                .query(
                    "SELECT user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at \
                     FROM preferences WHERE email_opt_in = 1 ORDER BY user_id",
                    &[],
                )?
                .iter()
                .map(prefs_row)
                .collect::<Result<Vec<_>, _>>()?;
            let sent: HashSet<String> = c
                .query(
                    "SELECT idempotency_key FROM notifications WHERE kind = 'weekly-digest' AND idempotency_key LIKE $1",
                    &[format!("weekly-digest:%:{w}").into()],
                )?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<_, _>>()?;
            Ok((content, scores, users, sent))
        })
        .await?;
    let (mut delivered, mut already) = (0, 0);
    for prefs in &users {
        let key = digest_key(prefs.user_id, &week);
        if sent.contains(&key) {
            already += 1;
            continue;
        }
        let note = Notification {
            key,
            kind: Kind::WeeklyDigest.as_str().to_owned(),
            user_id: prefs.user_id,
            subject: format!("your top picks for {week}"),
            body: json!({"week": week, "items": top_for(&content, &scores, prefs, limit)}),
            created_at: now,
        };
        match ctx.notifier.deliver(&note).await? {
            Delivery::Delivered => delivered += 1,
            Delivery::AlreadyDelivered => already += 1,
        }
        let job_id = job.id;
        ctx.db
            .transaction(move |c| record_notification(c, &note, Some(job_id), now))
            .await?;
    }
    Ok(json!({"week": week, "users": users.len(), "delivered": delivered, "already_sent": already}))
}

#[cfg(test)]
mod tests {
    use fitness_data::time::DATASET_NOW;

    use super::*;

    #[test]
    fn keys_and_weeks() {
        assert_eq!(alert_key(4, 100), "expiry-alert:4:100");
        // 2025-06-01 is the Sunday of ISO week 22; the Monday after starts week 23.
        assert_eq!(iso_week(DATASET_NOW), "2025-W22");
        assert_eq!(iso_week(DATASET_NOW + DAY), "2025-W23");
        // 2024-12-30 (Monday) belongs to 2025-W01.
        assert_eq!(iso_week(1_735_516_800), "2025-W01");
        assert_eq!(digest_key(9, "2025-W22"), "weekly-digest:9:2025-W22");
    }

    #[test]
    fn swept_statuses_may_all_become_expired() {
        for s in SWEPT {
            assert!(s.can_become(SubscriptionStatus::Expired), "{s}");
        }
    }
}
