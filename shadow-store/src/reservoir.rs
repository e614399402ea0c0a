//! Reservoir slot choice (Algorithm R), per route, from a seeded counter-based RNG.
//!
//! The k-th sampled mismatch of a route (k from 1) goes to slot k-1 while k ≤ n; after
//! that it replaces slot j, with j uniform in [0, k), when j < n — that is, with
//! probability n/k. Every mismatch ever offered is then in the sample with the same
//! probability n/k_total, so rare differences are kept as often as frequent ones per
//! occurrence.
//!
//! The random number for (route, k) is a pure function of the seed, the route and k:
//! ChaCha8 keyed by the seed, stream = xxh3(route), word position = 2k. The same
//! observations therefore give the same store however they were batched, and a restart
//! (k comes from the file) neither replays nor skips random numbers. Pure: no I/O.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Chooses slots for one store.
#[derive(Clone, Debug)]
pub(crate) struct Reservoir {
    rng: ChaCha8Rng,
    capacity: u64,
}

impl Reservoir {
    pub(crate) fn new(seed: u64, capacity: usize) -> Self {
        Reservoir {
            rng: ChaCha8Rng::seed_from_u64(seed),
            capacity: capacity as u64,
        }
    }

    /// The slot the `k`-th (1-based) sampled mismatch of `route` takes, or `None` when it
    /// is not kept.
    pub(crate) fn slot(&mut self, route: &str, k: u64) -> Option<u64> {
        if k == 0 || self.capacity == 0 {
            return None;
        }
        if k <= self.capacity {
            return Some(k - 1);
        }
        let j = self.uniform(route, k, k);
        (j < self.capacity).then_some(j)
    }

    /// Uniform in `[0, bound)`, by multiply-shift (bias below bound / 2^64).
    fn uniform(&mut self, route: &str, k: u64, bound: u64) -> u64 {
        self.rng
            .set_stream(xxhash_rust::xxh3::xxh3_64(route.as_bytes()));
        self.rng.set_word_pos(u128::from(k) * 2);
        let x = self.rng.next_u64();
        ((u128::from(x) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_then_replaces_with_probability_n_over_k() {
        let mut r = Reservoir::new(7, 10);
        for k in 1..=10 {
            assert_eq!(r.slot("r", k), Some(k - 1));
        }
        // Over many k the kept fraction of item k is about 10/k.
        let kept = (1001..=2000).filter(|&k| r.slot("r", k).is_some()).count();
        // Expected sum of 10/k for k in 1001..=2000 ≈ 10·ln 2 ≈ 6.9.
        assert!(kept <= 25, "kept {kept}");
        let kept = (11..=1000).filter(|&k| r.slot("r", k).is_some()).count();
        // Expected ≈ 10·ln(1000/10) ≈ 46.
        assert!((20..=80).contains(&kept), "kept {kept}");
    }

    #[test]
    fn deterministic_per_seed_route_and_k_in_any_order() {
        let mut a = Reservoir::new(1, 5);
        let mut b = Reservoir::new(1, 5);
        let forward: Vec<_> = (6..200).map(|k| a.slot("r", k)).collect();
        let mut backward: Vec<_> = (6..200).rev().map(|k| b.slot("r", k)).collect();
        backward.reverse();
        assert_eq!(forward, backward);
        let other: Vec<_> = (6..200).map(|k| b.slot("s", k)).collect();
        assert_ne!(forward, other, "routes draw from different streams");
        let mut c = Reservoir::new(2, 5);
        let seeded: Vec<_> = (6..200).map(|k| c.slot("r", k)).collect();
        assert_ne!(forward, seeded, "seeds differ");
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut r = Reservoir::new(0, 0);
        assert!((0..100).all(|k| r.slot("r", k).is_none()));
    }
}
