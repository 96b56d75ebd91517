//! The SQL-callable functions of the monitor, one module per family.
//!
//! Each function reads its arguments, takes the locks, loads the group it decides for, asks the
//! `fsm` crate for a decision, and writes the resulting effects. No decision is taken here.

pub mod formations;
pub mod heartbeat;
pub mod operations;
pub mod reading;
pub mod registration;
pub mod replication_settings;

use fsm::{Clock, Effect, Group};

use crate::errors::formation_not_found;
use crate::locks::{self, Mode};
use crate::{settings, store};

// Every SQL function of the extension: its C symbol (as `sql/` names it), its info symbol,
// its SQL name (for error messages), and the function that runs it.
crate::fmgr::sql_functions! {
    pgaf_create_formation, pg_finfo_pgaf_create_formation => "create_formation", formations::create_formation;
    pgaf_drop_formation, pg_finfo_pgaf_drop_formation => "drop_formation", formations::drop_formation;
    pgaf_enable_secondary, pg_finfo_pgaf_enable_secondary => "enable_secondary", formations::enable_secondary;
    pgaf_disable_secondary, pg_finfo_pgaf_disable_secondary => "disable_secondary", formations::disable_secondary;
    pgaf_node_active, pg_finfo_pgaf_node_active => "node_active", heartbeat::node_active;
    pgaf_perform_failover, pg_finfo_pgaf_perform_failover => "perform_failover", operations::perform_failover;
    pgaf_perform_promotion, pg_finfo_pgaf_perform_promotion => "perform_promotion", operations::perform_promotion;
    pgaf_start_maintenance, pg_finfo_pgaf_start_maintenance => "start_maintenance", operations::start_maintenance;
    pgaf_stop_maintenance, pg_finfo_pgaf_stop_maintenance => "stop_maintenance", operations::stop_maintenance;
    pgaf_remove_node_by_nodeid, pg_finfo_pgaf_remove_node_by_nodeid => "remove_node", operations::remove_node_by_nodeid;
    pgaf_remove_node_by_host, pg_finfo_pgaf_remove_node_by_host => "remove_node", operations::remove_node_by_host;
    pgaf_get_nodes, pg_finfo_pgaf_get_nodes => "get_nodes", reading::get_nodes;
    pgaf_get_primary, pg_finfo_pgaf_get_primary => "get_primary", reading::get_primary;
    pgaf_get_other_nodes, pg_finfo_pgaf_get_other_nodes => "get_other_nodes", reading::get_other_nodes;
    pgaf_synchronous_standby_names, pg_finfo_pgaf_synchronous_standby_names => "synchronous_standby_names", reading::synchronous_standby_names;
    pgaf_register_node, pg_finfo_pgaf_register_node => "register_node", registration::register_node;
    pgaf_update_node_metadata, pg_finfo_pgaf_update_node_metadata => "update_node_metadata", registration::update_node_metadata;
    pgaf_set_node_candidate_priority, pg_finfo_pgaf_set_node_candidate_priority => "set_node_candidate_priority", replication_settings::set_node_candidate_priority;
    pgaf_set_node_replication_quorum, pg_finfo_pgaf_set_node_replication_quorum => "set_node_replication_quorum", replication_settings::set_node_replication_quorum;
    pgaf_set_formation_number_sync_standbys, pg_finfo_pgaf_set_formation_number_sync_standbys => "set_formation_number_sync_standbys", replication_settings::set_formation_number_sync_standbys;
}

/// The result row of `node_active` (and the first columns of `register_node`'s), in the
/// order of `fsm::protocol::api::node_active::FUNCTION.out`.
pub fn assignment_row(a: &fsm::protocol::Assignment) -> Vec<crate::fmgr::Value> {
    use crate::fmgr::Value;
    vec![
        Value::I64(a.node_id),
        Value::I32(a.group_id),
        Value::State(a.state),
        Value::I32(a.candidate_priority),
        Value::Bool(a.replication_quorum),
    ]
}

/// The monitor's clock now: current time and the server's start time.
pub fn clock() -> Clock {
    Clock {
        now: crate::backend::now(),
        monitor_start: crate::backend::server_start(),
    }
}

/// The node named `name` in `formation_id`, or an error naming both (escaped: they are the
/// caller's values, not known ones).
pub fn named_node_or_raise(formation_id: &str, name: &str) -> fsm::Node {
    store::formation_or_raise(formation_id);
    store::node_by_name(formation_id, name).unwrap_or_else(|| {
        crate::errors::raise(crate::errors::sql_error(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "node {} is not registered in formation {}",
                fsm::vocab::shown(name),
                fsm::vocab::shown(formation_id)
            ),
            Some("List the nodes with pg_autoctl show state.".to_string()),
        ))
    })
}

/// A group loaded under its locks, ready for a decision.
pub struct Decision {
    /// The group; rules update it and record effects (each node change with its event row).
    pub group: Group,
}

impl Decision {
    /// Locks the formation (shared) and the group (exclusive), then loads the group.
    pub fn load(formation_id: &str, group_id: i32) -> Decision {
        locks::lock_formation(formation_id, Mode::Shared);
        Decision::load_locked(formation_id, group_id)
    }

    /// Locks the group and loads it with its formation; the caller holds the formation lock.
    pub fn load_locked(formation_id: &str, group_id: i32) -> Decision {
        locks::lock_group(formation_id, group_id, Mode::Exclusive);
        let Some((formation, mut nodes)) = store::formation_and_group(formation_id, group_id)
        else {
            formation_not_found(formation_id);
        };
        let clock = clock();
        crate::leases::attach(&mut nodes, clock.now);
        let group = Group::new(formation, group_id, nodes, settings::fsm_settings(), clock);
        Decision { group }
    }

    /// Writes the effects decided so far. Returns whether there were any.
    pub fn commit(&mut self) -> bool {
        let effects: Vec<Effect> = self.group.take_effects();
        let now = self.group.health.clock.now;
        store::apply_effects(&self.group.formation.id, &effects, now);
        !effects.is_empty()
    }
}
