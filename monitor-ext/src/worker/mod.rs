//! Background workers: a launcher, and one health check worker per database with the
//! extension.
//!
//! A background worker stays connected to one database for life, and the monitor's tables may
//! live in any database. So a launcher (connected to no database) lists the databases every few
//! seconds and starts a health check worker in each one that has none; a worker in a database
//! without the extension exits at once, so it holds no worker slot and no connection, and is
//! tried again at the next scan.

pub mod drop_database;
mod health;
mod probe_io;

use std::collections::HashMap;
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::settings;

/// The launcher's name, as seen in `pg_stat_activity.backend_type`.
const LAUNCHER: &str = "pg_auto_failover monitor";
/// The health check workers' type.
const HEALTH_CHECK: &str = "pg_auto_failover health check";

/// Registers the launcher (only possible while the library is preloaded).
pub fn register_launcher() {
    BackgroundWorkerBuilder::new(LAUNCHER)
        .set_type(LAUNCHER)
        .set_library("pgautofailover")
        .set_function("pgaf_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

/// The databases workers run in: connectable, not templates.
fn databases() -> Vec<(pg_sys::Oid, String)> {
    let mut found = Vec::new();
    // SAFETY: a catalog scan of pg_database inside a transaction, tuples read at once
    unsafe {
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_database;
            if (*form).datallowconn && !(*form).datistemplate {
                let name = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                found.push(((*form).oid, name));
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
    }
    found
}

fn start_health_worker(oid: pg_sys::Oid, name: &str) -> Option<DynamicBackgroundWorker> {
    let mut worker_name = format!("{HEALTH_CHECK} {name}");
    worker_name.truncate(90);
    BackgroundWorkerBuilder::new(&worker_name)
        .set_type(HEALTH_CHECK)
        .set_library("pgautofailover")
        .set_function("pgaf_health_check_main")
        .enable_spi_access()
        .set_argument(Some(pg_sys::Datum::from(oid)))
        .set_restart_time(None)
        .load_dynamic()
        .ok()
}

/// The launcher's main loop.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut workers: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    loop {
        if BackgroundWorker::sighup_received() {
            crate::backend::reload_configuration();
        }
        let dbs = BackgroundWorker::transaction(databases);
        workers.retain(|oid, worker| {
            dbs.iter().any(|(o, _)| o.to_u32() == *oid)
                && !matches!(
                    worker.pid(),
                    Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied)
                )
        });
        for (oid, name) in &dbs {
            if let std::collections::hash_map::Entry::Vacant(slot) = workers.entry(oid.to_u32()) {
                match start_health_worker(*oid, name) {
                    Some(worker) => {
                        slot.insert(worker);
                    }
                    None => pgrx::warning!(
                        "could not start the pg_auto_failover health check worker for database \
                         \"{name}\": raise max_worker_processes"
                    ),
                }
            }
        }
        let scan_every =
            Duration::from_millis(settings::health_check_period_ms().clamp(1_000, 5_000));
        if !BackgroundWorker::wait_latch(Some(scan_every)) {
            break;
        }
    }
}

pub use health::pgaf_health_check_main;
