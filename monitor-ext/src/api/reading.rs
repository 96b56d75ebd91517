//! Functions that read the group: `get_nodes()`, `get_primary()`, `get_other_nodes()`,
//! `synchronous_standby_names()`.

use fsm::{Group, Node, api};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::clock;
use crate::errors::{or_raise, raise, sql_error};
use crate::fmgr::{Args, Value, return_record, return_rows, return_text, v1_function};
use crate::{settings, store};

/// The row `get_nodes()` and `get_other_nodes()` return for a node.
fn node_row(node: &Node) -> Vec<Value> {
    vec![
        Value::I64(node.id),
        Value::Text(node.name.clone()),
        Value::Text(node.host.clone()),
        Value::I32(node.port),
        Value::Lsn(node.reported_lsn.0),
        Value::Bool(node.reported.can_take_writes()),
    ]
}

fn load_group(formation_id: &str, group_id: i32) -> Group {
    let formation = store::formation_or_raise(formation_id);
    let nodes = store::group_nodes(formation_id, group_id);
    Group::new(
        formation,
        group_id,
        nodes,
        settings::fsm_settings(),
        clock(),
    )
}

v1_function!(pg_finfo_pgaf_get_nodes);

/// `pgautofailover.get_nodes(formation_id, group_id)`: every node, or every node of one group.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_get_nodes(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "get_nodes") };
    let formation_id = args.text(0, "formation_id");
    store::formation_or_raise(&formation_id);
    let nodes = match args.opt_i32(1) {
        None => store::formation_nodes(&formation_id),
        Some(group_id) => store::group_nodes(&formation_id, group_id),
    };
    let rows: Vec<Vec<Value>> = nodes.iter().map(node_row).collect();
    return_rows(&args, &rows)
}

v1_function!(pg_finfo_pgaf_get_primary);

/// `pgautofailover.get_primary(formation_id, group_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_get_primary(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "get_primary") };
    let formation_id = args.text(0, "formation_id");
    let group_id = args.i32(1, "group_id");
    let group = load_group(&formation_id, group_id);
    let Some(primary) = group.primary_or_demoted().and_then(|id| group.get(id)) else {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "group has no writable node right now".to_string(),
            Some(format!(
                "Check group {group_id} of formation \"{formation_id}\" with pg_autoctl show state."
            )),
        ));
    };
    return_record(
        &args,
        &[
            Value::I64(primary.id),
            Value::Text(primary.name.clone()),
            Value::Text(primary.host.clone()),
            Value::I32(primary.port),
        ],
    )
}

v1_function!(pg_finfo_pgaf_get_other_nodes);

/// `pgautofailover.get_other_nodes(nodeid [, current_state])`: the other nodes of the node's
/// group, optionally only those with that goal state.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_get_other_nodes(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "get_other_nodes") };
    let node_id = args.i64(0, "nodeid");
    let state = if args.count() > 1 {
        Some(args.state(1, "current_state"))
    } else {
        None
    };
    let Some((node, formation_id)) = store::node_by_id(node_id) else {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("node {node_id} is not registered"),
            None,
        ));
    };
    let nodes = store::group_nodes(&formation_id, node.group_id);
    let rows: Vec<Vec<Value>> = nodes
        .iter()
        .filter(|n| n.id != node_id && n.goal != fsm::ReplicationState::Dropped)
        .filter(|n| state.is_none_or(|s| n.goal == s))
        .map(node_row)
        .collect();
    return_rows(&args, &rows)
}

v1_function!(pg_finfo_pgaf_synchronous_standby_names);

/// `pgautofailover.synchronous_standby_names(formation_id, group_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_synchronous_standby_names(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "synchronous_standby_names") };
    let formation_id = args.text(0, "formation_id");
    let group_id = args.i32(1, "group_id");
    let group = load_group(&formation_id, group_id);
    return_text(&args, &or_raise(api::synchronous_standby_names(&group)))
}
