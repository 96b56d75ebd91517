//! Lets `DROP DATABASE` through: a health check worker stays connected to a database that has
//! the extension, and Postgres refuses to drop a database someone is connected to. A
//! `ProcessUtility` hook asks that worker to exit first; the launcher does not restart it once
//! the database is gone.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::HEALTH_CHECK;

static mut PREVIOUS_HOOK: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hook (from `_PG_init`, once per process).
pub fn install() {
    // SAFETY: called once from _PG_init while loading the library, before any query runs
    unsafe {
        PREVIOUS_HOOK = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(pgaf_process_utility);
    }
}

/// Sends SIGTERM to the health check workers connected to `database`.
fn stop_health_workers(database: pg_sys::Oid) {
    // SAFETY: reads the backend status snapshot of this transaction; signals other processes
    unsafe {
        let backends = pg_sys::pgstat_fetch_stat_numbackends();
        for beid in 1..=backends {
            let entry = pg_sys::pgstat_fetch_stat_local_beentry(beid);
            if entry.is_null() {
                continue;
            }
            let status = &(*entry).backendStatus;
            if status.st_databaseid != database
                || status.st_backendType != pg_sys::BackendType::B_BG_WORKER
            {
                continue;
            }
            let kind = pg_sys::GetBackgroundWorkerTypeByPid(status.st_procpid);
            if !kind.is_null() && CStr::from_ptr(kind).to_bytes() == HEALTH_CHECK.as_bytes() {
                libc::kill(status.st_procpid, libc::SIGTERM);
            }
        }
    }
}

/// The hook: Postgres's `ProcessUtility` signature, hence its eight arguments.
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn pgaf_process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: pstmt is the statement being executed, as passed by Postgres
    unsafe {
        let utility = (*pstmt).utilityStmt;
        if !utility.is_null() && (*utility).type_ == pg_sys::NodeTag::T_DropdbStmt {
            let stmt = utility as *mut pg_sys::DropdbStmt;
            let database = pg_sys::get_database_oid((*stmt).dbname, true);
            if database != pg_sys::InvalidOid {
                stop_health_workers(database);
            }
        }
        match PREVIOUS_HOOK {
            Some(previous) => previous(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}
