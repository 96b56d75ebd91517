//! Lets `DROP DATABASE` through: a health check worker stays connected to a database that has
//! the extension, and Postgres refuses to drop a database someone is connected to. A
//! `ProcessUtility` hook asks that worker to exit first; the launcher does not restart it once
//! the database is gone.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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
    let pids = Spi::connect(|client| {
        let rows = client.select(
            "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datid = $1 AND backend_type = $2",
            None,
            &[database.into(), HEALTH_CHECK.into()],
        )?;
        rows.map(|row| row.get::<i32>(1))
            .collect::<Result<Vec<Option<i32>>, _>>()
    });
    for pid in pids.unwrap_or_default().into_iter().flatten() {
        // a worker gone meanwhile is what we want
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
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
