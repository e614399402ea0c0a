//! The subscription state machine, as the service enforces it:
//!
//! ```text
//! trial ──> active ──> past_due ──> expired
//!   │  ╲      │  ↖────────╯ │         ↑
//!   │   ╲─────┼─────────────┼─────────┤
//!   └──> cancelled <────────┘ ────────┘   (cancelled -> expired when the paid period ends)
//! ```
//!
//! The allowed moves are `fitness_data::models::SubscriptionStatus::can_become` (one
//! definition for the legacy, the jobs and this service). This module only turns a refused
//! move into a 409 that names both states.

use fitness_data::models::SubscriptionStatus;
use service_kit::ApiError;

/// Allows `from -> to`, or says why not.
pub fn check(
    user_id: i64,
    from: SubscriptionStatus,
    to: SubscriptionStatus,
) -> Result<(), ApiError> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(refused(user_id, from, to))
    }
}

/// The 409 for a refused move.
pub fn refused(user_id: i64, from: SubscriptionStatus, to: SubscriptionStatus) -> ApiError {
    let message = if to == SubscriptionStatus::Cancelled && !from.is_cancellable() {
        format!(
            "subscription of user {user_id} is already {from}: only trial, active or past_due subscriptions can be cancelled"
        )
    } else {
        format!("subscription of user {user_id} is {from}, it cannot become {to}")
    };
    ApiError::InvalidTransition {
        message,
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use SubscriptionStatus::*;

    use super::*;

    #[test]
    fn every_pair() {
        let allowed = [
            (Trial, Active),
            (Trial, Cancelled),
            (Trial, Expired),
            (Active, PastDue),
            (Active, Cancelled),
            (Active, Expired),
            (PastDue, Active),
            (PastDue, Cancelled),
            (PastDue, Expired),
            (Cancelled, Expired),
        ];
        for from in SubscriptionStatus::ALL {
            for to in SubscriptionStatus::ALL {
                assert_eq!(
                    check(1, *from, *to).is_ok(),
                    allowed.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
        let e = check(9, Expired, Cancelled).unwrap_err();
        assert_eq!(e.body()["from"], "expired");
        assert_eq!(e.body()["to"], "cancelled");
        assert!(e.to_string().contains("user 9 is already expired"), "{e}");
    }
}
