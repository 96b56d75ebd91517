//! `pgautofailover`: the pg_auto_failover 2.0 compatible monitor, as a Postgres extension.
//!
//! The monitor knows every node of every formation, assigns each the replication state it
//! must be in, and records why. This crate is the thin layer between Postgres and the `fsm`
//! crate, which takes every decision:
//! - `api/`: the SQL functions (`node_active`, `register_node`, `perform_failover`, ...);
//! - [`store`]: reading and writing the tables, events and notifications;
//! - [`beats`]: the latest heartbeats kept in shared memory between table writes;
//! - [`leases`]: the leases keepers hold, in shared memory;
//! - [`locks`]: the per-formation and per-group advisory locks;
//! - [`worker`]: the background workers that probe every node's Postgres;
//! - [`settings`]: the `pgautofailover.*` GUCs;
//! - [`fmgr`], [`errors`]: the calling convention and error reporting.
//!
//! The library must be in `shared_preload_libraries`: it starts background workers.

use pgrx::pg_sys;
use pgrx::prelude::*;

pub mod api;
pub mod backend;
pub mod beats;
pub mod errors;
pub mod fmgr;
pub mod leases;
pub mod locks;
pub mod settings;
pub mod store;
pub mod worker;

pgrx::pg_module_magic!();

/// Called when the library is loaded: defines the settings and, at server start, registers
/// the health check launcher. Loading it any other way is an error.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::define();
    // SAFETY: _PG_init runs while the library loads, before any query, single-threaded: a
    // postmaster flag is read, the GUC prefix reserved, the environment edited
    let preloading = unsafe {
        pg_sys::MarkGUCPrefixReserved(c"pgautofailover".as_ptr());
        // Rust backtraces in the DETAIL of every SQL error are noise for monitor users; keep
        // them only when asked for explicitly.
        if std::env::var_os("PGAUTOFAILOVER_BACKTRACE").is_none() {
            std::env::remove_var("RUST_BACKTRACE");
        }
        pg_sys::process_shared_preload_libraries_in_progress
    };
    if !preloading {
        errors::raise(errors::sql_error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "pgautofailover can only be loaded via shared_preload_libraries".to_string(),
            Some(
                "Add pgautofailover to shared_preload_libraries in postgresql.conf and restart \
                 Postgres."
                    .to_string(),
            ),
        ));
    }
    beats::init();
    leases::init();
    worker::register_launcher();
    worker::drop_database::install();
}
