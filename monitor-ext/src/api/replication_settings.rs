//! Replication settings: `set_node_candidate_priority()`, `set_node_replication_quorum()`,
//! `set_formation_number_sync_standbys()`.

use fsm::api;
use fsm::protocol::api::{
    set_formation_number_sync_standbys, set_node_candidate_priority, set_node_replication_quorum,
};
use pgrx::pg_sys;

use super::Decision;
use crate::errors::or_raise;
use crate::fmgr::{Args, return_bool};
use crate::locks::{self, Mode};

/// `pgautofailover.set_node_candidate_priority(formation_id, node_name, candidate_priority)`.
pub(crate) fn set_node_candidate_priority(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(set_node_candidate_priority::FORMATION_ID);
    let node = super::named_node_or_raise(
        &formation_id,
        &args.get(set_node_candidate_priority::NODE_NAME),
    );
    let priority = args.get(set_node_candidate_priority::CANDIDATE_PRIORITY);
    let mut decision = Decision::load(&formation_id, node.group_id);
    let done = or_raise(api::set_candidate_priority(
        &mut decision.group,
        node.id,
        priority,
    ));
    decision.commit();
    return_bool(args, done)
}

/// `pgautofailover.set_node_replication_quorum(formation_id, node_name, replication_quorum)`.
pub(crate) fn set_node_replication_quorum(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(set_node_replication_quorum::FORMATION_ID);
    let node = super::named_node_or_raise(
        &formation_id,
        &args.get(set_node_replication_quorum::NODE_NAME),
    );
    let quorum = args.get(set_node_replication_quorum::REPLICATION_QUORUM);
    let mut decision = Decision::load(&formation_id, node.group_id);
    let done = or_raise(api::set_replication_quorum(
        &mut decision.group,
        node.id,
        quorum,
    ));
    decision.commit();
    return_bool(args, done)
}

/// `pgautofailover.set_formation_number_sync_standbys(formation_id, number_sync_standbys)`.
pub(crate) fn set_formation_number_sync_standbys(args: &Args) -> pg_sys::Datum {
    let formation_id = args.get(set_formation_number_sync_standbys::FORMATION_ID);
    let value = args.get(set_formation_number_sync_standbys::NUMBER_SYNC_STANDBYS);
    locks::lock_formation(&formation_id, Mode::Exclusive);
    let mut decision = Decision::load_locked(&formation_id, 0);
    let done = or_raise(api::set_number_sync_standbys(&mut decision.group, value));
    decision.commit();
    return_bool(args, done)
}
