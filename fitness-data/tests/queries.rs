//! The shared queries against a generated database.

use fitness_data::DataError;
use fitness_data::models::{Category, Intensity, Preferences, SubscriptionStatus};
use fitness_data::queries::{self, ContentFilter, UserPatch};
use fitness_data::time::{DATASET_NOW, Timestamp};

use crate::small_db;

#[test]
fn favorites_add_list_remove() {
    let conn = small_db(1, 30);
    let before = queries::favorites(&conn, 3).unwrap();
    let free = (1..=100)
        .find(|c| !before.iter().any(|f| f.content_id == *c))
        .unwrap();
    queries::add_favorite(&conn, 3, free, DATASET_NOW + 10).unwrap();
    let after = queries::favorites(&conn, 3).unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[0].content_id, free, "newest first");
    let dup = queries::add_favorite(&conn, 3, free, DATASET_NOW + 11).unwrap_err();
    assert!(matches!(dup, DataError::Conflict(_)), "{dup}");
    assert!(matches!(
        queries::add_favorite(&conn, 3, 9_999, 0),
        Err(DataError::NotFound {
            what: "content",
            id: 9_999
        })
    ));
    queries::remove_favorite(&conn, 3, free).unwrap();
    assert!(matches!(
        queries::remove_favorite(&conn, 3, free),
        Err(DataError::NotFound { .. })
    ));
}

#[test]
fn preferences_round_trip() {
    let conn = small_db(1, 10);
    let p = Preferences {
        user_id: 4,
        categories: vec![Category::Dance, Category::Yoga],
        intensity: Some(Intensity::High),
        max_duration_minutes: Some(25),
        email_opt_in: true,
        updated_at: Timestamp(DATASET_NOW),
    };
    queries::put_preferences(&conn, &p).unwrap();
    assert_eq!(queries::preferences(&conn, 4).unwrap(), Some(p));
}

#[test]
fn cancel_follows_the_state_machine() {
    let conn = small_db(42, 200);
    let active: i64 = conn
        .query_row(
            "SELECT user_id FROM subscriptions WHERE status = 'active' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let s = queries::cancel_subscription(&conn, active, DATASET_NOW + 5).unwrap();
    assert_eq!(s.status, SubscriptionStatus::Cancelled);
    assert_eq!(s.cancelled_at, Some(Timestamp(DATASET_NOW + 5)));
    let again = queries::cancel_subscription(&conn, active, DATASET_NOW + 6).unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("subscription of user {active} is already cancelled")
    );
}

#[test]
fn content_filters_and_pages() {
    let conn = small_db(1, 10);
    let all = queries::list_content(
        &conn,
        &ContentFilter {
            per_page: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.total, 100);
    let f = ContentFilter {
        category: Some(Category::Yoga),
        max_duration: Some(30),
        per_page: 5,
        ..Default::default()
    };
    let page = queries::list_content(&conn, &f).unwrap();
    let expected = all
        .items
        .iter()
        .filter(|c| c.category == Category::Yoga && c.duration_minutes <= 30)
        .count();
    assert_eq!(page.total as usize, expected);
    assert!(page.items.len() <= 5);
    assert!(page.items.windows(2).all(|w| w[0].id < w[1].id));
}

#[test]
fn search_takes_wildcards_literally() {
    let conn = small_db(1, 10);
    assert!(
        !queries::search_content(&conn, "yoga", 50)
            .unwrap()
            .is_empty()
    );
    assert!(queries::search_content(&conn, "%", 50).unwrap().is_empty());
}

#[test]
fn update_user_rejects_a_taken_email() {
    let conn = small_db(1, 10);
    let err = queries::update_user(
        &conn,
        2,
        &UserPatch {
            email: Some("user3@fitness.example".into()),
            display_name: None,
        },
        0,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "email \"user3@fitness.example\" is already taken"
    );
    let u = queries::update_user(
        &conn,
        2,
        &UserPatch {
            display_name: Some("Two".into()),
            email: None,
        },
        99,
    )
    .unwrap();
    assert_eq!(
        (u.display_name.as_str(), u.updated_at),
        ("Two", Timestamp(99))
    );
}

#[test]
fn booking_respects_capacity() {
    let conn = small_db(1, 300);
    let (class, capacity, booked): (i64, i64, i64) = conn
        .query_row(
            "SELECT c.id, c.capacity, (SELECT COUNT(*) FROM bookings b WHERE b.class_id = c.id) AS n \
             FROM classes c WHERE n < c.capacity ORDER BY c.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM bookings WHERE class_id = ?1) ORDER BY id")
        .unwrap();
    let outsiders: Vec<i64> = stmt
        .query_map([class], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let free = (capacity - booked) as usize;
    for user in &outsiders[..free] {
        queries::book_class(&conn, class, *user, 0).unwrap();
    }
    let again = queries::book_class(&conn, class, outsiders[0], 0).unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("user {} has already booked class {class}", outsiders[0])
    );
    let full = queries::book_class(&conn, class, outsiders[free], 0).unwrap_err();
    assert_eq!(
        full.to_string(),
        format!("class {class} is full ({capacity} places)")
    );
}
