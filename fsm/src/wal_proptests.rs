//! Elections against the WAL each node really holds: random schedules of writes, host losses
//! and returns, Postgres crashes, time, `perform_failover` and `perform_promotion`, where the
//! simulated keepers move WAL as real ones do. A primary writes; streaming standbys receive all
//! or part of it; a commit in `primary` is acknowledged once `max(1, number_sync_standbys)`
//! quorum standbys hold it, or at once when no standby is in the replication quorum
//! (`synchronous_standby_names` is empty; commits of `wait_primary` and `single` are not
//! counted: those states trade them for availability, as in 2.0); a promotion starts a new timeline forked where the node's WAL
//! ended; a standby that follows a primary takes its history (streaming or rewinding); a
//! candidate told to fast-forward fetches from the most advanced standby that is up. Every node
//! reports the timeline of the WAL it holds at its LSN, as keepers read it from their files.
//!
//! Standbys move in and out of the replication quorum at random.
//!
//! Checked:
//! - safety: a node that becomes writable by promotion holds every acknowledged commit (on the
//!   history it continues), and every decision keeps the invariants of `proptests`; the one
//!   exception is a node an operator named with `perform_promotion`, which may lack commits a
//!   primary acknowledged alone (the operator chose it, as in 2.0);
//! - election order: a node put on the promotion path holds at least as much WAL as any other
//!   standby that reported its position, on the same history;
//! - liveness: once every host is back and keepers report, an election always ends with one
//!   writable node.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::ReplicationState as S;
use crate::api;
use crate::group::Effect;
use crate::model::{Health, Lsn, NodeId};
use crate::proptests::{check_decision, config};
use crate::report::Report;
use crate::rules::proceed;
use crate::sim::{Sim, pg_runs_in};
use crate::testing::node;

/// Where a node's WAL ends: the bytes of timeline `tli`'s history before `lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wal {
    tli: u32,
    lsn: u64,
}

/// The group plus the WAL of each node and the timelines promotions created.
struct WalWorld {
    sim: Sim,
    wal: BTreeMap<NodeId, Wal>,
    /// Timeline → (parent, where the parent ended).
    forks: BTreeMap<u32, (u32, u64)>,
    pg_down: std::collections::BTreeSet<NodeId>,
    /// Commits acknowledged under synchronous replication.
    acked: Vec<Wal>,
    /// Commits a primary acknowledged with no synchronous standby to wait for.
    acked_alone: Vec<Wal>,
    /// Nodes an operator named with `perform_promotion`, until they are promoted.
    named: std::collections::BTreeSet<NodeId>,
}

#[derive(Debug, Clone)]
enum Event {
    Heartbeat {
        node: usize,
        reach: bool,
    },
    Kill(usize),
    Revive(usize),
    PgDown(usize, bool),
    Advance(i64),
    Write {
        bytes: u64,
        lagging: u8,
    },
    Failover,
    /// `set_node_replication_quorum`
    Quorum(usize, bool),
    Promote(usize),
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        12 => (0..4usize, prop::bool::weighted(0.85))
            .prop_map(|(node, reach)| Event::Heartbeat { node, reach }),
        1 => (0..4usize).prop_map(Event::Kill),
        1 => (0..4usize).prop_map(Event::Revive),
        1 => (0..4usize, any::<bool>()).prop_map(|(n, b)| Event::PgDown(n, b)),
        3 => prop::sample::select(vec![1_000i64, 5_000, 25_000, 35_000]).prop_map(Event::Advance),
        4 => (prop::sample::select(vec![100u64, 4096, 1 << 20]), any::<u8>())
            .prop_map(|(bytes, lagging)| Event::Write { bytes, lagging }),
        1 => Just(Event::Failover),
        1 => (0..4usize).prop_map(Event::Promote),
        1 => (0..4usize, any::<bool>()).prop_map(|(n, q)| Event::Quorum(n, q)),
    ]
}

