//! The advisory locks that serialise decisions within a formation and within a group.
//!
//! Every call that decides for a group (heartbeats, registration, API operations) holds the
//! group's lock in exclusive mode until its transaction ends, so two nodes of one group never
//! decide concurrently from stale snapshots. Formation-wide changes (registration, the number of
//! sync standbys) take the formation lock exclusively; per-group calls take it shared.

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

fn acquire(field2: u32, field3: u32, class: u16, mode: Mode) {
    let lockmode = match mode {
        Mode::Shared => pg_sys::ShareLock,
        Mode::Exclusive => pg_sys::ExclusiveLock,
    } as pg_sys::LOCKMODE;
    // SAFETY: MyDatabaseId is set in any backend connected to a database; the lock is a
    // transaction-scoped advisory lock, released at commit or abort.
    unsafe {
        let tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: field2,
            locktag_field3: field3,
            locktag_field4: class,
            locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
        };
        pg_sys::LockAcquire(&tag, lockmode, false, false);
    }
}

/// Locks a formation until the end of the transaction.
pub fn lock_formation(formation_id: &str, mode: Mode) {
    acquire(0, hash(formation_id), FORMATION_LOCK_CLASS, mode);
}

/// Locks a group of a formation until the end of the transaction.
pub fn lock_group(formation_id: &str, group_id: i32, mode: Mode) {
    acquire(hash(formation_id), group_id as u32, GROUP_LOCK_CLASS, mode);
}
