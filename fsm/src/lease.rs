//! Primary leases: how long a node may go on taking writes after its last successful
//! `node_active`, seen from both sides.
//!
//! A keeper that holds a lease of `L` ms counts it from the instant it *sent* a heartbeat that
//! then succeeded; the monitor counts the same lease from the instant it *received* that
//! heartbeat, which is later. Both use monotonic clocks, so no clock agreement is needed: the
//! keeper's deadline always falls first. The monitor adds `margin` ms on top for the keeper's
//! scheduling delay and the time fencing itself takes (stopping Postgres).
//!
//! ```text
//! keeper    send ──────────────── deadline = send + L: fence (stop Postgres) ─┐
//! monitor        receive ────────────────── receive + L: primary silent ──── + margin: promote
//! ```
//!
//! The exception (as in pg_auto_failover): a primary past its lease that still streams to a
//! *synchronous* standby keeps serving, so that a monitor outage alone never takes writes down.
//! It cannot acknowledge a commit that standby has not flushed, and the monitor promotes that
//! standby only after it stopped replicating (`stop_replication`): from then on the old
//! primary's commits wait forever and its keeper, seeing no synchronous standby, fences.
//!
//! A node that never renewed a lease (a pg_auto_failover 2.0 keeper, or any node right after a
//! monitor restart, since leases live in shared memory) is handled the 2.0 way: silent for
//! `node_considered_unhealthy_timeout`, then `primary_demote_timeout` after `demote_timeout`.

use crate::model::Timestamp;

/// What the keeper of a node that may take writes knows when it decides whether to fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeeperLeaseView {
    /// Now, on the keeper's monotonic clock (ms).
    pub now_ms: u64,
    /// When the lease runs out (send time of the last successful heartbeat + lease), on the
    /// same clock; `None` when the monitor grants no leases (a pg_auto_failover 2.0 monitor).
    pub deadline_ms: Option<u64>,
    /// Whether the group has other nodes (a lone node has nobody to be promoted in its place).
    pub has_other_nodes: bool,
    /// Standbys streaming from this node that count for synchronous replication (`sync` or
    /// `quorum` in `pg_stat_replication`, replied recently).
    pub sync_standbys_streaming: i64,
}

/// Whether the keeper must fence its Postgres now: its lease ran out, another node could be
/// promoted, and no synchronous standby guards its commits.
pub fn keeper_must_fence(view: &KeeperLeaseView) -> bool {
    match view.deadline_ms {
        None => false,
        Some(deadline) => {
            view.now_ms >= deadline && view.has_other_nodes && view.sync_standbys_streaming == 0
        }
    }
}

/// The keeper's deadline for a heartbeat sent at `sent_ms` that succeeded.
pub fn keeper_deadline(sent_ms: u64, lease_ms: u64) -> u64 {
    sent_ms.saturating_add(lease_ms)
}

/// The lease as the monitor holds it for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorLease {
    /// When the lease runs out on the monitor (receive time of the last renewal + lease).
    pub expires: Timestamp,
}

impl MonitorLease {
    /// The lease renewed by a heartbeat received `age_ms` ago, for `lease_ms`, as a timestamp
    /// relative to `now` (the monitor keeps leases on its monotonic clock and converts them at
    /// each decision).
    pub fn from_age(now: Timestamp, age_ms: i64, lease_ms: i64) -> MonitorLease {
        MonitorLease {
            expires: now.plus_ms(lease_ms.saturating_sub(age_ms)),
        }
    }

