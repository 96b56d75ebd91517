//! The backend's globals and services the extension reads or sets, each behind a safe
//! function that states why the access is sound. Everything here runs on the backend's main
//! thread (the only one that may call into Postgres).

use fsm::Timestamp;
use pgrx::pg_sys;

/// The database this backend is connected to.
pub fn database_id() -> u32 {
    // SAFETY: a plain read of a backend global, set once the backend connected to a database
    // (every caller runs in a SQL function or a worker connected to one)
    unsafe { pg_sys::MyDatabaseId.to_u32() }
}

/// Now, from the system clock (changes within a transaction).
pub fn now() -> Timestamp {
    Timestamp(pg_sys::TimestampTz::from(pgrx::datetime::clock_timestamp()))
}

/// When the server started.
pub fn server_start() -> Timestamp {
    // SAFETY: a plain read of a global the postmaster sets before any backend starts
    Timestamp(unsafe { pg_sys::PgStartTime })
}

/// Reads the configuration files again (after a SIGHUP).
pub fn reload_configuration() {
    // SAFETY: what a backend does on SIGHUP, outside any transaction, on its main thread
    unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
}

/// The backend's `lock_timeout` (ms, 0: none).
pub fn lock_timeout() -> i32 {
    // SAFETY: a plain read of the backend's own GUC variable
    unsafe { pg_sys::LockTimeout }
}

/// Sets the backend's `lock_timeout` variable directly (ms); callers restore it.
pub fn set_lock_timeout(ms: i32) {
    // SAFETY: the backend's own GUC variable, read by ProcSleep when a lock wait starts
    unsafe { pg_sys::LockTimeout = ms };
}

/// Whether the current transaction wrote before this call (it has a transaction id).
pub fn transaction_wrote() -> bool {
    // SAFETY: reads the current transaction's state; never assigns an id
    unsafe { pg_sys::GetTopTransactionIdIfAny() != pg_sys::InvalidTransactionId }
}
