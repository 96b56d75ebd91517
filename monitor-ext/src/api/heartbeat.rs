//! `node_active()`: the heartbeat every keeper sends about once a second, and the entry point of
//! the state machine.
//!
//! A heartbeat that changes nothing (same reported state, no decision) is the common case: its
//! report is only kept in shared memory (`crate::beats`), which every decision reads over the
//! table and which the health check worker writes to the table once a second. It writes no row
//! and no WAL. Losing such a heartbeat in a monitor crash loses nothing: the keeper sends the
//! next one a second later, and `startup_grace_period` covers the restart. Anything else (a new
//! reported state, a goal change) is written to the table and commits durably.

use fsm::protocol::api::node_active;
use fsm::report::Report;
use fsm::rules;
use fsm::{Lsn, SyncState};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Decision;
use crate::errors::{or_raise, raise, raise_fsm, sql_error};
use crate::fmgr::{Args, return_record};
use crate::{beats, store};
// leases: renewed below, after the decision (see crate::leases)

/// `pgautofailover.node_active(formation_id, node_id, group_id, current_group_role,
/// current_pg_is_running, current_tli, current_lsn, current_rep_state)`.
pub(crate) fn node_active(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(node_active::FORMATION_ID);
    let node_id = args.get(node_active::NODE_ID);
    let group_id = args.get(node_active::GROUP_ID);
    let tli = args.get(node_active::CURRENT_TLI);
    if tli < 0 {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid current_tli {tli}: a timeline is a positive number, 0 if unknown"),
            None,
        ));
    }
    let sync_state: SyncState = match args.get(node_active::CURRENT_REP_STATE).parse() {
        Ok(s) => s,
        Err(e) => raise(sql_error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            None,
        )),
    };
    let report = Report {
        state: args.get(node_active::CURRENT_GROUP_ROLE),
        pg_is_running: args.get(node_active::CURRENT_PG_IS_RUNNING),
        tli,
        lsn: Lsn(args.get(node_active::CURRENT_LSN)),
        sync_state,
    };

    // A transaction that wrote before us is not ours to make asynchronous.
    let had_writes = crate::backend::transaction_wrote();

    let mut decision = Decision::load(&formation_id, group_id);
    if decision.group.get(node_id).is_none() {
        // Not in the group the keeper named: say why, or follow the node to its real group.
        match store::node_by_id(node_id) {
            None => raise(sql_error(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("couldn't find node with nodeid {node_id}"),
                Some("The node was removed from the monitor: register it again.".to_string()),
            )),
            Some((_, other)) if other != formation_id => raise(sql_error(
                PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
                format!(
                    "node {node_id} does not belong to formation {}",
                    fsm::vocab::shown(&formation_id)
                ),
                Some(format!("It belongs to formation \"{other}\".")),
            )),
            Some((node, _)) => decision = Decision::load_locked(&formation_id, node.group_id),
        }
    }

    let changed = decision.group.report(node_id, &report);
    let Some(node) = decision.group.get(node_id).cloned() else {
        raise_fsm(&fsm::FsmError::NodeNotFound { node_id });
    };
    if changed {
        store::save_report(&node);
        let description = if node.goal == fsm::ReplicationState::ReportLsn {
            format!(
                "New state is reported by {} with LSN {}: {}",
                node.label(),
                node.reported_lsn,
                node.reported
            )
        } else {
            format!(
                "New state is reported by {}: \"{}\"",
                node.label(),
                node.reported
            )
        };
        store::record_event(&decision.group.formation.id, &node, &description);
    }
    or_raise(rules::proceed(&mut decision.group, node_id));
    let decided = decision.commit();

    if decided && !changed {
        store::save_report(&node);
    } else if !changed && !beats::keep(&node) {
        // no room in shared memory: write the row, without waiting for the WAL flush
        store::save_report(&node);
        if !had_writes {
            relax_commit();
        }
    }

    crate::leases::renew_or_forget(node_id);

    let (goal, priority, quorum) = decision.group.get(node_id).map_or(
        (
            fsm::ReplicationState::Dropped,
            node.candidate_priority,
            node.replication_quorum,
        ),
        |n| (n.goal, n.candidate_priority, n.replication_quorum),
    );
    let row = super::assignment_row(&fsm::protocol::Assignment {
        node_id,
        group_id: node.group_id,
        state: goal,
        candidate_priority: priority,
        replication_quorum: quorum,
    });
    return_record(args, &row)
}

/// Commits this transaction without waiting for its WAL to be flushed, when it is a statement
/// on its own (not inside BEGIN ... COMMIT, where later statements may need durability).
fn relax_commit() {
    // SAFETY: plain reads of transaction state, and a transaction-local GUC change (SET LOCAL)
    unsafe {
        if pg_sys::IsTransactionBlock() {
            return;
        }
        pg_sys::set_config_option(
            c"synchronous_commit".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
}
