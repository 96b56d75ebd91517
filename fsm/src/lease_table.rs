//! The leases the monitor granted, kept in its shared memory (never in a table: a lease is
//! about the monitor's own monotonic clock, and after a restart every node simply starts
//! without one, which is the slower, 2.0 way, and safe).
//!
//! A fixed-size table keyed by (database, node id), probed over a short window from the key's
//! hash. An entry whose lease ran out long ago may be reused; when the window is full the
//! renewal is not kept, and the node is handled without a lease until a slot frees up.

use crate::model::NodeId;

/// Entries in the table.
pub const CAPACITY: usize = 8192;
/// How many entries a key may occupy from its hash on.
const WINDOW: usize = 16;
/// An entry whose lease ran out this long ago may be given to another node.
const STALE_MS: u64 = 600_000;

/// One node's lease: renewed at `renewed_ms` on the monitor's monotonic clock, for `lease_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// Database the node's row lives in.
    pub database: u32,
    /// Node id.
    pub node_id: NodeId,
    /// When the last renewal was received (monotonic ms).
    pub renewed_ms: u64,
    /// The lease the node's keeper holds, in ms.
    pub lease_ms: u64,
}

/// The lease table.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTable {
    used: [bool; CAPACITY],
    grants: [Grant; CAPACITY],
}

impl Default for LeaseTable {
    fn default() -> Self {
        LeaseTable {
            used: [false; CAPACITY],
            grants: [Grant::default(); CAPACITY],
        }
    }
}

fn start_of(database: u32, node_id: NodeId) -> usize {
    let h = (node_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(database)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(29);
    (h % CAPACITY as u64) as usize
}

impl LeaseTable {
    fn window(database: u32, node_id: NodeId) -> impl Iterator<Item = usize> {
        let start = start_of(database, node_id);
        (0..WINDOW).map(move |i| (start + i) % CAPACITY)
    }

    /// The lease of a node, if it holds one.
    pub fn get(&self, database: u32, node_id: NodeId) -> Option<Grant> {
        LeaseTable::window(database, node_id)
            .find(|&i| {
                self.used[i]
                    && self.grants[i].database == database
                    && self.grants[i].node_id == node_id
            })
            .map(|i| self.grants[i])
    }

    /// Records a renewal at `now_ms`. Returns false when there was no room (the node is then
    /// handled without a lease).
    pub fn renew(&mut self, grant: Grant, now_ms: u64) -> bool {
        let window: Vec<usize> = LeaseTable::window(grant.database, grant.node_id).collect();
        let slot = window
            .iter()
            .copied()
            .find(|&i| {
                self.used[i]
                    && self.grants[i].database == grant.database
                    && self.grants[i].node_id == grant.node_id
            })
            .or_else(|| window.iter().copied().find(|&i| !self.used[i]))
            .or_else(|| {
                window.iter().copied().find(|&i| {
                    let g = self.grants[i];
                    now_ms.saturating_sub(g.renewed_ms.saturating_add(g.lease_ms)) >= STALE_MS
                })
            });
        match slot {
            Some(i) => {
                self.used[i] = true;
                self.grants[i] = grant;
                true
            }
            None => false,
        }
    }

    /// Forgets a node's lease (its keeper no longer holds one).
    pub fn forget(&mut self, database: u32, node_id: NodeId) {
        for i in LeaseTable::window(database, node_id) {
            if self.used[i]
                && self.grants[i].database == database
                && self.grants[i].node_id == node_id
            {
                self.used[i] = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(database: u32, node_id: NodeId, renewed_ms: u64) -> Grant {
        Grant {
            database,
            node_id,
            renewed_ms,
            lease_ms: 3_000,
        }
    }

    #[test]
    fn a_renewal_replaces_the_previous_one() {
        let mut t = Box::<LeaseTable>::default();
        assert!(t.renew(grant(1, 7, 100), 100));
        assert!(t.renew(grant(1, 7, 1_100), 1_100));
        assert_eq!(t.get(1, 7), Some(grant(1, 7, 1_100)));
        assert_eq!(t.get(2, 7), None, "databases are apart");
        t.forget(1, 7);
        assert_eq!(t.get(1, 7), None);
    }

    #[test]
    fn a_full_window_refuses_until_a_lease_is_stale() {
        let mut t = Box::<LeaseTable>::default();
        // fill every slot: all keys collide somewhere, and every window is full
        let mut id = 0;
        while t.used.iter().any(|u| !u) {
            id += 1;
            let _ = t.renew(grant(1, id, 0), 0);
        }
        let newcomer = grant(1, id + 1, 1_000);
        assert!(
            !t.renew(newcomer, 1_000),
            "no room: handled without a lease"
        );
        assert!(
            t.renew(newcomer, STALE_MS + 3_000),
            "stale leases are reused"
        );
        assert_eq!(t.get(1, id + 1), Some(newcomer));
    }
}
