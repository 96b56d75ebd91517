//! The latest heartbeat of each node, kept in the monitor's shared memory between table writes.
//!
//! A heartbeat that changes nothing only refreshes the report columns (report time, LSN,
//! timeline, Postgres running, sync state). Writing them to the table on every call costs an
//! UPDATE and its WAL; instead they are kept here, read over the table by every decision, and
//! written to the table in one statement per second. Anything that changes a state is still
//! written to the table at once.
//!
//! The table is a fixed-size set-associative cache keyed by (database, node id). When a set is
//! full of entries not yet written to the table, [`BeatTable::record`] refuses and the caller
//! writes the row directly: heartbeats are never dropped.

use crate::model::{Lsn, NodeId, SyncState, Timestamp};

/// Number of sets.
pub const SETS: usize = 1024;
/// Entries per set.
pub const WAYS: usize = 8;

/// The report columns of one node's last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// Database the node's row lives in.
    pub database: u32,
    /// Node id.
    pub node_id: NodeId,
    /// `reporttime`.
    pub report_time: Timestamp,
    /// `walreporttime`.
    pub wal_report_time: Timestamp,
    /// `reportedpgisrunning`.
    pub pg_is_running: bool,
    /// `reportedtli`.
    pub tli: i32,
    /// `reportedlsn`.
    pub lsn: Lsn,
    /// `reportedrepstate`.
    pub sync_state: SyncState,
}

impl Beat {
    /// Overlays this heartbeat on a row read from the table, when it is newer.
    pub fn overlay(&self, node: &mut crate::Node) {
        if self.report_time > node.report_time {
            node.report_time = self.report_time;
            node.wal_report_time = self.wal_report_time;
            node.pg_is_running = self.pg_is_running;
            node.reported_tli = self.tli;
            node.reported_lsn = self.lsn;
            node.sync_state = self.sync_state;
        }
    }

    /// The heartbeat of `node` after `report` was applied to it.
    pub fn of(database: u32, node: &crate::Node) -> Beat {
        Beat {
            database,
            node_id: node.id,
            report_time: node.report_time,
            wal_report_time: node.wal_report_time,
            pg_is_running: node.pg_is_running,
            tli: node.reported_tli,
            lsn: node.reported_lsn,
            sync_state: node.sync_state,
        }
    }
}

/// One entry of the cache.
#[derive(Debug, Clone, Copy)]
struct Slot {
    used: bool,
    /// Not yet written to the table.
    dirty: bool,
    beat: Beat,
}

const EMPTY: Slot = Slot {
    used: false,
    dirty: false,
    beat: Beat {
        database: 0,
        node_id: 0,
        report_time: Timestamp(0),
        wal_report_time: Timestamp(0),
        pg_is_running: false,
        tli: 0,
        lsn: Lsn(0),
        sync_state: SyncState::Unknown,
    },
};

/// The heartbeat cache.
#[derive(Debug, Clone, Copy)]
pub struct BeatTable {
    slots: [Slot; SETS * WAYS],
}

impl Default for BeatTable {
    fn default() -> Self {
        BeatTable {
            slots: [EMPTY; SETS * WAYS],
        }
    }
}

