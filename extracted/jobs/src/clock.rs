//! The worker's clock. Every job, lease and schedule reads "now" from a [`Clock`] so tests
//! can move time by hand ([`Clock::manual`]) and the demo can run on the dataset's clock
//! ([`Clock::starting_at`] with `meta.dataset_now`), which keeps advancing in real time so
//! leases and backoff still expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug)]
enum Source {
    System,
    Offset(i64),
    Manual(AtomicI64),
}

/// A source of "now" in unix seconds; cheap to clone (clones share a manual clock).
#[derive(Debug, Clone)]
pub struct Clock(Arc<Source>);

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Arc::new(Source::System))
    }

    /// A clock that reads `start` now and then advances with the wall clock.
    pub fn starting_at(start: i64) -> Self {
        Self(Arc::new(Source::Offset(
            start - fitness_data::time::now_unix(),
        )))
    }

    /// A clock that only moves when told to ([`Clock::set`], [`Clock::advance`]).
    pub fn manual(start: i64) -> Self {
        Self(Arc::new(Source::Manual(AtomicI64::new(start))))
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        match &*self.0 {
            Source::System => fitness_data::time::now_unix(),
            Source::Offset(d) => fitness_data::time::now_unix() + d,
            Source::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Sets a manual clock; no effect on the others.
    pub fn set(&self, unix: i64) {
        if let Source::Manual(t) = &*self.0 {
            t.store(unix, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward by `secs`; no effect on the others.
    pub fn advance(&self, secs: i64) {
        if let Source::Manual(t) = &*self.0 {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_moves_only_when_told() {
        let c = Clock::manual(100);
        let c2 = c.clone();
        c.advance(5);
        assert_eq!(c2.now(), 105);
        c.set(7);
        assert_eq!(c2.now(), 7);
        let s = Clock::starting_at(1_000);
        assert!((1_000..1_010).contains(&s.now()));
        s.set(0);
        assert!(s.now() >= 1_000);
    }
}
