//! The per-thread pool of idle (or finishing) HTTP/1 connections, keyed by upstream authority.

use std::cell::RefCell;

use super::Pooled;
use crate::config::Upstream;

/// (pool key, connections): a few upstreams per table, so a linear scan beats hashing.
type Pools = Vec<(u64, Vec<Pooled>)>;

thread_local! {
    static POOLS: RefCell<Pools> = const { RefCell::new(Vec::new()) };
}

fn list_mut(pools: &mut Pools, key: u64) -> &mut Vec<Pooled> {
    let i = match pools.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            pools.push((key, Vec::new()));
            pools.len() - 1
        }
    };
    &mut pools[i].1
}

/// Takes a connection that can send a request now; drops closed ones on the way.
pub(super) fn checkout(key: u64) -> Option<Pooled> {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = &mut pools.iter_mut().find(|(k, _)| *k == key)?.1;
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].sender.is_closed() {
                list.swap_remove(i);
            } else if list[i].sender.is_ready() {
                return Some(list.swap_remove(i));
            }
        }
        None
    })
}

/// Returns a connection whose response head has arrived; it becomes ready when the body ends.
pub(super) fn checkin(up: &Upstream, conn: Pooled) {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = list_mut(&mut pools, up.pool_key);
        if list.len() < up.max_idle_per_thread {
            list.push(conn);
        }
    });
}

/// Drops this thread's pools whose key is not in `keep` (upstreams removed by a reload).
pub fn prune(keep: &[u64]) {
    POOLS.with(|pools| pools.borrow_mut().retain(|(k, _)| keep.contains(k)));
}