fn set_of(database: u32, node_id: NodeId) -> usize {
    // a cheap mix of both keys; node ids are dense, databases few
    let h = (node_id as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        ^ u64::from(database).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (h % SETS as u64) as usize
}

impl BeatTable {
    fn ways(&self, database: u32, node_id: NodeId) -> std::ops::Range<usize> {
        let start = set_of(database, node_id) * WAYS;
        start..start + WAYS
    }

    /// The heartbeat kept for a node, if any.
    pub fn get(&self, database: u32, node_id: NodeId) -> Option<Beat> {
        self.slots[self.ways(database, node_id)]
            .iter()
            .find(|s| s.used && s.beat.database == database && s.beat.node_id == node_id)
            .map(|s| s.beat)
    }

    /// Keeps a heartbeat not yet written to the table. Returns false when there is no room
    /// (every entry of its set holds a heartbeat still to be written): write the row instead.
    pub fn record(&mut self, beat: Beat) -> bool {
        self.put(beat, true)
    }

    /// Keeps a heartbeat already written to the table (so that readers do not overlay an older
    /// one kept earlier).
    pub fn record_written(&mut self, beat: Beat) {
        self.put(beat, false);
    }

    fn put(&mut self, beat: Beat, dirty: bool) -> bool {
        let range = self.ways(beat.database, beat.node_id);
        let set = &mut self.slots[range];
        let found = set
            .iter()
            .position(|s| {
                s.used && s.beat.database == beat.database && s.beat.node_id == beat.node_id
            })
            .or_else(|| set.iter().position(|s| !s.used))
            .or_else(|| {
                // evict the oldest heartbeat already in the table
                set.iter()
                    .enumerate()
                    .filter(|(_, s)| !s.dirty)
                    .min_by_key(|(_, s)| s.beat.report_time)
                    .map(|(i, _)| i)
            });
        match found {
            Some(i) => {
                set[i] = Slot {
                    used: true,
                    dirty,
                    beat,
                };
                true
            }
            None => false,
        }
    }

    /// The heartbeats of `database` not yet written to the table.
    pub fn dirty(&self, database: u32) -> Vec<Beat> {
        self.slots
            .iter()
            .filter(|s| s.used && s.dirty && s.beat.database == database)
            .map(|s| s.beat)
            .collect()
    }

    /// Marks heartbeats as written, unless a newer one replaced them meanwhile.
    pub fn mark_written(&mut self, written: &[Beat]) {
        for beat in written {
            let range = self.ways(beat.database, beat.node_id);
            for slot in &mut self.slots[range] {
                if slot.used && slot.beat == *beat {
                    slot.dirty = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicationState as S;
    use crate::testing::{NOW, node};

    fn beat(database: u32, node_id: NodeId, at: i64) -> Beat {
        Beat {
            database,
            node_id,
            report_time: Timestamp(at),
            wal_report_time: Timestamp(at),
            pg_is_running: true,
            tli: 1,
            lsn: Lsn(at as u64),
            sync_state: SyncState::Sync,
        }
    }

    fn table() -> Box<BeatTable> {
        Box::default()
    }

    #[test]
    fn keeps_and_replaces_by_database_and_node() {
        let mut t = table();
        assert!(t.record(beat(1, 7, 100)));
        assert!(t.record(beat(2, 7, 200)));
        assert!(t.record(beat(1, 7, 300)));
        assert_eq!(t.get(1, 7).map(|b| b.report_time), Some(Timestamp(300)));
        assert_eq!(t.get(2, 7).map(|b| b.report_time), Some(Timestamp(200)));
        assert_eq!(t.get(3, 7), None);
        assert_eq!(t.dirty(1).len(), 1);
    }

    #[test]
    fn written_heartbeats_are_clean_unless_replaced() {
        let mut t = table();
        t.record(beat(1, 1, 100));
        t.record(beat(1, 2, 100));
        let dirty = t.dirty(1);
        t.record(beat(1, 2, 150)); // newer than what is being written
        t.mark_written(&dirty);
        let still: Vec<NodeId> = t.dirty(1).iter().map(|b| b.node_id).collect();
        assert_eq!(still, [2]);
    }

    #[test]
    fn a_full_set_of_unwritten_heartbeats_refuses() {
        let mut t = table();
        // find WAYS + 1 node ids that land in the same set
        let target = set_of(1, 1);
        let same: Vec<NodeId> = (1..200_000)
            .filter(|id| set_of(1, *id) == target)
            .take(WAYS + 1)
            .collect();
        assert_eq!(same.len(), WAYS + 1);
        for id in &same[..WAYS] {
            assert!(t.record(beat(1, *id, 10)));
        }
        assert!(
            !t.record(beat(1, same[WAYS], 10)),
            "no room: the caller writes the row"
        );
        // once written, the oldest entry can go
        let dirty = t.dirty(1);
        t.mark_written(&dirty);
        assert!(t.record(beat(1, same[WAYS], 20)));
        assert_eq!(
            t.get(1, same[WAYS]).map(|b| b.report_time),
            Some(Timestamp(20))
        );
    }

    #[test]
    fn overlay_only_moves_forward() {
        let mut n = node(1, S::Primary);
        let newer = Beat {
            report_time: NOW.plus_ms(500),
            ..beat(1, 1, 0)
        };
        newer.overlay(&mut n);
        assert_eq!(n.report_time, NOW.plus_ms(500));
        assert_eq!(n.sync_state, SyncState::Sync);
        let older = Beat {
            report_time: NOW.plus_ms(-500),
            pg_is_running: false,
            ..beat(1, 1, 0)
        };
        older.overlay(&mut n);
        assert!(
            n.pg_is_running,
            "an older heartbeat does not override the row"
        );
    }
}
