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

use fsm::{Clock, Effect, Group, Timestamp};
use pgrx::pg_sys;

use crate::errors::formation_not_found;
use crate::locks::{self, Mode};
use crate::{settings, store};

/// The monitor's clock now: current time and the server's start time.
pub fn clock() -> Clock {
    // SAFETY: reading the current time and the postmaster start time has no preconditions
    unsafe {
        Clock {
            now: Timestamp(pg_sys::GetCurrentTimestamp()),
            monitor_start: Timestamp(pg_sys::PgStartTime),
        }
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
    /// The group; rules update it and record effects.
    pub group: Group,
    /// The group as loaded (after any report), to replay effects onto for event rows.
    pub snapshot: Group,
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
        Decision {
            snapshot: group.clone(),
            group,
        }
    }

    /// Takes the current state as the starting point for event rows (after a report).
    pub fn mark_snapshot(&mut self) {
        self.snapshot = self.group.clone();
    }

    /// Writes the effects decided so far. Returns whether there were any.
    pub fn commit(&mut self) -> bool {
        let effects: Vec<Effect> = self.group.take_effects();
        let now = self.group.health.clock.now;
        store::apply_effects(&self.group.formation.id, &self.snapshot, &effects, now);
        self.snapshot = self.group.clone();
        !effects.is_empty()
    }
}
