//! The job kinds this worker knows, their names on the wire and in the `jobs.kind` column,
//! their default schedules, and payload validation (shared by the CLI and `POST /jobs/{kind}`).

use serde_json::Value as Json;

use crate::error::JobError;

/// A kind of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Scan: enqueue one `expiry-alert` per subscription ending within N days.
    ExpiryAlerts,
    /// Deliver one expiry alert (payload `{"user_id", "period_end"}`), once per period.
    ExpiryAlert,
    /// Move active/past_due/cancelled subscriptions past their period end to expired.
    ExpireSubscriptions,
    /// Recompute `content_scores` (decayed favorite sums) for the ranking.
    RankingRecompute,
    /// Recount favorites per content into `favorite_counts`, report drift.
    FavoriteCounts,
    /// Send each opted-in user their top items for the ISO week, once per week.
    WeeklyDigest,
    /// Delete expired login sessions.
    SessionCleanup,
}

impl Kind {
    /// Every kind.
    pub const ALL: &'static [Kind] = &[
        Kind::ExpiryAlerts,
        Kind::ExpiryAlert,
        Kind::ExpireSubscriptions,
        Kind::RankingRecompute,
        Kind::FavoriteCounts,
        Kind::WeeklyDigest,
        Kind::SessionCleanup,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExpiryAlerts => "expiry-alerts",
            Self::ExpiryAlert => "expiry-alert",
            Self::ExpireSubscriptions => "expire-subscriptions",
            Self::RankingRecompute => "ranking-recompute",
            Self::FavoriteCounts => "favorite-counts",
            Self::WeeklyDigest => "weekly-digest",
            Self::SessionCleanup => "session-cleanup",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<Self, JobError> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| JobError::UnknownKind(name.to_owned()))
    }

    /// The default cron schedule (seconds first, UTC), or `None` for on-demand only.
    pub fn default_schedule(self) -> Option<&'static str> {
        match self {
            Self::ExpiryAlerts => Some("0 0 8 * * *"),
            Self::ExpiryAlert => None,
            Self::ExpireSubscriptions => Some("0 15 * * * *"),
            Self::RankingRecompute => Some("0 */10 * * * *"),
            Self::FavoriteCounts => Some("0 30 3 * * *"),
            Self::WeeklyDigest => Some("0 0 9 * * Mon"),
            Self::SessionCleanup => Some("0 0 * * * *"),
        }
    }

    /// The suffix of its `JOBS_SCHEDULE_*` variable, e.g. `EXPIRY_ALERTS`.
    pub fn env_suffix(self) -> String {
        self.as_str().replace('-', "_").to_ascii_uppercase()
    }

    /// Checks `payload` for this kind; `{}` (or null) is valid for every kind but
    /// `expiry-alert`.
    pub fn validate(self, payload: &Json) -> Result<(), JobError> {
        let bad = |reason: String| JobError::InvalidPayload {
            kind: self.as_str().to_owned(),
            reason,
        };
        let obj = match payload {
            Json::Null => return self.validate(&Json::Object(Default::default())),
            Json::Object(o) => o,
            other => return Err(bad(format!("expected a JSON object, got {other}"))),
        };
        let allowed: &[&str] = match self {
            Self::ExpiryAlerts => &["days_before"],
            Self::ExpiryAlert => &["user_id", "period_end"],
            Self::WeeklyDigest => &["items"],
            _ => &[],
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown field {k:?} (allowed: {})",
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        let positive = |name: &str, required: bool, max: i64| -> Result<(), JobError> {
            match obj.get(name) {
                None if required => Err(bad(format!("field {name:?} is required"))),
                None => Ok(()),
                Some(v) => match v.as_i64() {
                    Some(n) if (1..=max).contains(&n) => Ok(()),
                    _ => Err(bad(format!(
                        "field {name:?} must be an integer from 1 to {max}, got {v}"
                    ))),
                },
            }
        };
        match self {
            Self::ExpiryAlerts => positive("days_before", false, 365),
            Self::ExpiryAlert => {
                positive("user_id", true, i64::MAX)?;
                positive("period_end", true, i64::MAX)
            }
            Self::WeeklyDigest => positive("items", false, 50),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()).unwrap(), *k);
        }
        assert!(
            Kind::parse("nope")
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
        assert_eq!(Kind::ExpiryAlerts.env_suffix(), "EXPIRY_ALERTS");
    }

    #[test]
    fn payloads_are_checked() {
        assert!(Kind::SessionCleanup.validate(&json!({})).is_ok());
        assert!(Kind::SessionCleanup.validate(&Json::Null).is_ok());
        assert!(Kind::SessionCleanup.validate(&json!([1])).is_err());
        let e = Kind::SessionCleanup.validate(&json!({"x": 1})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid payload for session-cleanup: unknown field \"x\" (allowed: none)"
        );
        assert!(
            Kind::ExpiryAlerts
                .validate(&json!({"days_before": 3}))
                .is_ok()
        );
        assert!(
            Kind::ExpiryAlerts
                .validate(&json!({"days_before": 0}))
                .is_err()
        );
        assert!(Kind::ExpiryAlert.validate(&json!({"user_id": 3})).is_err());
        assert!(
            Kind::ExpiryAlert
                .validate(&json!({"user_id": 3, "period_end": 1_748_736_000}))
                .is_ok()
        );
    }
}
