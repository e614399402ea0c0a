//! Cron-like scheduling. A [`Scheduler`] holds one cron expression per job kind and answers,
//! for an explicit `now`, which kinds are due ([`Scheduler::due`]); it does no I/O and reads
//! no clock. The worker enqueues each due run with the idempotency key
//! `schedule:{kind}:{fire_time}`, so two worker processes (or a restart within the same
//! minute) never enqueue the same scheduled run twice. Runs missed while no worker was up
//! are not caught up: the next fire time is computed from the time the worker starts.
//!
//! Expressions are the `cron` crate's (seconds first: `sec min hour day month weekday
//! [year]`, UTC); a classic five-field expression gets `0` seconds prepended.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::kind::Kind;

/// An expression that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid schedule for {kind} {expr:?}: {reason}")]
pub struct ScheduleError {
    pub kind: String,
    pub expr: String,
    pub reason: String,
}

/// Parses a cron expression for `kind`.
pub fn parse(kind: Kind, expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let trimmed = expr.trim();
    let full = if trimmed.split_whitespace().count() == 5 {
        format!("0 {trimmed}")
    } else {
        trimmed.to_owned()
    };
    cron::Schedule::from_str(&full).map_err(|e| ScheduleError {
        kind: kind.as_str().to_owned(),
        expr: expr.to_owned(),
        reason: e.to_string(),
    })
}

fn next_after(schedule: &cron::Schedule, now: i64) -> Option<i64> {
    let t: DateTime<Utc> = DateTime::from_timestamp(now, 0)?;
    schedule.after(&t).next().map(|d| d.timestamp())
}

struct Entry {
    kind: Kind,
    schedule: cron::Schedule,
    next: Option<i64>,
}

/// The schedules of one worker.
pub struct Scheduler {
    entries: Vec<Entry>,
}

impl Scheduler {
    /// Schedules starting after `now` (the first fire is strictly later than `now`).
    pub fn new(schedules: &[(Kind, String)], now: i64) -> Result<Self, ScheduleError> {
        let mut entries = Vec::new();
        for (kind, expr) in schedules {
            let schedule = parse(*kind, expr)?;
            let next = next_after(&schedule, now);
            entries.push(Entry {
                kind: *kind,
                schedule,
                next,
            });
        }
        Ok(Self { entries })
    }

    /// The kinds due at `now`, each with the fire time it is due for (the latest one if
    /// several passed: missed runs collapse into one). Advances past `now`.
    pub fn due(&mut self, now: i64) -> Vec<(Kind, i64)> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            let mut fired = None;
            while let Some(t) = e.next.filter(|t| *t <= now) {
                fired = Some(t);
                e.next = next_after(&e.schedule, t);
            }
            if let Some(t) = fired {
                out.push((e.kind, t));
            }
        }
        out
    }

    /// The earliest next fire time.
    pub fn next_fire(&self) -> Option<i64> {
        self.entries.iter().filter_map(|e| e.next).min()
    }

    /// The idempotency key of the run of `kind` due at `fire_time`.
    pub fn key(kind: Kind, fire_time: i64) -> String {
        format!("schedule:{kind}:{fire_time}")
    }
}

#[cfg(test)]
mod tests {
    use fitness_data::time::DATASET_NOW;

    use super::*;

    #[test]
    fn due_fires_once_per_tick_and_collapses_missed_runs() {
        // DATASET_NOW is 2025-06-01T00:00:00Z, a Sunday.
        let mut s = Scheduler::new(
            &[
                (Kind::SessionCleanup, "0 0 * * * *".into()),
                (Kind::WeeklyDigest, "0 9 * * Mon".into()),
            ],
            DATASET_NOW,
        )
        .unwrap();
        assert_eq!(s.next_fire(), Some(DATASET_NOW + 3600));
        assert!(s.due(DATASET_NOW + 3599).is_empty());
        assert_eq!(
            s.due(DATASET_NOW + 3600),
            vec![(Kind::SessionCleanup, DATASET_NOW + 3600)]
        );
        assert!(s.due(DATASET_NOW + 3600).is_empty(), "same tick twice");
        // Five hours later: one run for the latest missed hour, not five.
        assert_eq!(
            s.due(DATASET_NOW + 6 * 3600 + 5),
            vec![(Kind::SessionCleanup, DATASET_NOW + 6 * 3600)]
        );
        let monday_9 = DATASET_NOW + 86_400 + 9 * 3600;
        let due = s.due(monday_9);
        assert!(due.contains(&(Kind::WeeklyDigest, monday_9)), "{due:?}");
        assert_eq!(
            Scheduler::key(Kind::WeeklyDigest, monday_9),
            format!("schedule:weekly-digest:{monday_9}")
        );
    }

    #[test]
    fn bad_expressions_are_named() {
        let e = parse(Kind::SessionCleanup, "every hour").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid schedule for session-cleanup \"every hour\": "),
            "{e}"
        );
        for k in Kind::ALL {
            if let Some(expr) = k.default_schedule() {
                parse(*k, expr).unwrap();
            }
        }
    }
}
