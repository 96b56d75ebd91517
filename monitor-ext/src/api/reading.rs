//! Functions that read the group: `get_nodes()`, `get_primary()`, `get_other_nodes()`,
//! `synchronous_standby_names()`.

use fsm::protocol::api::{get_nodes, get_other_nodes, get_primary, synchronous_standby_names};
use fsm::{Group, Node, api};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::clock;
use crate::errors::{or_raise, raise, sql_error};
use crate::fmgr::{Args, Value, return_record, return_rows, return_text};
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

/// `pgautofailover.get_nodes(formation_id, group_id)`: every node, or every node of one group.
pub(crate) fn get_nodes(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(get_nodes::FORMATION_ID);
    store::formation_or_raise(&formation_id);
    let nodes = match args.opt(get_nodes::GROUP_ID) {
        None => store::formation_nodes(&formation_id),
        Some(group_id) => store::group_nodes(&formation_id, group_id),
    };
    let rows: Vec<Vec<Value>> = nodes.iter().map(node_row).collect();
    return_rows(args, &rows)
}

/// `pgautofailover.get_primary(formation_id, group_id)`.
pub(crate) fn get_primary(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(get_primary::FORMATION_ID);
    let group_id = args.get(get_primary::GROUP_ID);
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
        args,
        &[
            Value::I64(primary.id),
            Value::Text(primary.name.clone()),
            Value::Text(primary.host.clone()),
            Value::I32(primary.port),
        ],
    )
}

/// `pgautofailover.get_other_nodes(nodeid [, current_state])`: the other nodes of the node's
/// group, optionally only those with that goal state.
pub(crate) fn get_other_nodes(args: &Args) -> pg_sys::Datum {
    let node_id = args.get(get_other_nodes::NODEID);
    let state = if args.count() > 1 {
        Some(args.get(get_other_nodes::CURRENT_STATE))
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
    return_rows(args, &rows)
}

/// `pgautofailover.synchronous_standby_names(formation_id, group_id)`.
pub(crate) fn synchronous_standby_names(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(synchronous_standby_names::FORMATION_ID);
    let group_id = args.get(synchronous_standby_names::GROUP_ID);
    let group = load_group(&formation_id, group_id);
    return_text(args, &or_raise(api::synchronous_standby_names(&group)))
}
