//! The deterministic data generator: same [`GenerateConfig`] -> same rows, byte for byte.
//!
//! How determinism is kept: one seeded ChaCha8 stream per table ([`DetRng`]), every timestamp
//! relative to the fixed [`DATASET_NOW`], rows produced in id order from plain `Vec`s and
//! `BTreeSet`s (never a `HashMap`'s iteration order), and floats only in `+` and `/`, whose results
//! IEEE 754 fixes (no `ln`/`pow` from a platform libm; see `rng.rs`). The whole load runs in one transaction with prepared
//! statements, which keeps 10,000 users to a few seconds.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use crate::error::{DataError, Result};
use crate::models::{Category, Intensity, Plan, SubscriptionStatus};
use crate::password::{demo_email, demo_password, hash_password};
use crate::rng::{DetRng, Zipf};
use crate::schema::{self, SCHEMA_VERSION};
use crate::time::{DATASET_NOW, DAY};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateConfig {
    pub seed: u64,
    pub users: u32,
    pub content: u32,
    pub instructors: u32,
    pub classes: u32,
}

impl Default for GenerateConfig {
    /// The demo dataset: seed 42, 10,000 users, 2,000 content items, 50 instructors, 400 classes.
    fn default() -> Self {
        Self {
            seed: 42,
            users: 10_000,
            content: 2_000,
            instructors: 50,
            classes: 400,
        }
    }
}

impl GenerateConfig {
    /// A small dataset for tests: `users` users and proportionally fewer of everything else.
    pub fn small(seed: u64, users: u32) -> Self {
        Self {
            seed,
            users,
            content: 100,
            instructors: 8,
            classes: 20,
        }
    }

    fn validate(&self) -> Result<()> {
        let check = |setting, value: u32, min| {
            if value < min {
                Err(DataError::Config {
                    setting,
                    value: value.to_string(),
                    reason: "too small",
                })
            } else {
                Ok(())
            }
        };
        check("users", self.users, 1)?;
        check("content", self.content, 1)?;
        check("instructors", self.instructors, 1)?;
        check("classes", self.classes, 0)?;
        if self.users > 10_000_000 {
            return Err(DataError::Config {
                setting: "users",
                value: self.users.to_string(),
                reason: "more than 10,000,000",
            });
        }
        Ok(())
    }
}

/// How many rows each table received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub users: u64,
    pub instructors: u64,
    pub content: u64,
    pub favorites: u64,
    pub preferences: u64,
    pub subscriptions: u64,
    pub workouts: u64,
    pub classes: u64,
    pub bookings: u64,
    pub sessions: u64,
}

// One stream per table, so the tables are independent of each other's draws.
const STREAM_USERS: u64 = 1;
const STREAM_INSTRUCTORS: u64 = 2;
const STREAM_CONTENT: u64 = 3;
const STREAM_FAVORITES: u64 = 4;
const STREAM_PREFERENCES: u64 = 5;
const STREAM_SUBSCRIPTIONS: u64 = 6;
const STREAM_WORKOUTS: u64 = 7;
const STREAM_CLASSES: u64 = 8;
const STREAM_BOOKINGS: u64 = 9;
const STREAM_SESSIONS: u64 = 10;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Finn", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Leo",
    "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wes",
    "Xenia", "Yuki", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Adams", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva",
    "Tanaka", "Novak", "Weber", "Young",
];
const ADJECTIVES: &[&str] = &[
    "Sunrise",
    "Power",
    "Gentle",
    "Core",
    "Full-Body",
    "Express",
    "Deep",
    "Endurance",
    "Morning",
    "Evening",
    "Beginner",
    "Advanced",
    "Rhythm",
    "Balance",
    "Total",
    "Quick",
    "Restorative",
    "Explosive",
    "Steady",
    "Flow",
];
const NOUNS: &[&str] = &[
    "Session",
    "Workout",
    "Flow",
    "Burn",
    "Builder",
    "Blast",
    "Reset",
    "Challenge",
    "Journey",
    "Circuit",
    "Ride",
    "Run",
    "Stretch",
    "Groove",
    "Practice",
];
const DURATIONS: &[i64] = &[5, 10, 15, 20, 30, 45, 60];
const MAX_DURATIONS: &[i64] = &[15, 20, 30, 45, 60];
const CAPACITIES: &[i64] = &[10, 15, 20, 30];