impl WalWorld {
    /// A group of `size` nodes; node `i` (from 0) is outside the replication quorum when bit
    /// `i` of `asynchronous` is set.
    fn new(size: usize, asynchronous: u8) -> Self {
        let mut nodes = vec![node(1, S::Single)];
        for id in 2..=size as NodeId {
            let mut standby = node(id, S::WaitStandby);
            standby.reported = S::Init;
            nodes.push(standby);
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            n.replication_quorum = asynchronous & (1 << i) == 0;
        }
        let wal = (1..=size as NodeId)
            .map(|id| {
                (
                    id,
                    Wal {
                        tli: 1,
                        lsn: 0x100_0000,
                    },
                )
            })
            .collect();
        let mut world = WalWorld {
            sim: Sim::new(nodes),
            wal,
            forks: BTreeMap::new(),
            pg_down: Default::default(),
            acked: Vec::new(),
            acked_alone: Vec::new(),
            named: Default::default(),
        };
        for _ in 0..25 {
            world.sim.probe();
            for i in 0..size {
                if let Err(e) = world.apply(&Event::Heartbeat {
                    node: i,
                    reach: true,
                }) {
                    panic!("bootstrap: {e}");
                }
            }
            world.sim.advance(1_000);
        }
        world
    }

    fn id(&self, index: usize) -> Option<NodeId> {
        let ids: Vec<NodeId> = self.sim.group.all_nodes().iter().map(|n| n.id).collect();
        (!ids.is_empty()).then(|| ids[index % ids.len()])
    }

    fn alive(&self, id: NodeId) -> bool {
        !self.sim.dead.contains(&id)
    }

    /// The timeline that wrote the last byte of `w`.
    fn timeline_of(&self, w: Wal) -> u32 {
        let mut tli = w.tli;
        while let Some(&(parent, fork)) = self.forks.get(&tli) {
            if w.lsn <= fork {
                tli = parent;
            } else {
                break;
            }
        }
        tli
    }

    /// Whether a node whose WAL ends at `node` holds the bytes before `pos` of `pos`'s
    /// history.
    fn holds(&self, node: Wal, pos: Wal) -> bool {
        if pos.lsn > node.lsn {
            return false;
        }
        // walk node's history back: the timeline that wrote pos's last byte must be on it,
        // with pos's bytes inside the part of it this node holds
        let writer = self.timeline_of(pos);
        let mut tli = node.tli;
        let mut limit = node.lsn;
        loop {
            if tli == writer {
                return pos.lsn <= limit;
            }
            match self.forks.get(&tli) {
                Some(&(parent, fork)) => {
                    limit = limit.min(fork);
                    tli = parent;
                }
                None => return false,
            }
        }
    }

    /// The live writable node whose Postgres runs, if any.
    fn writer(&self) -> Option<NodeId> {
        self.sim
            .group
            .members()
            .find(|n| {
                n.reported.can_take_writes()
                    && n.goal.can_take_writes()
                    && self.alive(n.id)
                    && !self.pg_down.contains(&n.id)
            })
            .map(|n| n.id)
    }

    /// What a keeper's transition to `goal` does to its WAL; whether it completed (a
    /// fast-forward with no source up fails, and is tried again at the next heartbeat).
    fn transition(&mut self, id: NodeId, from: S, goal: S) -> Result<bool, String> {
        let Some(mine) = self.wal.get(&id).copied() else {
            return Ok(true);
        };
        // a standby promoted (an old primary restarting stays on its timeline)
        let was_standby = matches!(
            from,
            S::Secondary
                | S::Catchingup
                | S::PreparePromotion
                | S::StopReplication
                | S::ReportLsn
                | S::FastForward
                | S::JoinSecondary
                | S::WaitMaintenance
        );
        let promoting = (goal.can_take_writes() || goal == S::StopReplication) && was_standby;
        if promoting {
            // a new timeline forks where this node's WAL ends
            let holder = self.check_promotion_holds_acked(id, mine)?;
            if self.named.remove(&id) {
                // what the primary acknowledged alone and this node lacks is lost by the
                // operator's choice
                let acked_alone = std::mem::take(&mut self.acked_alone);
                self.acked_alone = acked_alone
                    .into_iter()
                    .filter(|ack| self.holds(mine, *ack))
                    .collect();
            }
            let new_tli = self.forks.keys().max().copied().unwrap_or(1).max(holder) + 1;
            self.forks.insert(new_tli, (mine.tli, mine.lsn));
            self.wal.insert(
                id,
                Wal {
                    tli: new_tli,
                    lsn: mine.lsn + 64,
                },
            );
            return Ok(true);
        }
        match goal {
            S::Catchingup | S::Secondary | S::JoinSecondary => {
                if let Some(p) = self.writer().filter(|p| *p != id)
                    && let Some(primary) = self.wal.get(&p).copied()
                {
                    // stream, or rewind onto the primary's history
                    self.wal.insert(id, primary);
                }
            }
            S::FastForward => {
                // the keeper streams from the most advanced other standby reporting its LSN;
                // it completes once it holds what that one reported
                let best = self
                    .sim
                    .group
                    .members()
                    .filter(|n| n.id != id && n.reported == S::ReportLsn)
                    .max_by_key(|n| (n.reported_tli, n.reported_lsn))
                    .map(|n| n.id);
                let Some(source) = best else {
                    return Ok(true);
                };
                let Some(theirs) = self.wal.get(&source).copied() else {
                    return Ok(true);
                };
                if self.holds(mine, theirs) {
                    return Ok(true);
                }
                if !self.alive(source)
                    || self.pg_down.contains(&source)
                    || !self.holds(theirs, mine)
                {
                    return Ok(false);
                }
                self.wal.insert(id, theirs);
            }
            _ => {}
        }
        Ok(true)
    }

