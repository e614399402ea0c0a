//! The wall clock, injectable: services stamp writes and `generated_at` with [`Clock::now`],
//! tests pin it with [`Clock::fixed`] so a dry run and a real call answer the same bytes.

use std::fmt;
use std::sync::Arc;

/// A source of "now" in unix seconds; cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(fitness_data::time::now_unix))
    }

    /// A clock stopped at `unix` seconds.
    pub fn fixed(unix: i64) -> Self {
        Self(Arc::new(move || unix))
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now = {})", self.now())
    }
}
