//! Formations: `create_formation()`, `drop_formation()`, `enable_secondary()`,
//! `disable_secondary()`.

use fsm::Formation;
use fsm::register;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::{formation_not_found, or_raise, raise, sql_error};
use crate::fmgr::{Args, Value, return_bool, return_record, return_void, v1_function};
use crate::locks::{self, Mode};
use crate::store;

v1_function!(pg_finfo_pgaf_create_formation);

/// `pgautofailover.create_formation(formation_id, kind, dbname, opt_secondary,
/// number_sync_standbys)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_create_formation(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "create_formation") };
    let id = args.text(0, "formation_id");
    let kind_name = args.text(1, "kind");
    let dbname = args.name(2, "dbname");
    let opt_secondary = args.bool(3, "opt_secondary");
    let number_sync_standbys = args.i32(4, "number_sync_standbys");

    let kind = or_raise(register::check_new_formation(
        &id,
        &kind_name,
        &dbname,
        number_sync_standbys,
    ));
    locks::lock_formation(&id, Mode::Exclusive);
    if store::formation(&id).is_some() {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("formation \"{id}\" already exists"),
            Some("Use another formation name, or drop it first.".to_string()),
        ));
    }
    let formation = Formation {
        id,
        kind,
        dbname,
        opt_secondary,
        number_sync_standbys,
    };
    store::insert_formation(&formation);
    store::notify_log(&format!(
        "Created formation \"{}\" of kind {} for database \"{}\"",
        formation.id,
        kind.as_str(),
        formation.dbname
    ));
    return_record(
        &args,
        &[
            Value::Text(formation.id.clone()),
            Value::Text(kind.as_str().to_string()),
            Value::Name(formation.dbname.clone()),
            Value::Bool(formation.opt_secondary),
            Value::I32(formation.number_sync_standbys),
        ],
    )
}

v1_function!(pg_finfo_pgaf_drop_formation);

/// `pgautofailover.drop_formation(formation_id)`: only a formation without nodes.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_drop_formation(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "drop_formation") };
    let id = args.text(0, "formation_id");
    locks::lock_formation(&id, Mode::Exclusive);
    store::formation_or_raise(&id);
    let nodes = store::formation_nodes(&id).len();
    if nodes > 0 {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("formation \"{id}\" still has {nodes} node(s)"),
            Some("Remove its nodes first with pg_autoctl drop node.".to_string()),
        ));
    }
    if store::delete_formation(&id) == 0 {
        formation_not_found(&id);
    }
    store::notify_log(&format!("Dropped formation \"{id}\""));
    return_void(&args)
}

fn set_secondary(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &'static str,
    enabled: bool,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, name) };
    let id = args.text(0, "formation_id");
    locks::lock_formation(&id, Mode::Exclusive);
    if !store::set_opt_secondary(&id, enabled) {
        formation_not_found(&id);
    }
    store::notify_log(&format!(
        "{} secondary nodes in formation \"{id}\"",
        if enabled { "Enabled" } else { "Disabled" }
    ));
    return_bool(&args, true)
}

v1_function!(pg_finfo_pgaf_enable_secondary);

/// `pgautofailover.enable_secondary(formation_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_enable_secondary(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    set_secondary(fcinfo, "enable_secondary", true)
}

v1_function!(pg_finfo_pgaf_disable_secondary);

/// `pgautofailover.disable_secondary(formation_id)`: refused while standbys exist.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_disable_secondary(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    set_secondary(fcinfo, "disable_secondary", false)
}