/// Creates the schema in the empty database `conn` and fills it, in one transaction.
pub fn generate(conn: &mut Connection, cfg: &GenerateConfig) -> Result<Summary> {
    cfg.validate()?;
    let tx = conn.transaction()?;
    schema::create(&tx)?;
    let mut summary = Summary::default();
    let now = DATASET_NOW;
    {
        let mut meta = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
        for (k, v) in [
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("seed", cfg.seed.to_string()),
            ("dataset_now", now.to_string()),
            ("generated_users", cfg.users.to_string()),
            ("generated_content", cfg.content.to_string()),
        ] {
            meta.execute(params![k, v])?;
        }
    }
    let users = i64::from(cfg.users);
    let n_content = i64::from(cfg.content);
    let n_instructors = i64::from(cfg.instructors);

    // users
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_USERS);
        let mut stmt = tx.prepare(
            "INSERT INTO users (id, email, display_name, password_salt, password_hash, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for id in 1..=users {
            let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
            let salt = rng.hex(16);
            let hash = hash_password(&salt, &demo_password(id));
            let role = if id == 1 { "admin" } else { "member" };
            let created = now - rng.range(30 * DAY, 3 * 365 * DAY);
            let updated = created + rng.range(0, now - created);
            stmt.execute(params![
                id,
                demo_email(id),
                name,
                salt,
                hash,
                role,
                created,
                updated
            ])?;
            summary.users += 1;
        }
    }

    // instructors
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_INSTRUCTORS);
        let mut stmt = tx.prepare(
            "INSERT INTO instructors (id, name, bio, specialty, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for id in 1..=n_instructors {
            let first = rng.pick(FIRST_NAMES);
            let name = format!("{first} {}", rng.pick(LAST_NAMES));
            let specialty = *rng.pick(Category::ALL);
            let years = rng.range(2, 20);
            let bio = format!("{first} has taught {specialty} for {years} years.");
            let created = now - rng.range(365 * DAY, 5 * 365 * DAY);
            stmt.execute(params![id, name, bio, specialty, created])?;
            summary.instructors += 1;
        }
    }

    // content
    let mut content_published = Vec::with_capacity(cfg.content as usize);
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_CONTENT);
        let mut stmt = tx.prepare(
            "INSERT INTO content (id, title, description, category, intensity, duration_minutes, instructor_id, published_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for id in 1..=n_content {
            let category = *rng.pick(Category::ALL);
            let intensity = *rng.pick(Intensity::ALL);
            let duration = *rng.pick(DURATIONS);
            let instructor = rng.range(1, n_instructors);
            let title = format!(
                "{} {} {} #{id}",
                rng.pick(ADJECTIVES),
                title_case(category.as_str()),
                rng.pick(NOUNS)
            );
            let description = format!(
                "A {duration}-minute {intensity}-intensity {category} class by instructor {instructor}."
            );
            let published = now - rng.range(DAY, 3 * 365 * DAY);
            content_published.push(published);
            stmt.execute(params![
                id,
                title,
                description,
                category,
                intensity,
                duration,
                instructor,
                published
            ])?;
            summary.content += 1;
        }
    }

    // favorites: a Zipf long tail over a seeded popularity order, plus a "trending" Zipf
    // over another order whose favorites are all recent (so the recency decay matters).
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_FAVORITES);
        let mut all_time: Vec<i64> = (1..=n_content).collect();
        rng.shuffle(&mut all_time);
        let mut trending: Vec<i64> = (1..=n_content).collect();
        rng.shuffle(&mut trending);
        let zipf = Zipf::new(all_time.len());
        let mut stmt = tx.prepare(
            "INSERT INTO favorites (user_id, content_id, created_at) VALUES (?1, ?2, ?3)",
        )?;
        let cap = (n_content as usize).min(60);
        for user in 1..=users {
            // Geometric (continue with probability 88%), mean about 7, capped at 60: most users
            // have a few favorites, some have many. Integer draws only, no libm.
            let mut want = 0;
            while want < cap && rng.chance(88) {
                want += 1;
            }
            let mut chosen = BTreeSet::new();
            let mut rows = Vec::with_capacity(want);
            let mut attempts = 0;
            while chosen.len() < want && attempts < want * 10 {
                attempts += 1;
                let is_trending = rng.chance(20);
                let rank = zipf.sample(&mut rng);
                let content = if is_trending {
                    trending[rank]
                } else {
                    all_time[rank]
                };
                let published = content_published[(content - 1) as usize];
                let window = if is_trending { 30 * DAY } else { 730 * DAY };
                let earliest = published.max(now - window);
                let created = rng.range(earliest, now - 1);
                if chosen.insert(content) {
                    rows.push((content, created));
                }
            }
            for (content, created) in rows {
                stmt.execute(params![user, content, created])?;
                summary.favorites += 1;
            }
        }
    }

    // preferences for 85% of users
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_PREFERENCES);
        let mut stmt = tx.prepare(
            "INSERT INTO preferences (user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for user in 1..=users {
            if !rng.chance(85) {
                continue;
            }
            let n = rng.range(1, 3);
            let mut cats: Vec<Category> = Vec::new();
            while cats.len() < n as usize {
                let c = *rng.pick(Category::ALL);
                if !cats.contains(&c) {
                    cats.push(c);
                }
            }
            let cats = cats
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let intensity = rng.chance(70).then(|| *rng.pick(Intensity::ALL));
            let max_duration = rng.chance(50).then(|| *rng.pick(MAX_DURATIONS));
            let opt_in = rng.chance(60);
            let updated = now - rng.range(0, 365 * DAY);
            stmt.execute(params![
                user,
                cats,
                intensity,
                max_duration,
                opt_in,
                updated
            ])?;
            summary.preferences += 1;
        }
    }

    // subscriptions for 90% of users, every state, expiry dates spread around now
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_SUBSCRIPTIONS);
        let mut stmt = tx.prepare(
            "INSERT INTO subscriptions (id, user_id, plan, status, started_at, current_period_end, cancelled_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut id = 0i64;
        for user in 1..=users {
            if !rng.chance(90) {
                continue;
            }
            let plan = if rng.chance(30) {
                Plan::Annual
            } else {
                Plan::Monthly
            };
            let period = if plan == Plan::Annual {
                365 * DAY
            } else {
                30 * DAY
            };
            let roll = rng.below(100);
            let (status, started, end, cancelled) = match roll {
                0..=9 => {
                    let started = now - rng.range(0, 13 * DAY);
                    (SubscriptionStatus::Trial, started, started + 14 * DAY, None)
                }
                10..=59 => {
                    let end = now + rng.range(3600, period);
                    let started = end - period - rng.range(0, 24) * period;
                    (SubscriptionStatus::Active, started, end, None)
                }
                60..=67 => {
                    let end = now - rng.range(3600, 14 * DAY);
                    (
                        SubscriptionStatus::PastDue,
                        end - period * rng.range(1, 12),
                        end,
                        None,
                    )
                }
                68..=79 => {
                    let cancelled = now - rng.range(0, 60 * DAY);
                    let end = cancelled + rng.range(0, 30 * DAY);
                    let started = end - period * rng.range(1, 12);
                    (SubscriptionStatus::Cancelled, started, end, Some(cancelled))
                }
                _ => {
                    let end = now - rng.range(15 * DAY, 365 * DAY);
                    let cancelled = rng.chance(50).then(|| end - rng.range(0, 20 * DAY));
                    (
                        SubscriptionStatus::Expired,
                        end - period * rng.range(1, 12),
                        end,
                        cancelled,
                    )
                }
            };
            let updated = cancelled.unwrap_or(started).max(started);
            id += 1;
            stmt.execute(params![
                id, user, plan, status, started, end, cancelled, updated
            ])?;
            summary.subscriptions += 1;
        }
    }

    // workouts
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_WORKOUTS);
        let mut stmt = tx.prepare(
            "INSERT INTO workouts (id, user_id, content_id, category, duration_minutes, calories, performed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut id = 0i64;
        for user in 1..=users {
            let n = rng.below(11);
            let mut rows = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let content = rng.chance(60).then(|| rng.range(1, n_content));
                let category = *rng.pick(Category::ALL);
                let intensity = *rng.pick(Intensity::ALL);
                let duration = *rng.pick(DURATIONS);
                let per_minute = match intensity {
                    Intensity::Low => 4,
                    Intensity::Medium => 7,
                    Intensity::High => 11,
                };
                let calories = duration * per_minute + rng.range(0, 40);
                let performed = now - rng.range(3600, 180 * DAY);
                rows.push((performed, content, category, duration, calories));
            }
            rows.sort_by_key(|r| r.0);
            for (performed, content, category, duration, calories) in rows {
                id += 1;
                stmt.execute(params![
                    id, user, content, category, duration, calories, performed
                ])?;
                summary.workouts += 1;
            }
        }
    }

    // classes: a week in the past to three weeks ahead, on the hour
    let mut class_caps = Vec::with_capacity(cfg.classes as usize);
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_CLASSES);
        let mut starts: Vec<i64> = (0..cfg.classes)
            .map(|_| now - 7 * DAY + rng.range(0, 28 * 24 - 1) * 3600)
            .collect();
        starts.sort_unstable();
        let mut stmt = tx.prepare(
            "INSERT INTO classes (id, title, instructor_id, category, starts_at, duration_minutes, capacity) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (i, start) in starts.into_iter().enumerate() {
            let id = i as i64 + 1;
            let instructor = rng.range(1, n_instructors);
            let category = *rng.pick(Category::ALL);
            let title = format!("Live {} {}", title_case(category.as_str()), rng.pick(NOUNS));
            let duration = *rng.pick(&[30, 45, 60]);
            let capacity = *rng.pick(CAPACITIES);
            class_caps.push((id, capacity, start));
            stmt.execute(params![
                id, title, instructor, category, start, duration, capacity
            ])?;
            summary.classes += 1;
        }
    }

    // bookings: each class is filled to a random level, some to capacity
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_BOOKINGS);
        let mut stmt = tx.prepare(
            "INSERT INTO bookings (id, class_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut id = 0i64;
        for (class, capacity, start) in class_caps {
            let fill = if rng.chance(15) {
                capacity
            } else {
                rng.range(0, capacity - 1)
            };
            let fill = fill.min(users);
            let mut who = BTreeSet::new();
            while (who.len() as i64) < fill {
                who.insert(rng.range(1, users));
            }
            let mut rows: Vec<(i64, i64)> = who
                .into_iter()
                .map(|user| (start - rng.range(3600, 14 * DAY), user))
                .collect();
            rows.sort_unstable();
            for (created, user) in rows {
                id += 1;
                stmt.execute(params![id, class, user, created])?;
                summary.bookings += 1;
            }
        }
    }

    // a few sessions, most of them long expired (material for the stale-session cleanup job)
    {
        let mut rng = DetRng::new(cfg.seed, STREAM_SESSIONS);
        let mut stmt = tx.prepare(
            "INSERT INTO sessions (token, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for user in 1..=users {
            if !rng.chance(2) {
                continue;
            }
            let token = rng.hex(24);
            let created = now - rng.range(DAY, 90 * DAY);
            stmt.execute(params![token, user, created, created + DAY])?;
            summary.sessions += 1;
        }
    }

    tx.commit()?;
    Ok(summary)
}

fn title_case(word: &str) -> String {
    match word {
        "hiit" => "HIIT".to_owned(),
        _ => {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_users() {
        let mut conn = crate::open_in_memory().unwrap();
        let err = generate(
            &mut conn,
            &GenerateConfig {
                users: 0,
                ..GenerateConfig::small(1, 1)
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid generator setting users = 0: too small"
        );
    }

    #[test]
    fn title_case_words() {
        assert_eq!(title_case("yoga"), "Yoga");
        assert_eq!(title_case("hiit"), "HIIT");
    }
}
