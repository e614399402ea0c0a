//! The generated data has the shape the demo and the jobs rely on.

use fitness_data::models::SubscriptionStatus;
use fitness_data::password::{demo_email, demo_password, verify_password};
use fitness_data::queries;
use fitness_data::schema::{check_version, dataset_now, is_populated};
use fitness_data::time::{DATASET_NOW, DAY};
use fitness_data::{GenerateConfig, generate, open_in_memory};

use crate::small_db;

#[test]
fn demo_passwords_log_in() {
    let conn = small_db(1, 50);
    for id in [1, 2, 50] {
        let c = queries::credentials_by_email(&conn, &demo_email(id))
            .unwrap()
            .unwrap();
        assert_eq!(c.user_id, id);
        assert!(verify_password(
            &c.password_salt,
            &demo_password(id),
            &c.password_hash
        ));
        assert!(!verify_password(
            &c.password_salt,
            "password0",
            &c.password_hash
        ));
    }
    assert_eq!(queries::user(&conn, 1).unwrap().role.as_str(), "admin");
    assert_eq!(queries::user(&conn, 2).unwrap().role.as_str(), "member");
}

#[test]
fn meta_records_the_generation() {
    let conn = small_db(5, 20);
    assert!(is_populated(&conn).unwrap());
    check_version(&conn).unwrap();
    assert_eq!(dataset_now(&conn).unwrap(), DATASET_NOW);
    let fresh = open_in_memory().unwrap();
    assert!(!is_populated(&fresh).unwrap());
    assert!(check_version(&fresh).is_err());
}

#[test]
fn subscriptions_cover_every_state_with_spread_expiry() {
    let conn = small_db(42, 1_000);
    for status in SubscriptionStatus::ALL {
        let (n, min_end, max_end): (i64, i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), MIN(current_period_end), MAX(current_period_end) FROM subscriptions WHERE status = ?1",
                [status.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert!(n >= 20, "{status}: only {n}");
        assert!(max_end - min_end > 5 * DAY, "{status}: expiry not spread");
        match status {
            SubscriptionStatus::Trial | SubscriptionStatus::Active => {
                assert!(min_end > DATASET_NOW, "{status}")
            }
            SubscriptionStatus::PastDue | SubscriptionStatus::Expired => {
                assert!(max_end < DATASET_NOW, "{status}")
            }
            SubscriptionStatus::Cancelled => {}
        }
    }
    // Some active subscriptions end within a week: material for the expiry alerts.
    let soon: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM subscriptions WHERE status = 'active' AND current_period_end < ?1",
            [DATASET_NOW + 7 * DAY],
            |r| r.get(0),
        )
        .unwrap();
    assert!(soon > 10, "{soon}");
}

#[test]
fn favorites_have_a_long_tail() {
    let mut conn = open_in_memory().unwrap();
    let cfg = GenerateConfig {
        content: 500,
        ..GenerateConfig::small(9, 2_000)
    };
    let summary = generate(&mut conn, &cfg).unwrap();
    let mut s = conn
        .prepare("SELECT COUNT(*) AS n FROM favorites GROUP BY content_id ORDER BY n DESC")
        .unwrap();
    let counts: Vec<i64> = s
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let total: i64 = counts.iter().sum();
    assert_eq!(total as u64, summary.favorites);
    let top_decile: i64 = counts.iter().take(counts.len() / 10).sum();
    assert!(
        top_decile * 100 / total > 35,
        "top 10% hold only {top_decile} of {total}"
    );
    assert!(
        counts.len() > 300,
        "tail too short: {} items favorited",
        counts.len()
    );
    assert!(*counts.last().unwrap() <= 3);
}

#[test]
fn every_table_gets_rows() {
    let mut conn = open_in_memory().unwrap();
    let s = generate(&mut conn, &GenerateConfig::small(2, 500)).unwrap();
    assert_eq!(s.users, 500);
    assert_eq!(s.content, 100);
    for (name, n) in [
        ("favorites", s.favorites),
        ("preferences", s.preferences),
        ("subscriptions", s.subscriptions),
        ("workouts", s.workouts),
        ("classes", s.classes),
        ("bookings", s.bookings),
        ("sessions", s.sessions),
    ] {
        assert!(n > 0, "{name} is empty");
    }
}
