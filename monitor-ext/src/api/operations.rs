//! Operator actions: `perform_failover()`, `perform_promotion()`, `start_maintenance()`,
//! `stop_maintenance()`, `remove_node()`.

use fsm::protocol::api::{
    perform_failover, perform_promotion, remove_node_by_host, remove_node_by_nodeid,
    start_maintenance, stop_maintenance,
};
use fsm::{Node, api};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Decision;
use crate::errors::{or_raise, raise, sql_error};
use crate::fmgr::{Args, return_bool, return_void};
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

/// `pgautofailover.perform_failover(formation_id, group_id)`.
pub(crate) fn perform_failover(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(perform_failover::FORMATION_ID);
    let group_id = args.get(perform_failover::GROUP_ID);
    let mut decision = Decision::load(&formation_id, group_id);
    or_raise(api::perform_failover(&mut decision.group));
    decision.commit();
    return_void(args)
}

/// `pgautofailover.perform_promotion(formation_id, node_name)`.
pub(crate) fn perform_promotion(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(perform_promotion::FORMATION_ID);
    let node = super::named_node_or_raise(&formation_id, &args.get(perform_promotion::NODE_NAME));
    let mut decision = decision_for(&node, &formation_id);
    let promoted = or_raise(api::perform_promotion(&mut decision.group, node.id));
    decision.commit();
    return_bool(args, promoted)
}

/// `pgautofailover.start_maintenance(node_id)`.
pub(crate) fn start_maintenance(args: &Args) -> pg_sys::Datum {
    let (node, formation_id) = node_or_raise(args.get(start_maintenance::NODE_ID));
    let mut decision = decision_for(&node, &formation_id);
    let done = or_raise(api::start_maintenance(&mut decision.group, node.id));
    decision.commit();
    return_bool(args, done)
}

/// `pgautofailover.stop_maintenance(node_id)`.
pub(crate) fn stop_maintenance(args: &Args) -> pg_sys::Datum {
    let (node, formation_id) = node_or_raise(args.get(stop_maintenance::NODE_ID));
    let mut decision = decision_for(&node, &formation_id);
    let done = or_raise(api::stop_maintenance(&mut decision.group, node.id));
    decision.commit();
    return_bool(args, done)
}

fn remove(args: &Args, node: Node, formation_id: &str, force: bool) -> pg_sys::Datum {
    locks::lock_formation(formation_id, Mode::Exclusive);
    let mut decision = Decision::load_locked(formation_id, node.group_id);
    let done = or_raise(api::remove_node(&mut decision.group, node.id, force));
    decision.commit();
    return_bool(args, done)
}

/// `pgautofailover.remove_node(node_id, force)`.
pub(crate) fn remove_node_by_nodeid(args: &Args) -> pg_sys::Datum {
    let (node, formation_id) = node_or_raise(args.get(remove_node_by_nodeid::NODE_ID));
    remove(
        args,
        node,
        &formation_id,
        args.get(remove_node_by_nodeid::FORCE),
    )
}

/// `pgautofailover.remove_node(node_host, node_port, force)`.
pub(crate) fn remove_node_by_host(args: &Args) -> pg_sys::Datum {
    let host = args.get(remove_node_by_host::NODE_HOST);
    let port = args.get(remove_node_by_host::NODE_PORT);
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
    remove(
        args,
        node,
        &formation_id,
        args.get(remove_node_by_host::FORCE),
    )
}
