//! The keeper's state file `pg_autoctl.state`: which node it is, the state it reached, the
//! state the monitor assigned, and when it last heard from the monitor and a standby.
//!
//! Our own format (JSON), written atomically: a crash at any point leaves either the previous
//! or the new state on disk, both readable.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use fsm::ReplicationState;
use serde::{Deserialize, Serialize};

use crate::exit::{CliError, CliResult};
use crate::fsutil::write_atomically;

/// The format version this program writes.
pub const STATE_VERSION: u32 = 1;

/// What the keeper remembers between loops and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeeperState {
    /// Format version.
    pub version: u32,
    /// The node id the monitor gave this node.
    pub node_id: i64,
    /// Its group.
    pub group_id: i32,
    /// The state the keeper last reached.
    #[serde(with = "state_name")]
    pub current_role: ReplicationState,
    /// The state the monitor last assigned.
    #[serde(with = "state_name")]
    pub assigned_role: ReplicationState,
    /// Postgres's system identifier, once known.
    pub system_identifier: u64,
    /// Unix time (s) of the last successful `node_active`; 0: never.
    pub last_monitor_contact: u64,
    /// Unix time (s) when a standby was last seen streaming from this primary; 0: never.
    pub last_secondary_contact: u64,
    /// The lease the monitor granted last (ms); None: it grants none, or not known yet. A
    /// keeper that restarts with a lease known holds none until its first heartbeat succeeds.
    #[serde(default)]
    pub lease_ms: Option<u64>,
    /// Whether the group had other nodes when the keeper last listed them.
    #[serde(default)]
    pub has_peers: bool,
}

impl KeeperState {
    /// The state of a node just registered.
    pub fn registered(node_id: i64, group_id: i32, assigned: ReplicationState) -> Self {
        KeeperState {
            version: STATE_VERSION,
            node_id,
            group_id,
            current_role: ReplicationState::Init,
            assigned_role: assigned,
            system_identifier: 0,
            last_monitor_contact: 0,
            last_secondary_contact: 0,
            lease_ms: None,
            has_peers: false,
        }
    }

    /// Reads the state file.
    pub fn load(path: &Path) -> CliResult<KeeperState> {
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::bad_state(format!("no state file at \"{}\"", path.display())).hint(
                    "The node was not created, or was dropped: run pg_autoctl create postgres.",
                )
            } else {
                CliError::bad_state(format!("cannot read \"{}\": {e}", path.display()))
            }
        })?;
        let state: KeeperState = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::bad_state(format!(
                "the state file \"{}\" is not one this pg_autoctl wrote: {e}",
                path.display()
            ))
            .hint("A state file of pg_autoctl 2.0 (binary) cannot be read: register the node again with pg_autoctl create postgres after pg_autoctl drop node.")
        })?;
        if state.version != STATE_VERSION {
            return Err(CliError::bad_state(format!(
                "the state file \"{}\" has format version {}, this pg_autoctl reads version {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        Ok(state)
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> CliResult<()> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::bad_state(format!("cannot format the state: {e}")))?;
        bytes.push(b'\n');
        write_atomically(path, &bytes, 0o600)
            .map_err(|e| CliError::bad_state(format!("cannot write \"{}\": {e}", path.display())))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serialises a [`ReplicationState`] by its SQL name.
mod state_name {
    use fsm::ReplicationState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(state: &ReplicationState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ReplicationState, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_with_state_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pg_autoctl.state");
        let mut state = KeeperState::registered(3, 0, ReplicationState::WaitStandby);
        state.current_role = ReplicationState::Catchingup;
        state.save(&path).expect("save");
        assert_eq!(KeeperState::load(&path).expect("load"), state);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"current_role\": \"catchingup\""), "{text}");
    }

    #[test]
    fn a_foreign_or_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pg_autoctl.state");
        std::fs::write(&path, [1u8, 0, 0, 0, 15, 0]).expect("write binary");
        let err = KeeperState::load(&path).expect_err("binary 2.0 state");
        assert!(err.message.contains("not one this pg_autoctl wrote"));
        std::fs::write(
            &path,
            br#"{"version":1,"node_id":1,"group_id":0,"current_role":"leader","assigned_role":"single","system_identifier":0,"last_monitor_contact":0,"last_secondary_contact":0}"#,
        )
        .expect("write");
        let err = KeeperState::load(&path).expect_err("bad state name");
        assert!(err.message.contains("leader"), "{}", err.message);
        let err = KeeperState::load(&dir.path().join("missing")).expect_err("missing");
        assert!(err.hint.is_some());
    }
}