    /// Whether the lease ran out: the node's keeper has passed its own deadline.
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.expires
    }

    /// Whether the lease ran out `margin_ms` ago: a keeper that lost it has fenced by now.
    pub fn fenced(&self, now: Timestamp, margin_ms: i64) -> bool {
        now >= self.expires.plus_ms(margin_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(now: u64, deadline: Option<u64>, others: bool, sync: i64) -> KeeperLeaseView {
        KeeperLeaseView {
            now_ms: now,
            deadline_ms: deadline,
            has_other_nodes: others,
            sync_standbys_streaming: sync,
        }
    }

    #[test]
    fn a_keeper_fences_at_its_deadline_only() {
        assert!(!keeper_must_fence(&view(999, Some(1000), true, 0)));
        assert!(keeper_must_fence(&view(1000, Some(1000), true, 0)));
    }

    #[test]
    fn a_synchronous_standby_keeps_a_primary_serving_past_its_lease() {
        assert!(!keeper_must_fence(&view(5000, Some(1000), true, 1)));
    }

    #[test]
    fn a_lone_node_or_a_2_0_monitor_never_fences_on_a_lease() {
        assert!(!keeper_must_fence(&view(5000, Some(1000), false, 0)));
        assert!(!keeper_must_fence(&view(5000, None, true, 0)));
    }

    #[test]
    fn the_monitor_lease_counts_from_the_receive_time() {
        let now = Timestamp(1_000_000_000);
        let lease = MonitorLease::from_age(now, 1_200, 3_000);
        assert_eq!(lease.expires, now.plus_ms(1_800));
        assert!(!lease.expired(now.plus_ms(1_799)));
        assert!(lease.expired(now.plus_ms(1_800)));
        assert!(!lease.fenced(now.plus_ms(2_299), 500));
        assert!(lease.fenced(now.plus_ms(2_300), 500));
    }

    /// One heartbeat of the old primary's keeper in a random schedule.
    #[derive(Debug, Clone, Copy)]
    enum Beat {
        /// Lost on the way to the monitor (a partition, a monitor down).
        Lost,
        /// Reached the monitor after `to` ms; its answer came back after `back` ms more, or
        /// was lost.
        Delivered { to: u64, back: Option<u64> },
    }

    /// A schedule: heartbeats (gap before each, fate), then silence for good.
    #[derive(Debug, Clone)]
    struct Schedule {
        lease_ms: u64,
        margin_ms: u64,
        beats: Vec<(u64, Beat)>,
        /// How late the keeper notices its deadline, plus how long stopping Postgres takes.
        keeper_delay_ms: u64,
        /// The candidate streams synchronously from the old primary until it stops replicating
        /// (then the old primary can no longer acknowledge a commit).
        sync_standby: bool,
        /// How long the candidate takes from the monitor's decision to stop replicating.
        stop_replication_ms: u64,
    }

    /// What happened in one run, in real time (ms).
    #[derive(Debug)]
    struct Outcome {
        /// The old primary acknowledged commits in [0, last_ack).
        last_ack: u64,
        /// The new primary takes writes from here (`None`: no promotion in the horizon).
        promoted: Option<u64>,
    }

    const HORIZON: u64 = 40_000;

    /// Steps the schedule millisecond by millisecond, with the keeper deciding through
    /// [`keeper_must_fence`] and the monitor through [`MonitorLease`].
    fn run(s: &Schedule) -> Outcome {
        // (send, receive at monitor, answer back at keeper)
        let mut sends = Vec::new();
        let mut t = 0;
        for (gap, beat) in &s.beats {
            t += gap;
            sends.push((t, *beat));
        }
        let now_ts = |ms: u64| Timestamp(1_000_000_000_000 + ms as i64 * 1000);
        let mut deadline: Option<u64> = Some(s.lease_ms); // granted at registration, t = 0
        let mut last_receive: u64 = 0;
        let mut fenced_at: Option<u64> = None; // when the keeper noticed
        let mut decided: Option<u64> = None; // monitor's failover decision
        let mut stopped_streaming: Option<u64> = None;
        let mut promoted = None;
        for now in 0..HORIZON {
            // the monitor receives heartbeats; after its decision they renew nothing
            for (send, beat) in &sends {
                if let Beat::Delivered { to, back } = beat {
                    if send + to == now && decided.is_none() {
                        last_receive = now;
                    }
                    // the keeper renews only on an answer that keeps it primary
                    if let Some(back) = back
                        && send + to + back == now
                        && decided.is_none_or(|d| send + to < d)
                    {
                        deadline =
                            Some(deadline.map_or(0, |d| d.max(keeper_deadline(*send, s.lease_ms))));
                    }
                }
            }
            // the monitor: the old primary's lease ran out a margin ago (its probe failed)
            let age = now.saturating_sub(last_receive) as i64;
            let lease = MonitorLease::from_age(now_ts(now), age, s.lease_ms as i64);
            if decided.is_none() && lease.fenced(now_ts(now), s.margin_ms as i64) {
                decided = Some(now);
            }
            if let Some(d) = decided {
                if stopped_streaming.is_none() && now >= d + s.stop_replication_ms {
                    stopped_streaming = Some(now);
                }
                // promotion completes once the candidate stopped replicating
                if promoted.is_none() && stopped_streaming.is_some() {
                    promoted = Some(now);
                }
            }
            // the keeper
            let streaming = s.sync_standby && stopped_streaming.is_none();
            let view = KeeperLeaseView {
                now_ms: now,
                deadline_ms: deadline,
                has_other_nodes: true,
                sync_standbys_streaming: i64::from(streaming),
            };
            if fenced_at.is_none() && keeper_must_fence(&view) {
                fenced_at = Some(now);
            }
        }
        // Postgres takes commits until the fence completes; with a synchronous standby, a
        // commit is acknowledged only while the standby streams.
        let fence_done = fenced_at.map_or(HORIZON, |f| f + s.keeper_delay_ms);
        let last_ack = if s.sync_standby {
            fence_done.min(stopped_streaming.unwrap_or(HORIZON))
        } else {
            fence_done
        };
        Outcome { last_ack, promoted }
    }

    fn arb_beat() -> impl Strategy<Value = (u64, Beat)> {
        (
            200u64..2_500,
            prop_oneof![
                1 => Just(Beat::Lost),
                4 => (0u64..1_500, prop::option::weighted(0.8, 0u64..1_500))
                    .prop_map(|(to, back)| Beat::Delivered { to, back }),
            ],
        )
    }

    fn arb_schedule(keeper_delay_within_margin: bool) -> impl Strategy<Value = Schedule> {
        (
            1_000u64..5_000,
            100u64..1_500,
            prop::collection::vec(arb_beat(), 0..12),
            0.0f64..=1.0,
            any::<bool>(),
            0u64..2_000,
        )
            .prop_map(
                move |(lease_ms, margin_ms, beats, delay, sync_standby, stop)| {
                    let keeper_delay_ms = if keeper_delay_within_margin {
                        (margin_ms as f64 * delay) as u64
                    } else {
                        margin_ms + 1 + (delay * 1_000.0) as u64
                    };
                    Schedule {
                        lease_ms,
                        margin_ms,
                        beats,
                        keeper_delay_ms,
                        sync_standby,
                        stop_replication_ms: stop,
                    }
                },
            )
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 96,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x00C0_FFEE),
            ..ProptestConfig::default()
        })]

        /// At no instant may both the old primary acknowledge a commit and the new one take
        /// writes, whatever the delays and losses, as long as the keeper fences within the
        /// margin.
        #[test]
        fn no_two_writers_over_random_schedules(s in arb_schedule(true)) {
            let out = run(&s);
            if let Some(p) = out.promoted {
                prop_assert!(out.last_ack <= p, "old primary acknowledged until {} but the new one took writes from {p}: {s:?}", out.last_ack);
            }
        }
    }

    /// The margin is what the proof rests on: a keeper slower than the margin to fence can
    /// overlap with the new primary (this is why `node_lease_margin` must cover the keeper's
    /// scheduling delay and the time stopping Postgres takes).
    #[test]
    fn a_keeper_slower_than_the_margin_can_overlap() {
        let s = Schedule {
            lease_ms: 2_000,
            margin_ms: 500,
            beats: vec![(
                1_000,
                Beat::Delivered {
                    to: 0,
                    back: Some(0),
                },
            )],
            keeper_delay_ms: 800,
            sync_standby: false,
            stop_replication_ms: 0,
        };
        let out = run(&s);
        assert_eq!(out.promoted, Some(3_500));
        assert_eq!(out.last_ack, 3_800);
    }

    /// A synchronous standby keeps the old primary serving past its lease (a monitor outage
    /// alone takes no writes down), until the candidate stops replicating.
    #[test]
    fn a_synchronous_standby_bounds_the_old_primary_by_stop_replication() {
        let s = Schedule {
            lease_ms: 2_000,
            margin_ms: 500,
            beats: vec![],
            keeper_delay_ms: 0,
            sync_standby: true,
            stop_replication_ms: 300,
        };
        let out = run(&s);
        assert_eq!(out.promoted, Some(2_800));
        assert_eq!(out.last_ack, 2_800);
    }
}
