//! The leases granted to keepers (`fsm::lease`, `fsm::lease_table`), in shared memory.
//!
//! A keeper that holds a lease says so once per connection with
//! `SET pgautofailover.keeper_lease = <ms>`; every `node_active()` on that connection then
//! renews the node's lease, counted from when the monitor received it on its monotonic
//! clock. Decisions see each lease as an expiry instant on the decision's clock.

use fsm::Node;
use fsm::lease::MonitorLease;
use fsm::lease_table::{Grant, LeaseTable};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PGRXSharedMemory, PgLwLock, pg_shmem_init};

use crate::settings;

/// The table, as stored in shared memory.
#[derive(Clone, Copy, Default)]
pub struct SharedLeases(LeaseTable);

// SAFETY: plain data (no pointers), fixed size, Copy
unsafe impl PGRXSharedMemory for SharedLeases {}

static LEASES: PgLwLock<SharedLeases> = unsafe { PgLwLock::new(c"pgautofailover leases") };

/// Reserves the shared memory (from `_PG_init`, while preloading).
pub fn init() {
    pg_shmem_init!(LEASES);
}

/// The system-wide monotonic clock, in milliseconds (the same in every backend).
fn monotonic_ms() -> u64 {
    // clock_gettime(CLOCK_MONOTONIC) cannot fail on Linux (it exists, the pointer is ours)
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            u64::try_from(ts.tv_sec()).unwrap_or(0) * 1000
                + u64::try_from(ts.tv_nsec()).unwrap_or(0) / 1_000_000
        }
        Err(_) => 0,
    }
}

fn database() -> u32 {
    crate::backend::database_id()
}

/// After a `node_active()` of `node_id`: renews its lease when this session's keeper holds
/// one, else forgets any (the node is handled the 2.0 way).
pub fn renew_or_forget(node_id: i64) {
    let lease_ms = settings::keeper_lease_ms();
    let database = database();
    if lease_ms == 0 {
        if LEASES.share().0.get(database, node_id).is_some() {
            LEASES.exclusive().0.forget(database, node_id);
        }
        return;
    }
    let now = monotonic_ms();
    let grant = Grant {
        database,
        node_id,
        renewed_ms: now,
        lease_ms,
    };
    let _ = LEASES.exclusive().0.renew(grant, now);
}

/// Gives every node of a decision its lease, as an instant on the decision's clock `now`.
pub fn attach(nodes: &mut [Node], now: fsm::Timestamp) {
    let database = database();
    let mono = monotonic_ms();
    let table = LEASES.share();
    for node in nodes {
        node.lease = table.0.get(database, node.id).map(|g| {
            let age = i64::try_from(mono.saturating_sub(g.renewed_ms)).unwrap_or(i64::MAX);
            MonitorLease::from_age(now, age, i64::try_from(g.lease_ms).unwrap_or(i64::MAX))
        });
    }
}
