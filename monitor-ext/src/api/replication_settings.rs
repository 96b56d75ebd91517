//! Replication settings: `set_node_candidate_priority()`, `set_node_replication_quorum()`,
//! `set_formation_number_sync_standbys()`.

use fsm::api;
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Decision;
use crate::errors::or_raise;
use crate::fmgr::{Args, return_bool, v1_function};
use crate::locks::{self, Mode};

v1_function!(pg_finfo_pgaf_set_node_candidate_priority);

/// `pgautofailover.set_node_candidate_priority(formation_id, node_name, candidate_priority)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_set_node_candidate_priority(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "set_node_candidate_priority") };
    let formation_id = args.text(0, "formation_id");
    let node = super::named_node_or_raise(&formation_id, &args.text(1, "node_name"));
    let priority = args.i32(2, "candidate_priority");
    let mut decision = Decision::load(&formation_id, node.group_id);
    let done = or_raise(api::set_candidate_priority(
        &mut decision.group,
        node.id,
        priority,
    ));
    decision.commit();
    return_bool(&args, done)
}

v1_function!(pg_finfo_pgaf_set_node_replication_quorum);

/// `pgautofailover.set_node_replication_quorum(formation_id, node_name, replication_quorum)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_set_node_replication_quorum(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "set_node_replication_quorum") };
    let formation_id = args.text(0, "formation_id");
    let node = super::named_node_or_raise(&formation_id, &args.text(1, "node_name"));
    let quorum = args.bool(2, "replication_quorum");
    let mut decision = Decision::load(&formation_id, node.group_id);
    let done = or_raise(api::set_replication_quorum(
        &mut decision.group,
        node.id,
        quorum,
    ));
    decision.commit();
    return_bool(&args, done)
}

v1_function!(pg_finfo_pgaf_set_formation_number_sync_standbys);

/// `pgautofailover.set_formation_number_sync_standbys(formation_id, number_sync_standbys)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_set_formation_number_sync_standbys(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres passes a valid fcinfo
    let args = unsafe { Args::new(fcinfo, "set_formation_number_sync_standbys") };
    let formation_id = args.text(0, "formation_id");
    let value = args.i32(1, "number_sync_standbys");
    locks::lock_formation(&formation_id, Mode::Exclusive);
    let mut decision = Decision::load_locked(&formation_id, 0);
    let done = or_raise(api::set_number_sync_standbys(&mut decision.group, value));
    decision.commit();
    return_bool(&args, done)
}
