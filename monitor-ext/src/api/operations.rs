//! Operator actions: `perform_failover()`, `perform_promotion()`, `start_maintenance()`,
//! `stop_maintenance()`, `remove_node()`.

use fsm::{Node, api};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Decision;
use crate::errors::{or_raise, raise, sql_error};
use crate::fmgr::{Args, return_bool, return_void, v1_function};
use crate::locks::{self, Mode};
use crate::store;

fn node_or_raise(node_id: i64) -> (Node, String) {
    store::node_by_id(node_id).unwrap_or_else(|| {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("couldn't find node with nodeid {node_id}"),
            Some("List the nodes with pg_autoctl show state.".to_string()),
        ))
    })
}

/// Loads the group of `node` under its locks.
fn decision_for(node: &Node, formation_id: &str) -> Decision {
    Decision::load(formation_id, node.group_id)
}

v1_function!(pg_finfo_pgaf_perform_failover);

/// `pgautofailover.perform_failover(formation_id, group_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_perform_failover(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "perform_failover") };
    let formation_id = args.text(0, "formation_id");
    let group_id = args.i32(1, "group_id");
    let mut decision = Decision::load(&formation_id, group_id);
    or_raise(api::perform_failover(&mut decision.group));
    decision.commit();
    return_void(&args)
}

v1_function!(pg_finfo_pgaf_perform_promotion);

/// `pgautofailover.perform_promotion(formation_id, node_name)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_perform_promotion(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "perform_promotion") };
    let formation_id = args.text(0, "formation_id");
    let node = super::named_node_or_raise(&formation_id, &args.text(1, "node_name"));
    let mut decision = decision_for(&node, &formation_id);
    let promoted = or_raise(api::perform_promotion(&mut decision.group, node.id));
    decision.commit();
    return_bool(&args, promoted)
}

v1_function!(pg_finfo_pgaf_start_maintenance);

/// `pgautofailover.start_maintenance(node_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_start_maintenance(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "start_maintenance") };
    let (node, formation_id) = node_or_raise(args.i64(0, "node_id"));
    let mut decision = decision_for(&node, &formation_id);
    let done = or_raise(api::start_maintenance(&mut decision.group, node.id));
    decision.commit();
    return_bool(&args, done)
}

v1_function!(pg_finfo_pgaf_stop_maintenance);

/// `pgautofailover.stop_maintenance(node_id)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_stop_maintenance(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "stop_maintenance") };
    let (node, formation_id) = node_or_raise(args.i64(0, "node_id"));
    let mut decision = decision_for(&node, &formation_id);
    let done = or_raise(api::stop_maintenance(&mut decision.group, node.id));
    decision.commit();
    return_bool(&args, done)
}

fn remove(args: &Args, node: Node, formation_id: &str, force: bool) -> pg_sys::Datum {
    locks::lock_formation(formation_id, Mode::Exclusive);
    let mut decision = Decision::load_locked(formation_id, node.group_id);
    let done = or_raise(api::remove_node(&mut decision.group, node.id, force));
    decision.commit();
    return_bool(args, done)
}

v1_function!(pg_finfo_pgaf_remove_node_by_nodeid);

/// `pgautofailover.remove_node(node_id, force)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_remove_node_by_nodeid(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "remove_node") };
    let (node, formation_id) = node_or_raise(args.i64(0, "node_id"));
    remove(&args, node, &formation_id, args.bool(1, "force"))
}

v1_function!(pg_finfo_pgaf_remove_node_by_host);

/// `pgautofailover.remove_node(node_host, node_port, force)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_remove_node_by_host(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "remove_node") };
    let host = args.text(0, "node_host");
    let port = args.i32(1, "node_port");
    let Some((node, formation_id)) = store::node_by_host(&host, port) else {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "couldn't find node with hostname {} and port {port}",
                fsm::vocab::shown(&host)
            ),
            Some("List the nodes with pg_autoctl show state.".to_string()),
        ));
    };
    remove(&args, node, &formation_id, args.bool(2, "force"))
}
