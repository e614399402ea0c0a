//! The platform's domain types, as stored and as served. Serialising one of these gives the
//! JSON the legacy API returns, field for field and in field order, so an extracted service
//! that uses the same type produces the same bytes.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// An unknown name for one of the enums below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of {expected}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal, { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialised name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                text.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_enum!(
    /// What a piece of content, a class or a workout trains.
    Category, "category", {
        Yoga => "yoga", Hiit => "hiit", Strength => "strength", Cardio => "cardio",
        Pilates => "pilates", Mobility => "mobility", Meditation => "meditation",
        Cycling => "cycling", Running => "running", Dance => "dance",
    }
);

text_enum!(
    /// How hard a session is.
    Intensity, "intensity", { Low => "low", Medium => "medium", High => "high" }
);

text_enum!(
    /// A user's role.
    Role, "role", { Member => "member", Admin => "admin" }
);

text_enum!(
    /// The billing plan of a subscription.
    Plan, "plan", { Monthly => "monthly", Annual => "annual" }
);

text_enum!(
    /// Where a subscription is in its life.
    ///
    /// `trial -> active -> past_due -> expired`; `trial | active | past_due -> cancelled`;
    /// `cancelled -> expired` once the paid period ends.
    SubscriptionStatus, "subscription status", {
        Trial => "trial", Active => "active", PastDue => "past_due",
        Cancelled => "cancelled", Expired => "expired",
    }
);

impl SubscriptionStatus {
    /// Whether a user may cancel a subscription in this state.
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Trial | Self::Active | Self::PastDue)
    }

    /// Whether the state machine allows moving from `self` to `to`.
    pub fn can_become(self, to: Self) -> bool {
        use SubscriptionStatus::*;
        matches!(
            (self, to),
            (Trial, Active | Cancelled | Expired)
                | (Active, PastDue | Cancelled | Expired)
                | (PastDue, Active | Cancelled | Expired)
                | (Cancelled, Expired)
        )
    }
}

/// A user's public profile (never the password fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What login needs to check a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub password_salt: String,
    pub password_hash: String,
}

/// A trainer who leads content and classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instructor {
    pub id: i64,
    pub name: String,
    pub bio: String,
    pub specialty: Category,
    pub created_at: Timestamp,
}

/// A piece of on-demand content (a video class).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub category: Category,
    pub intensity: Intensity,
    pub duration_minutes: i64,
    pub instructor_id: i64,
    pub published_at: Timestamp,
}

/// One row of `favorites`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorite {
    pub user_id: i64,
    pub content_id: i64,
    pub created_at: Timestamp,
}

/// A favorite as listed for its user: the content's headline joined in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FavoriteItem {
    pub content_id: i64,
    pub title: String,
    pub category: Category,
    pub intensity: Intensity,
    pub duration_minutes: i64,
    pub created_at: Timestamp,
}

/// A user's preferences, used to personalise the ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub user_id: i64,
    /// Preferred categories, in the order the user gave them, without duplicates.
    pub categories: Vec<Category>,
    pub intensity: Option<Intensity>,
    pub max_duration_minutes: Option<i64>,
    pub email_opt_in: bool,
    pub updated_at: Timestamp,
}

/// A user's subscription (at most one per user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    pub plan: Plan,
    pub status: SubscriptionStatus,
    pub started_at: Timestamp,
    pub current_period_end: Timestamp,
    pub cancelled_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// A logged workout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workout {
    pub id: i64,
    pub user_id: i64,
    pub content_id: Option<i64>,
    pub category: Category,
    pub duration_minutes: i64,
    pub calories: i64,
    pub performed_at: Timestamp,
}

/// A scheduled live class, with how many places are taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    pub id: i64,
    pub title: String,
    pub instructor_id: i64,
    pub category: Category,
    pub starts_at: Timestamp,
    pub duration_minutes: i64,
    pub capacity: i64,
    pub booked: i64,
}

/// A place in a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: i64,
    pub class_id: i64,
    pub user_id: i64,
    pub created_at: Timestamp,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), *c);
        }
        assert_eq!(
            serde_json::to_string(&SubscriptionStatus::PastDue).unwrap(),
            "\"past_due\""
        );
        let err = "extreme".parse::<Intensity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown intensity \"extreme\"; expected one of low, medium, high"
        );
    }

    #[test]
    fn state_machine() {
        use SubscriptionStatus::*;
        assert!(Active.can_become(Cancelled));
        assert!(!Expired.can_become(Active));
        assert!(!Cancelled.can_become(Active));
        assert!(Trial.is_cancellable() && !Cancelled.is_cancellable() && !Expired.is_cancellable());
    }
}
