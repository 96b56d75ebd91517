//! The pg_auto_failover 2.0 group state machine, as pure Rust.
//!
//! This crate owns every decision the monitor takes: which state each node of a group must be
//! in ([`rules::proceed`], run on every heartbeat), what the SQL API calls change ([`api`],
//! [`register`]), how a new primary is elected among several standbys ([`election`]), when a
//! node counts as healthy ([`health`]) and how long a primary may write without the monitor
//! ([`lease`]), and how the monitor's background probe classifies a
//! node's answer ([`probe`]). It also lists, as data, every (current, assigned) state pair the
//! monitor can produce ([`edges`]), and the keeper's own transition table ([`keeper`]) that
//! proves it can execute each one.
//!
//! There is no I/O here: callers load a [`Group`] snapshot, call a function, and apply the
//! returned [`Effect`]s. Time is an input ([`Clock`]). The one piece of state shared across
//! decisions, the latest heartbeats kept between table writes, is the data structure in
//! [`beats`].

pub mod api;
pub mod beats;
pub mod edges;
pub mod election;
mod error;
pub mod group;
pub mod health;
pub mod keeper;
pub mod keeper_loop;
pub mod lease;
pub mod lease_table;
mod model;
pub mod probe;
pub mod protocol;
pub mod register;
pub mod report;
pub mod rules;
mod state;
pub mod timeline;
pub mod vocab;

#[cfg(test)]
mod testing;

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod sim;

#[cfg(test)]
mod wal_proptests;

pub use error::{ErrorClass, FsmError};
pub use group::{Effect, Group};
pub use model::{
    Clock, Formation, FormationKind, Health, InvalidLsnError, Lsn, Node, NodeId, Settings,
    SyncState, Timestamp, UnknownSyncStateError,
};
pub use state::{ReplicationState, UnknownStateError};