    /// A node about to be promoted must hold every acknowledged commit of the history it
    /// continues. Returns the highest timeline it knows of.
    fn check_promotion_holds_acked(&self, id: NodeId, mine: Wal) -> Result<u32, String> {
        let named = self.named.contains(&id);
        let alone = self.acked_alone.iter().filter(|_| !named);
        for ack in self.acked.iter().chain(alone) {
            if !self.holds(mine, *ack) {
                return Err(format!(
                    "node {id} promoted with WAL at {mine:?} lacks the acknowledged commit at \
                     {ack:?}; forks {:?}, WAL {:?}",
                    self.forks, self.wal
                ));
            }
        }
        Ok(mine.tli)
    }

    fn report(&mut self, id: NodeId, state: S) {
        let Some(w) = self.wal.get(&id).copied() else {
            return;
        };
        let tli = i32::try_from(self.timeline_of(w)).unwrap_or(i32::MAX);
        let sync_state = self.sim.group.get(id).map(|n| n.sync_state);
        let report = Report {
            state,
            pg_is_running: pg_runs_in(state) && !self.pg_down.contains(&id),
            tli,
            lsn: Lsn(w.lsn),
            sync_state: sync_state.unwrap_or(crate::model::SyncState::Unknown),
        };
        self.sim.group.report(id, &report);
    }

    /// Runs the rules for `id` and checks the decision.
    fn decide(
        &mut self,
        decision: impl FnOnce(&mut crate::group::Group) -> Result<(), crate::FsmError>,
    ) -> Result<(), String> {
        let before = self.sim.group.clone();
        let mut attempt = self.sim.group.clone();
        if decision(&mut attempt).is_ok() {
            let effects = attempt.take_effects();
            check_decision(&before, &effects, None)?;
            self.check_order(&before, &effects)?;
            self.sim.group = attempt;
        }
        Ok(())
    }

