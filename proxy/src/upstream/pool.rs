//! The per-thread pool of idle (or finishing) HTTP/1 connections, keyed by upstream authority.

use std::cell::RefCell;
use std::collections::HashMap;

use super::Sender;
use crate::config::Upstream;

thread_local! {
    static POOLS: RefCell<HashMap<u64, Vec<Sender>>> = RefCell::new(HashMap::new());
}

/// Takes a connection that can send a request now; drops closed ones on the way.
pub(super) fn checkout(key: u64) -> Option<Sender> {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = pools.get_mut(&key)?;
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].is_closed() {
                list.swap_remove(i);
            } else if list[i].is_ready() {
                return Some(list.swap_remove(i));
            }
        }
        None
    })
}

/// Returns a connection whose response head has arrived; it becomes ready when the body ends.
pub(super) fn checkin(up: &Upstream, sender: Sender) {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = pools.entry(up.pool_key).or_default();
        if list.len() < up.max_idle_per_thread {
            list.push(sender);
        }
    });
}

/// Drops this thread's pools whose key is not in `keep` (upstreams removed by a reload).
pub fn prune(keep: &[u64]) {
    POOLS.with(|pools| pools.borrow_mut().retain(|k, _| keep.contains(k)));
}

/// Number of pooled connections on this thread for `key` (for tests and debugging).
pub fn idle_connections(key: u64) -> usize {
    POOLS.with(|pools| pools.borrow().get(&key).map_or(0, Vec::len))
}
