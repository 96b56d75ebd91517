//! `register_node()` and `update_node_metadata()`: nodes joining and renaming.

use fsm::protocol::api::{register_node, update_node_metadata};
use fsm::register::{self, Registration};
use fsm::rules;
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Decision;
use crate::errors::{or_raise, raise, sql_error};
use crate::fmgr::{Args, Value, return_bool, return_record};
use crate::locks::{self, Mode};
use crate::store::{self, NewNode};
use fsm::protocol::Assignment;

/// `pgautofailover.register_node(formation_id, node_host, node_port, dbname, node_name,
/// sysidentifier, desired_node_id, desired_group_id, initial_group_role, node_kind,
/// candidate_priority, replication_quorum, node_cluster)`.
pub(crate) fn register_node(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(register_node::FORMATION_ID);
    let host = args.get(register_node::NODE_HOST);
    let port = args.get(register_node::NODE_PORT);
    let dbname = args.get(register_node::DBNAME);
    let name = args.get(register_node::NODE_NAME);
    let sysidentifier = args.get(register_node::SYSIDENTIFIER);
    let desired_node_id = args.get(register_node::DESIRED_NODE_ID);
    let desired_group_id = args.get(register_node::DESIRED_GROUP_ID);
    let initial_state = args.get(register_node::INITIAL_GROUP_ROLE);
    let node_kind = args.get(register_node::NODE_KIND);
    let candidate_priority = args.get(register_node::CANDIDATE_PRIORITY);
    let replication_quorum = args.get(register_node::REPLICATION_QUORUM);
    let node_cluster = args.get(register_node::NODE_CLUSTER);

    // every value is checked before anything is looked up or stored
    let request = Registration {
        host: host.clone(),
        port,
        dbname: dbname.clone(),
        name: name.clone(),
        desired_node_id,
        node_cluster: node_cluster.clone(),
        desired_group_id,
        initial_state,
        node_kind,
        candidate_priority,
    };
    or_raise(request.check());

    locks::lock_formation(&formation_id, Mode::Exclusive);
    let mut formation = store::formation_or_raise(&formation_id);
    let formation_count = store::formation_nodes(&formation_id).len();

    let taken = register::Taken {
        endpoint: store::node_by_host(&host, port)
            .map(|(existing, other)| (existing.label(), other)),
        name: !name.is_empty() && store::node_by_name(&formation_id, &name).is_some(),
        node_id: desired_node_id > 0 && store::node_by_id(desired_node_id).is_some(),
    };
    or_raise(register::check_unique(&request, &formation_id, &taken));

    let mut decision = Decision::load_locked(&formation_id, 0);
    let plan = or_raise(register::plan(
        &formation,
        formation_count,
        &decision.group,
        &request,
    ));
    if plan.set_kind.is_some() || plan.set_dbname.is_some() {
        if let Some(kind) = plan.set_kind {
            formation.kind = kind;
        }
        if let Some(dbname) = &plan.set_dbname {
            formation.dbname = dbname.clone();
        }
        store::update_formation(&formation);
        decision.group.formation = formation.clone();
    }

    let node_id = store::insert_node(&NewNode {
        formation_id: &formation_id,
        node_id: (desired_node_id > 0).then_some(desired_node_id),
        group_id: plan.group_id,
        name: (!name.is_empty()).then_some(name.as_str()),
        host: &host,
        port,
        sysidentifier: (sysidentifier != 0).then_some(sysidentifier),
        goal: plan.goal,
        reported: initial_state,
        candidate_priority,
        replication_quorum,
        node_cluster: &node_cluster,
    });
    let Some((node, _)) = store::node_by_id(node_id) else {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("node {host}:{port} was inserted but cannot be read back"),
            None,
        ));
    };
    decision.group.insert(node.clone());
    store::record_event(
        &formation_id,
        &node,
        &format!(
            "Registering {} to formation \"{formation_id}\" with replication quorum {} and \
             candidate priority {} [{candidate_priority}]",
            node.label(),
            node.replication_quorum,
            node.candidate_priority
        ),
    );

    register::adjust_number_sync_standbys(&mut decision.group, node_id);
    or_raise(rules::proceed(&mut decision.group, node_id));
    decision.commit();

    let assigned = decision.group.get(node_id).unwrap_or(&node);
    let mut row = super::assignment_row(&Assignment {
        node_id,
        group_id: node.group_id,
        state: assigned.goal,
        candidate_priority: assigned.candidate_priority,
        replication_quorum: assigned.replication_quorum,
    });
    row.push(Value::Text(node.name.clone()));
    return_record(args, &row)
}

/// `pgautofailover.update_node_metadata(node_id, node_name, node_host, node_port)`: NULL keeps
/// the current value.
pub(crate) fn update_node_metadata(args: &Args) -> pg_sys::Datum {
    let node_id = args.get(update_node_metadata::NODE_ID);
    let Some((node, formation_id)) = store::node_by_id(node_id) else {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("node {node_id} is not registered"),
            None,
        ));
    };
    locks::lock_formation(&formation_id, Mode::Shared);
    locks::lock_group(&formation_id, node.group_id, Mode::Exclusive);

    let name = args
        .opt(update_node_metadata::NODE_NAME)
        .unwrap_or_else(|| node.name.clone());
    let host = args
        .opt(update_node_metadata::NODE_HOST)
        .unwrap_or_else(|| node.host.clone());
    let port = args
        .opt(update_node_metadata::NODE_PORT)
        .unwrap_or(node.port);
    or_raise(register::check_metadata(&name, &host, i64::from(port)));
    if (name.as_str(), host.as_str(), port) == (node.name.as_str(), node.host.as_str(), node.port) {
        return return_bool(args, true);
    }
    if let Some((other, _)) = store::node_by_host(&host, port).filter(|(n, _)| n.id != node_id) {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
            format!("{host}:{port} is already used by {}", other.label()),
            None,
        ));
    }
    if store::node_by_name(&formation_id, &name).is_some_and(|n| n.id != node_id) {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
            format!(
                "a node named \"{name}\" is already registered in formation \"{formation_id}\""
            ),
            None,
        ));
    }
    store::update_metadata(node_id, &name, &host, port);
    let mut updated = node.clone();
    updated.name = name;
    updated.host = host;
    updated.port = port;
    store::record_event(
        &formation_id,
        &updated,
        &format!(
            "Updating node metadata of {} to {}",
            node.label(),
            updated.label()
        ),
    );
    return_bool(args, true)
}
