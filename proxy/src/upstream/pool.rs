//! The per-thread pool of idle (or finishing) HTTP/1 connections, keyed by upstream authority.

use std::cell::RefCell;

use super::Pooled;
use super::wire;
use crate::config::Upstream;

/// An upstream's idle connections, of each client.
#[derive(Default)]
struct Idle {
    hyper: Vec<Pooled>,
    wire: Vec<wire::Conn>,
}

/// (pool key, connections): a few upstreams per table, so a linear scan beats hashing.
type Pools = Vec<(u64, Idle)>;

thread_local! {
    static POOLS: RefCell<Pools> = const { RefCell::new(Vec::new()) };
}

fn idle_mut(pools: &mut Pools, key: u64) -> &mut Idle {
    let i = match pools.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            pools.push((key, Idle::default()));
            pools.len() - 1
        }
    };
    &mut pools[i].1
}

/// Takes a connection that can send a request now; drops closed ones on the way.
pub(super) fn checkout(key: u64) -> Option<Pooled> {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = &mut pools.iter_mut().find(|(k, _)| *k == key)?.1.hyper;
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
        let list = &mut idle_mut(&mut pools, up.pool_key).hyper;
        if list.len() < up.max_idle_per_thread {
            list.push(conn);
        }
    });
}

/// Takes the most recently used [`wire`] connection that is still open; drops closed ones.
pub(super) fn checkout_wire(key: u64) -> Option<wire::Conn> {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = &mut pools.iter_mut().find(|(k, _)| *k == key)?.1.wire;
        while let Some(mut conn) = list.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    })
}

/// Returns an idle [`wire`] connection (its last body read to the end).
pub(super) fn checkin_wire(slot: wire::PoolSlot, mut conn: wire::Conn) {
    // Also replaces the waker of the task that used it last: an idle connection must not
    // keep a finished task's memory alive.
    if !conn.is_usable() {
        return;
    }
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = &mut idle_mut(&mut pools, slot.key).wire;
        if list.len() < slot.max_idle {
            list.push(conn);
        }
    });
}

/// Drops this thread's pools whose key is not in `keep` (upstreams removed by a reload).
pub fn prune(keep: &[u64]) {
    POOLS.with(|pools| pools.borrow_mut().retain(|(k, _)| keep.contains(k)));
}
