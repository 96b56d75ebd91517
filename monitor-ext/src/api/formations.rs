//! Formations: `create_formation()`, `drop_formation()`, `enable_secondary()`,
//! `disable_secondary()`.

use fsm::Formation;
use fsm::protocol::api::{create_formation, drop_formation, enable_secondary};
use fsm::register;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::{formation_not_found, or_raise, raise, sql_error};
use crate::fmgr::{Args, Value, return_bool, return_record, return_void};
use crate::locks::{self, Mode};
use crate::store;

/// `pgautofailover.create_formation(formation_id, kind, dbname, opt_secondary,
/// number_sync_standbys)`.
pub(crate) fn create_formation(args: &Args) -> pg_sys::Datum {
    let id = args.get(create_formation::FORMATION_ID);
    let kind_name = args.get(create_formation::KIND);
    let dbname = args.get(create_formation::DBNAME);
    let opt_secondary = args.get(create_formation::OPT_SECONDARY);
    let number_sync_standbys = args.get(create_formation::NUMBER_SYNC_STANDBYS);

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
        args,
        &[
            Value::Text(formation.id.clone()),
            Value::Text(kind.as_str().to_string()),
            Value::Name(formation.dbname.clone()),
            Value::Bool(formation.opt_secondary),
            Value::I32(formation.number_sync_standbys),
        ],
    )
}

/// `pgautofailover.drop_formation(formation_id)`: only a formation without nodes.
pub(crate) fn drop_formation(args: &Args) -> pg_sys::Datum {
    let id = args.get(drop_formation::FORMATION_ID);
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
    return_void(args)
}

fn set_secondary(args: &Args, enabled: bool) -> pg_sys::Datum {
    let id = args.get(enable_secondary::FORMATION_ID);
    locks::lock_formation(&id, Mode::Exclusive);
    if !store::set_opt_secondary(&id, enabled) {
        formation_not_found(&id);
    }
    store::notify_log(&format!(
        "{} secondary nodes in formation \"{id}\"",
        if enabled { "Enabled" } else { "Disabled" }
    ));
    return_bool(args, true)
}

/// `pgautofailover.enable_secondary(formation_id)`.
pub(crate) fn enable_secondary(args: &Args) -> pg_sys::Datum {
    set_secondary(args, true)
}

/// `pgautofailover.disable_secondary(formation_id)`: refused while standbys exist.
pub(crate) fn disable_secondary(args: &Args) -> pg_sys::Datum {
    set_secondary(args, false)
}