    /// A node put on the promotion path holds at least the WAL of every other standby that
    /// reported its position for the election, when both are on one history.
    fn check_order(&self, before: &crate::group::Group, effects: &[Effect]) -> Result<(), String> {
        for effect in effects {
            let Effect::AssignGoal { node_id, goal, .. } = effect else {
                continue;
            };
            if *goal != S::PreparePromotion {
                continue;
            }
            let Some(mine) = self.wal.get(node_id).copied() else {
                continue;
            };
            for other in before
                .members()
                .filter(|n| n.id != *node_id && n.reported == S::ReportLsn)
            {
                let Some(theirs) = self.wal.get(&other.id).copied() else {
                    continue;
                };
                // theirs holds all of mine and more: same history, and they are ahead
                if self.holds(theirs, mine) && !self.holds(mine, theirs) {
                    return Err(format!(
                        "node {node_id} at {mine:?} elected while node {} holds more: \
                         {theirs:?}",
                        other.id
                    ));
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::Heartbeat { node, reach } => {
                let Some(id) = self.id(*node) else {
                    return Ok(());
                };
                if !self.alive(id) {
                    return Ok(());
                }
                let Some(n) = self.sim.group.get(id).cloned() else {
                    return Ok(());
                };
                let reached = *reach
                    && !self.pg_down.contains(&id)
                    && (n.goal == n.reported || self.transition(id, n.reported, n.goal)?);
                let state = if reached { n.goal } else { n.reported };
                self.report(id, state);
                self.decide(|g| proceed(g, id).map(|_| ()))
            }
            Event::Kill(i) => {
                if let Some(id) = self.id(*i) {
                    self.sim.dead.insert(id);
                }
                Ok(())
            }
            Event::Revive(i) => {
                if let Some(id) = self.id(*i) {
                    self.sim.dead.remove(&id);
                }
                Ok(())
            }
            Event::PgDown(i, down) => {
                if let Some(id) = self.id(*i) {
                    if *down {
                        self.pg_down.insert(id);
                    } else {
                        self.pg_down.remove(&id);
                    }
                }
                Ok(())
            }
            Event::Advance(ms) => {
                self.sim.advance(*ms);
                self.sim.probe();
                Ok(())
            }
            Event::Write { bytes, lagging } => {
                self.write(*bytes, *lagging);
                Ok(())
            }
            Event::Failover => self.decide(api::perform_failover),
            Event::Promote(i) => match self.id(*i) {
                Some(n) => {
                    let mut accepted = false;
                    self.decide(|g| {
                        let promoting = api::perform_promotion(g, n)?;
                        accepted = promoting;
                        Ok(())
                    })?;
                    if accepted {
                        self.named.insert(n);
                    }
                    Ok(())
                }
                None => Ok(()),
            },
            Event::Quorum(i, q) => match self.id(*i) {
                Some(n) => {
                    let mut accepted = false;
                    self.decide(|g| {
                        accepted = api::set_replication_quorum(g, n, *q)?;
                        Ok(())
                    })?;
                    if accepted && *q {
                        // A known gap: a primary that acknowledged commits alone and dies
                        // before applying the new quorum leaves the monitor counting on a
                        // standby that may lack them (the monitor cannot see which setting a
                        // primary applied). The quorum member's position then does not locate
                        // them: no longer claimed.
                        self.acked_alone.clear();
                    }
                    Ok(())
                }
                None => Ok(()),
            },
        }
    }

    /// The writer adds `bytes`; each streaming standby receives it unless its bit in
    /// `lagging` is set; the commit is acknowledged when enough quorum standbys hold it.
    fn write(&mut self, bytes: u64, lagging: u8) {
        let Some(p) = self.writer() else {
            return;
        };
        let Some(mut w) = self.wal.get(&p).copied() else {
            return;
        };
        w.lsn += bytes;
        self.wal.insert(p, w);
        let standbys: Vec<(NodeId, bool)> = self
            .sim
            .group
            .members()
            .filter(|n| {
                n.id != p
                    && matches!(n.reported, S::Secondary | S::Catchingup)
                    && self.alive(n.id)
                    && !self.pg_down.contains(&n.id)
            })
            .map(|n| (n.id, n.replication_quorum))
            .collect();
        let mut quorum_holders = 0;
        for (i, (id, quorum)) in standbys.into_iter().enumerate() {
            let Some(theirs) = self.wal.get(&id).copied() else {
                continue;
            };
            // a standby streams only what follows its own WAL on the primary's history
            if lagging & (1 << (i % 8)) == 0 && self.holds(w, theirs) {
                self.wal.insert(id, w);
                if quorum {
                    quorum_holders += 1;
                }
            }
        }
        let Some(primary) = self.sim.group.get(p) else {
            return;
        };
        let needed =
            usize::try_from(self.sim.group.formation.number_sync_standbys.max(1)).unwrap_or(1);
        let quorum_standbys = self
            .sim
            .group
            .members()
            .any(|n| n.id != p && n.replication_quorum);
        // synchronous replication is on in `primary` when a standby is in the quorum, and
        // with every standby asynchronous the primary acknowledges alone. (wait_primary and
        // single acknowledge alone too, by design unprotected: an election that replaces a
        // lost wait_primary loses them, as in 2.0; while settings are being applied the
        // primary's setting is in flux: no commit is counted.)
        if primary.goal != S::Primary || primary.reported != S::Primary {
            return;
        }
        if !quorum_standbys {
            self.acked_alone.push(w);
        } else if quorum_holders >= needed {
            self.acked.push(w);
        }
    }

    /// Every host back, Postgres up, keepers reporting and reaching their goals: the group
    /// must end with exactly one writable node.
    fn settle(&mut self) -> Result<(), String> {
        self.sim.dead.clear();
        self.pg_down.clear();
        for round in 0..300 {
            self.sim.probe();
            let ids: Vec<NodeId> = self.sim.group.all_nodes().iter().map(|n| n.id).collect();
            for (i, _) in ids.iter().enumerate() {
                self.apply(&Event::Heartbeat {
                    node: i,
                    reach: true,
                })
                .map_err(|e| format!("settling, round {round}: {e}"))?;
            }
            self.sim.advance(1_000);
            let writable: Vec<NodeId> = self
                .sim
                .group
                .members()
                .filter(|n| n.reported.can_take_writes() && n.goal == n.reported)
                .map(|n| n.id)
                .collect();
            if writable.len() == 1 && round > 5 {
                return Ok(());
            }
        }
        Err(format!(
            "no writable node after 300 s: {:?}",
            self.sim
                .group
                .all_nodes()
                .iter()
                .map(|n| (
                    n.id,
                    n.reported,
                    n.goal,
                    n.candidate_priority,
                    n.reported_tli,
                    n.reported_lsn.0,
                    n.health
                ))
                .collect::<Vec<_>>()
        ))
    }
}

fn run(size: usize, asynchronous: u8, events: &[Event]) -> Result<(), String> {
    let mut world = WalWorld::new(size, asynchronous);
    for (step, event) in events.iter().enumerate() {
        world
            .apply(event)
            .map_err(|e| format!("step {step} ({event:?}): {e}"))?;
    }
    world.settle()
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn elections_keep_acknowledged_commits_and_always_end(
        size in 3..=4usize,
        // every node in the quorum, some standbys outside it, or none
        asynchronous in prop::sample::select(vec![0u8, 0b0100, 0b1100, 0b1110, 0b1111]),
        events in prop::collection::vec(arb_event(), 1..120),
    ) {
        if let Err(e) = run(size, asynchronous, &events) {
            return Err(TestCaseError::fail(e));
        }
    }
}

#[test]
fn the_wal_model_knows_histories() {
    let mut world = WalWorld::new(3, 0);
    world.forks.insert(2, (1, 0x500));
    let fork_holder = Wal { tli: 2, lsn: 0x600 };
    assert!(world.holds(fork_holder, Wal { tli: 1, lsn: 0x400 }));
    assert!(world.holds(fork_holder, Wal { tli: 1, lsn: 0x500 }));
    // timeline 1 past the fork diverged
    assert!(!world.holds(fork_holder, Wal { tli: 1, lsn: 0x501 }));
    assert_eq!(world.timeline_of(Wal { tli: 2, lsn: 0x500 }), 1);
    assert_eq!(world.timeline_of(Wal { tli: 2, lsn: 0x501 }), 2);
    assert!(matches!(
        world.sim.group.get(1).map(|n| n.health),
        Some(Health::Good)
    ));
}

#[test]
fn schedules_reach_elections_and_acknowledged_commits() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::new(config(1));
    let (mut promotions, mut acks, mut elections) = (0, 0, 0);
    for _ in 0..60 {
        let events = prop::collection::vec(arb_event(), 60..120)
            .new_tree(&mut runner)
            .expect("events")
            .current();
        let mut world = WalWorld::new(4, 0);
        for event in &events {
            let _ = world.apply(event);
            elections += world
                .sim
                .group
                .members()
                .filter(|n| n.goal == S::ReportLsn)
                .count();
        }
        promotions += world.forks.len();
        acks += world.acked.len();
    }
    eprintln!("promotions {promotions}, acknowledged commits {acks}, report_lsn goals {elections}");
    assert!(promotions > 10 && acks > 30 && elections > 20);
}
