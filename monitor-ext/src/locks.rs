//! The advisory locks that serialise decisions within a formation and within a group.
//!
//! Every call that decides for a group (heartbeats, registration, API operations) holds the
//! group's lock in exclusive mode until its transaction ends, so two nodes of one group never
//! decide concurrently from stale snapshots. Formation-wide changes (registration, the number of
//! sync standbys) take the formation lock exclusively; per-group calls take it shared.
//!
//! No call waits for a lock longer than `pgautofailover.group_lock_timeout` (it fails with
//! `lock_not_available`, which keepers retry), and the health check worker terminates a session
//! that has held one of these locks in a transaction for longer than that
//! ([`HELD_LOCKS_QUERY`]): one forgotten `BEGIN` cannot freeze a group's failover.

use pgrx::pg_sys;

/// Lock class of the formation lock (advisory lock field 4); user advisory locks use 1 and 2.
const FORMATION_LOCK_CLASS: u16 = 10;
/// Lock class of the group lock.
const GROUP_LOCK_CLASS: u16 = 11;

/// How a lock is held.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Compatible with other shared holders.
    Shared,
    /// Excludes everyone else.
    Exclusive,
}

/// FNV-1a: a stable 32-bit hash of the formation id for the lock tag.
fn hash(value: &str) -> u32 {
    value.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Lists the client sessions that hold a formation or group lock of this database in a
/// transaction older than `$1` milliseconds (the health check worker terminates them).
pub const HELD_LOCKS_QUERY: &str = "\
    SELECT DISTINCT a.pid, a.usename::pg_catalog.text, a.state, \
           (EXTRACT(epoch FROM pg_catalog.clock_timestamp() - a.xact_start) * 1000)::bigint \
      FROM pg_catalog.pg_locks AS l \
      JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted \
       AND l.database = (SELECT oid FROM pg_catalog.pg_database \
                          WHERE datname = pg_catalog.current_database()) \
       AND l.objsubid IN (10, 11) \
       AND a.backend_type = 'client backend' \
       AND a.pid <> pg_catalog.pg_backend_pid() \
       AND a.xact_start < pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1 / 1000.0)";

fn tag(field2: u32, field3: u32, class: u16) -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        locktag_field1: crate::backend::database_id(),
        locktag_field2: field2,
        locktag_field3: field3,
        locktag_field4: class,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

fn lockmode(mode: Mode) -> pg_sys::LOCKMODE {
    (match mode {
        Mode::Shared => pg_sys::ShareLock,
        Mode::Exclusive => pg_sys::ExclusiveLock,
    }) as pg_sys::LOCKMODE
}

/// Restores the session's `lock_timeout` when dropped, also when the wait ends in an ERROR.
struct LockTimeoutGuard(i32);

impl Drop for LockTimeoutGuard {
    fn drop(&mut self) {
        crate::backend::set_lock_timeout(self.0);
    }
}

/// Waits for the lock, at most `group_lock_timeout` (or the session's shorter
/// `lock_timeout`); past that the statement fails with `lock_not_available` (55P03).
fn acquire(field2: u32, field3: u32, class: u16, mode: Mode) {
    let bound = crate::settings::group_lock_timeout_ms();
    let session = crate::backend::lock_timeout();
    let _restore = LockTimeoutGuard(session);
    if bound > 0 && (session == 0 || session > bound) {
        // the guard restores it
        crate::backend::set_lock_timeout(bound);
    }
    lock(field2, field3, class, mode, false);
}

/// Takes the lock only if nobody holds it in a conflicting mode; returns whether it did.
fn try_acquire(field2: u32, field3: u32, class: u16, mode: Mode) -> bool {
    lock(field2, field3, class, mode, true) != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// Takes a transaction-scoped advisory lock (waiting for it unless `dont_wait`).
fn lock(
    field2: u32,
    field3: u32,
    class: u16,
    mode: Mode,
    dont_wait: bool,
) -> pg_sys::LockAcquireResult::Type {
    let tag = tag(field2, field3, class);
    // SAFETY: a transaction-scoped advisory lock on a tag we built, released at commit or
    // abort; a wait ends in an ERROR past lock_timeout
    unsafe { pg_sys::LockAcquire(&tag, lockmode(mode), false, dont_wait) }
}

/// Locks a formation until the end of the transaction.
pub fn lock_formation(formation_id: &str, mode: Mode) {
    acquire(0, hash(formation_id), FORMATION_LOCK_CLASS, mode);
}

/// Locks a group of a formation until the end of the transaction.
pub fn lock_group(formation_id: &str, group_id: i32, mode: Mode) {
    acquire(hash(formation_id), group_id as u32, GROUP_LOCK_CLASS, mode);
}

/// Locks a formation (shared) and one of its groups (exclusive) if both are free; returns
/// whether it did (for the health check worker, which must never wait on a session).
pub fn try_lock_group(formation_id: &str, group_id: i32) -> bool {
    try_acquire(0, hash(formation_id), FORMATION_LOCK_CLASS, Mode::Shared)
        && try_acquire(
            hash(formation_id),
            group_id as u32,
            GROUP_LOCK_CLASS,
            Mode::Exclusive,
        )
}
