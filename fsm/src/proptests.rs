//! Property tests: the safety invariants of the rules, over random snapshots and over random
//! schedules of heartbeats, host losses, time, WAL traffic and API calls.
//!
//! Invariants checked after every decision:
//! 1. at most one node of a group has a writable goal;
//! 2. a node is only given a writable goal (promoted) when every other node that may still take
//!    writes has confirmed it stopped, or was given the demote timeout to stop itself;
//! 3. a standby is never put on the promotion path (`prepare_promotion`) while another standby
//!    is known to have more WAL;
//! 4. a node in maintenance is never given another goal by the rules;
//! 5. every (reported, assigned) pair produced is listed in [`crate::edges::MONITOR_EDGES`].

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::ReplicationState as S;
use crate::api;
use crate::edges::is_monitor_edge;
use crate::group::{Effect, Group};
use crate::model::{Health, Lsn, Node, NodeId};
use crate::report::Report;
use crate::rules::proceed;
use crate::sim::{Sim, pg_runs_in};
use crate::testing::{NOW, group, node};

/// Checks one decision: `before` is the group the rules ran on, `effects` what they decided.
pub(crate) fn check_decision(
    before: &Group,
    effects: &[Effect],
    leaving_maintenance: Option<NodeId>,
) -> Result<Vec<(S, S)>, String> {
    check_decision_inner(before, effects, leaving_maintenance).map_err(|e| {
        format!(
            "{e}\n  before: {:?}\n  effects: {effects:#?}",
            before
                .all_nodes()
                .iter()
                .map(|n| (
                    n.id,
                    n.reported,
                    n.goal,
                    n.candidate_priority,
                    n.pg_is_running
                ))
                .collect::<Vec<_>>()
        )
    })
}

fn check_decision_inner(
    before: &Group,
    effects: &[Effect],
    leaving_maintenance: Option<NodeId>,
) -> Result<Vec<(S, S)>, String> {
    let mut after = before.clone();
    let mut edges = Vec::new();
    let writers_before = before
        .members()
        .filter(|n| n.goal.can_take_writes())
        .count();
    for effect in effects {
        match effect {
            Effect::AssignGoal { node_id, goal, .. } => {
                let node = before
                    .get(*node_id)
                    .ok_or_else(|| format!("assigned unknown node {node_id}"))?;
                edges.push((node.reported, *goal));
                if node.goal == S::Maintenance && leaving_maintenance != Some(*node_id) {
                    return Err(format!(
                        "{} in maintenance was assigned {goal}",
                        node.label()
                    ));
                }
                if goal.can_take_writes() && !node.goal.can_take_writes() {
                    check_promotion(before, &after, *node_id)?;
                }
                if *goal == S::PreparePromotion {
                    check_most_advanced(before, &after, *node_id)?;
                }
                if let Some(n) = after.get_mut(*node_id) {
                    n.goal = *goal;
                }
            }
            Effect::DeleteNode { node_id, .. } => {
                let node = before
                    .get(*node_id)
                    .ok_or_else(|| format!("deleted unknown node {node_id}"))?;
                // remove_node(force) deletes at once: that is what force means.
                if !node.is_converged(S::Dropped) && leaving_maintenance != Some(*node_id) {
                    return Err(format!("deleted {} not converged to dropped", node.label()));
                }
            }
            _ => {}
        }
    }
    let writers_after = after.members().filter(|n| n.goal.can_take_writes()).count();
    if writers_before <= 1 && writers_after > 1 {
        return Err(format!(
            "two writable goals after the decision: {:?}",
            after
                .members()
                .map(|n| (n.id, n.reported, n.goal))
                .collect::<Vec<_>>()
        ));
    }
    Ok(edges)
}

/// Invariant 2: promoting `id` is safe with respect to every other node. `now` holds the goals
/// as assigned so far in the decision, `before` what was observed.
fn check_promotion(before: &Group, now: &Group, id: NodeId) -> Result<(), String> {
    for other in now.all_nodes().iter().filter(|n| n.id != id) {
        if other.goal.can_take_writes() {
            return Err(format!(
                "promoting node {id} while {} has writable goal {}",
                other.label(),
                other.goal
            ));
        }
        // demoted is only ever assigned once the node confirmed it stopped or its drain
        // timeout expired: it stays fenced.
        let fenced = !other.reported.belongs_to_primary()
            || other.goal == S::Demoted
            || other.is_converged(S::DemoteTimeout)
            || other.is_converged(S::PrepareMaintenance)
            || before
                .get(other.id)
                .is_some_and(|b| before.health.drain_time_expired(Some(b)))
            || (other.goal == S::Dropped && before.health.is_unhealthy(Some(other)));
        if !fenced {
            return Err(format!(
                "promoting node {id} while {} (reported {}, goal {}) may still take writes",
                other.label(),
                other.reported,
                other.goal
            ));
        }
    }
    Ok(())
}

/// Invariant 3: no other standby reported more WAL than the node put on the promotion path.
/// Nodes being removed (goal `dropped` so far in the decision) do not count: removing a node
/// gives up its data.
fn check_most_advanced(before: &Group, now: &Group, id: NodeId) -> Result<(), String> {
    let Some(candidate) = before.get(id) else {
        return Err(format!("unknown candidate {id}"));
    };
    let mine = (candidate.reported_tli, candidate.reported_lsn);
    let members: Vec<NodeId> = now.member_ids();
    for other in before
        .members()
        .filter(|n| n.id != id && members.contains(&n.id))
    {
        if other.replication_quorum
            && !other.reported.belongs_to_primary()
            && (other.reported_tli, other.reported_lsn) > mine
        {
            return Err(format!(
                "node {id} at {}/{} put on the promotion path while {} has {}/{}",
                mine.0,
                mine.1,
                other.label(),
                other.reported_tli,
                other.reported_lsn
            ));
        }
    }
    Ok(())
}

fn check_edges(edges: &[(S, S)]) -> Result<(), String> {
    for edge in edges {
        if !is_monitor_edge(edge.0, edge.1) {
            return Err(format!(
                "edge {} -> {} is not listed in MONITOR_EDGES",
                edge.0, edge.1
            ));
        }
    }
    Ok(())
}

// ---- random snapshots -------------------------------------------------------------------------

fn arb_state() -> impl Strategy<Value = S> {
    prop::sample::select(S::ALL[1..].to_vec())
}

fn arb_node(id: NodeId) -> impl Strategy<Value = Node> {
    (
        (arb_state(), arb_state(), prop::bool::weighted(0.85)),
        (
            prop::sample::select(vec![Health::Good, Health::Bad, Health::Unknown]),
            prop::sample::select(vec![0i64, 3_000, 25_000, 60_000]),
            prop::sample::select(vec![0i64, 10_000, 40_000]),
        ),
        (
            prop::sample::select(vec![0u64, 0x100_0000, 0x100_1000, 0x300_0000]),
            1..=2i32,
        ),
        (
            prop::sample::select(vec![0i32, 50, 100, 50 - 101, 50 + 101]),
            prop::bool::weighted(0.8),
        ),
        // a lease that ran out long ago, just now, or still runs; or none (a 2.0 keeper)
        prop::sample::select(vec![
            None,
            Some(-3_000i64),
            Some(-300),
            Some(0),
            Some(2_000),
        ]),
    )
        .prop_map(
            move |(
                (reported, goal, running),
                (health, report_age, change_age),
                (lsn, tli),
                (prio, quorum),
                lease,
            )| {
                let mut n = node(id, reported);
                n.goal = goal;
                n.pg_is_running = running;
                n.health = health;
                n.report_time = NOW.plus_ms(-report_age);
                n.state_change_time = NOW.plus_ms(-change_age);
                n.reported_lsn = Lsn(lsn);
                n.reported_tli = tli;
                n.candidate_priority = prio;
                n.replication_quorum = quorum;
                n.lease = lease.map(|ms| crate::lease::MonitorLease {
                    expires: NOW.plus_ms(ms),
                });
                n
            },
        )
}

fn arb_group() -> impl Strategy<Value = Group> {
    (1..=4usize, 0..=2i32)
        .prop_flat_map(|(n, nss)| {
            let nodes: Vec<_> = (1..=n).map(|i| arb_node(i as NodeId)).collect();
            (nodes, Just(nss))
        })
        .prop_map(|(nodes, nss)| {
            let mut g = group(nodes);
            g.formation.number_sync_standbys = nss;
            g
        })
}

/// A fixed seed, so that CI runs are reproducible; set `PROPTEST_RNG_SEED` to explore others.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x00C0_FFEE);
    }
    config
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn rules_keep_the_invariants_on_any_snapshot(g in arb_group(), pick in 0..4usize) {
        let ids = g.member_ids();
        prop_assume!(!ids.is_empty());
        // Snapshots that already break invariant 1 are not states the monitor can be in.
        prop_assume!(g.members().filter(|n| n.goal.can_take_writes()).count() <= 1);
        let active = ids[pick % ids.len()];
        let mut after = g.clone();
        if proceed(&mut after, active).is_ok() {
            let effects = after.into_effects();
            if let Err(e) = check_decision(&g, &effects, None) {
                return Err(TestCaseError::fail(e));
            }
            if let Err(e) = check_no_async_promotion(&g, &effects) {
                return Err(TestCaseError::fail(e));
            }
        }
    }
}

/// Invariant 4: the rules never start promoting a standby outside the replication quorum
/// (it may lack acknowledged commits) unless the acknowledged commits are located — a quorum
/// member's position is known (it reported `report_lsn`, or is fetching or promoting since), or
/// every member's is — or `perform_promotion` named it (its priority is then raised above the
/// user range).
fn check_no_async_promotion(before: &Group, effects: &[Effect]) -> Result<(), String> {
    let position_known = |n: &crate::model::Node| {
        matches!(
            n.reported,
            S::ReportLsn | S::FastForward | S::PreparePromotion
        ) && !matches!(n.goal, S::Draining | S::DemoteTimeout | S::Demoted)
    };
    let quorum_known = before
        .members()
        .any(|n| n.replication_quorum && position_known(n));
    let all_known = before.members().all(position_known);
    for effect in effects {
        if let Effect::AssignGoal { node_id, goal, .. } = effect {
            let Some(node) = before.get(*node_id) else {
                continue;
            };
            let starts_promotion = matches!(goal, S::PreparePromotion | S::FastForward)
                && !matches!(node.goal, S::PreparePromotion | S::FastForward);
            if starts_promotion
                && !node.replication_quorum
                && !quorum_known
                && !all_known
                && node.candidate_priority <= crate::group::MAX_USER_CANDIDATE_PRIORITY
            {
                return Err(format!(
                    "{} is not in the replication quorum and was assigned {goal} while no \
                     quorum member's position was known; members {:?}",
                    node.label(),
                    before
                        .members()
                        .map(|n| (n.id, n.reported, n.goal, n.replication_quorum))
                        .collect::<Vec<_>>(),
                ));
            }
        }
    }
    Ok(())
}

// ---- random schedules -------------------------------------------------------------------------

/// Something happening to the simulated group.
#[derive(Debug, Clone)]
enum Event {
    /// A keeper heartbeats; `reach` says whether it completed its transition first.
    Heartbeat { node: usize, reach: bool },
    /// A host dies.
    Kill(usize),
    /// A host comes back.
    Revive(usize),
    /// Postgres stops or starts on a live host.
    PgDown(usize, bool),
    /// Time passes.
    Advance(i64),
    /// The primary writes `bytes` of WAL; standbys receive part of it.
    Write { bytes: u64, lag: u64 },
    /// An API call.
    Api(ApiCall),
}

#[derive(Debug, Clone)]
enum ApiCall {
    Failover,
    Promote(usize),
    StartMaintenance(usize),
    StopMaintenance(usize),
    Remove(usize, bool),
    Priority(usize, i32),
    Quorum(usize, bool),
    SyncStandbys(i32),
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        10 => (0..4usize, prop::bool::weighted(0.8)).prop_map(|(node, reach)| Event::Heartbeat { node, reach }),
        1 => (0..4usize).prop_map(Event::Kill),
        1 => (0..4usize).prop_map(Event::Revive),
        1 => (0..4usize, any::<bool>()).prop_map(|(n, b)| Event::PgDown(n, b)),
        3 => prop::sample::select(vec![1_000i64, 5_000, 25_000, 35_000]).prop_map(Event::Advance),
        2 => (prop::sample::select(vec![512u64, 8192, 1 << 20, 20 << 20]), 0..3u64)
            .prop_map(|(bytes, lag)| Event::Write { bytes, lag }),
        1 => prop_oneof![
            Just(ApiCall::Failover),
            (0..4usize).prop_map(ApiCall::Promote),
            (0..4usize).prop_map(ApiCall::StartMaintenance),
            (0..4usize).prop_map(ApiCall::StopMaintenance),
            (0..4usize, prop::bool::weighted(0.2)).prop_map(|(n, f)| ApiCall::Remove(n, f)),
            (0..4usize, prop::sample::select(vec![0, 10, 50, 100])).prop_map(|(n, p)| ApiCall::Priority(n, p)),
            (0..4usize, any::<bool>()).prop_map(|(n, q)| ApiCall::Quorum(n, q)),
            (0..3i32).prop_map(ApiCall::SyncStandbys),
        ].prop_map(Event::Api),
    ]
}

/// A simulated group plus what the schedule checks need.
struct World {
    sim: Sim,
    pg_down: BTreeSet<NodeId>,
    edges: BTreeSet<(S, S)>,
    /// The effects of the last decision applied.
    last_effects: Vec<Effect>,
}

impl World {
    fn new(size: usize) -> Self {
        let mut nodes = vec![node(1, S::Single)];
        for id in 2..=size as NodeId {
            let mut standby = node(id, S::WaitStandby);
            standby.reported = S::Init;
            nodes.push(standby);
        }
        let mut world = World {
            sim: Sim::new(nodes),
            pg_down: BTreeSet::new(),
            edges: BTreeSet::new(),
            last_effects: Vec::new(),
        };
        // Bootstrap through checked decisions too.
        for _ in 0..20 {
            world.sim.probe();
            for node in 0..size {
                let event = Event::Heartbeat { node, reach: true };
                if let Err(e) = world.apply(&event) {
                    panic!("bootstrap of {size} nodes: {e}");
                }
            }
            world.sim.advance(1_000);
        }
        world
    }

    fn id(&self, index: usize) -> Option<NodeId> {
        let ids: Vec<NodeId> = self.sim.group.all_nodes().iter().map(|n| n.id).collect();
        if ids.is_empty() {
            None
        } else {
            Some(ids[index % ids.len()])
        }
    }

    /// Runs a decision and checks it.
    fn decide(
        &mut self,
        decision: impl FnOnce(&mut Group) -> Result<(), crate::FsmError>,
    ) -> Result<(), String> {
        self.decide_allowing(None, decision)
    }

    /// Like [`World::decide`], for the API calls that may change a node in maintenance
    /// (`stop_maintenance`, `remove_node`) or delete it at once (`remove_node(force)`).
    fn decide_allowing(
        &mut self,
        leaving_maintenance: Option<NodeId>,
        decision: impl FnOnce(&mut Group) -> Result<(), crate::FsmError>,
    ) -> Result<(), String> {
        let before = self.sim.group.clone();
        let mut attempt = self.sim.group.clone();
        self.last_effects.clear();
        if decision(&mut attempt).is_ok() {
            let effects = attempt.take_effects();
            let edges = check_decision(&before, &effects, leaving_maintenance)?;
            check_edges(&edges)?;
            self.edges.extend(edges);
            self.sim.group = attempt;
            self.last_effects = effects;
        }
        Ok(())
    }

    fn apply(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::Heartbeat { node, reach } => {
                let Some(id) = self.id(*node) else {
                    return Ok(());
                };
                if self.sim.dead.contains(&id) {
                    return Ok(());
                }
                let Some(n) = self.sim.group.get(id).cloned() else {
                    return Ok(());
                };
                let state = if *reach { n.goal } else { n.reported };
                let report = Report {
                    state,
                    pg_is_running: pg_runs_in(state) && !self.pg_down.contains(&id),
                    tli: n.reported_tli,
                    lsn: n.reported_lsn,
                    sync_state: n.sync_state,
                };
                self.sim.group.report(id, &report);
                let before = self.sim.group.clone();
                self.decide(|g| proceed(g, id).map(|_| ()))?;
                // what a heartbeat decided is the rules' own doing: invariant 4 applies
                check_no_async_promotion(&before, &self.last_effects)
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
            Event::Write { bytes, lag } => {
                self.write(*bytes, *lag);
                Ok(())
            }
            Event::Api(call) => self.call(call),
        }
    }

    /// The writable node advances its LSN; streaming standbys follow, `lag` of them partly.
    fn write(&mut self, bytes: u64, lag: u64) {
        let Some(primary) = self
            .sim
            .group
            .members()
            .find(|n| n.reported.can_take_writes() && !self.sim.dead.contains(&n.id))
            .map(|n| n.id)
        else {
            return;
        };
        let Some(lsn) = self
            .sim
            .group
            .get(primary)
            .map(|n| n.reported_lsn.0 + bytes)
        else {
            return;
        };
        if let Some(p) = self.sim.group.get_mut(primary) {
            p.reported_lsn = Lsn(lsn);
        }
        let standbys: Vec<NodeId> = self
            .sim
            .group
            .members()
            .filter(|n| {
                matches!(n.reported, S::Secondary | S::Catchingup) && !self.sim.dead.contains(&n.id)
            })
            .map(|n| n.id)
            .collect();
        for (i, id) in standbys.into_iter().enumerate() {
            let received = if (i as u64) < lag {
                lsn - bytes / 2
            } else {
                lsn
            };
            if let Some(s) = self.sim.group.get_mut(id) {
                s.reported_lsn = Lsn(received.max(s.reported_lsn.0));
            }
        }
    }

    fn call(&mut self, call: &ApiCall) -> Result<(), String> {
        let id = |w: &World, i: &usize| w.id(*i);
        match call {
            ApiCall::Failover => self.decide(api::perform_failover),
            ApiCall::Promote(i) => match id(self, i) {
                Some(n) => self.decide(|g| api::perform_promotion(g, n).map(|_| ())),
                None => Ok(()),
            },
            ApiCall::StartMaintenance(i) => match id(self, i) {
                Some(n) => self.decide(|g| api::start_maintenance(g, n).map(|_| ())),
                None => Ok(()),
            },
            ApiCall::StopMaintenance(i) => match id(self, i) {
                Some(n) => {
                    self.decide_allowing(Some(n), |g| api::stop_maintenance(g, n).map(|_| ()))
                }
                None => Ok(()),
            },
            ApiCall::Remove(i, force) => match id(self, i) {
                Some(n) => {
                    self.decide_allowing(Some(n), |g| api::remove_node(g, n, *force).map(|_| ()))
                }
                None => Ok(()),
            },
            ApiCall::Priority(i, p) => match id(self, i) {
                Some(n) => self.decide(|g| api::set_candidate_priority(g, n, *p).map(|_| ())),
                None => Ok(()),
            },
            ApiCall::Quorum(i, q) => match id(self, i) {
                Some(n) => self.decide(|g| api::set_replication_quorum(g, n, *q).map(|_| ())),
                None => Ok(()),
            },
            ApiCall::SyncStandbys(v) => {
                self.decide(|g| api::set_number_sync_standbys(g, *v).map(|_| ()))
            }
        }
    }
}

fn run_schedule(size: usize, events: &[Event]) -> Result<BTreeSet<(S, S)>, String> {
    let mut world = World::new(size);
    for (step, event) in events.iter().enumerate() {
        world
            .apply(event)
            .map_err(|e| format!("step {step} ({event:?}): {e}"))?;
    }
    Ok(world.edges)
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn random_schedules_keep_the_invariants(
        size in 2..=4usize,
        events in prop::collection::vec(arb_event(), 1..150),
    ) {
        if let Err(e) = run_schedule(size, &events) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// A fixed pseudo-random walk, long enough to visit most reachable pairs; the edges it sees
/// must all be listed, and it must see the common ones.
#[test]
fn long_walks_produce_listed_edges_only() {
    let mut seen = BTreeSet::new();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    for walk in 0..300u64 {
        let size = 2 + (walk % 3) as usize;
        let events: Vec<Event> = (0..400)
            .map(|_| match next(20) {
                0 => Event::Kill(next(4) as usize),
                1 => Event::Revive(next(4) as usize),
                2 => Event::PgDown(next(4) as usize, next(2) == 0),
                3..=5 => Event::Advance([1_000, 5_000, 25_000, 35_000][next(4) as usize]),
                6 => Event::Write {
                    bytes: [512, 1 << 20, 20 << 20][next(3) as usize],
                    lag: next(3),
                },
                7 => Event::Api(match next(8) {
                    0 => ApiCall::Failover,
                    1 => ApiCall::Promote(next(4) as usize),
                    2 => ApiCall::StartMaintenance(next(4) as usize),
                    3 => ApiCall::StopMaintenance(next(4) as usize),
                    4 => ApiCall::Remove(next(4) as usize, next(5) == 0),
                    5 => ApiCall::Priority(next(4) as usize, [0, 10, 50, 100][next(4) as usize]),
                    6 => ApiCall::Quorum(next(4) as usize, next(2) == 0),
                    _ => ApiCall::SyncStandbys(next(3) as i32),
                }),
                _ => Event::Heartbeat {
                    node: next(4) as usize,
                    reach: next(5) != 0,
                },
            })
            .collect();
        match run_schedule(size, &events) {
            Ok(edges) => seen.extend(edges),
            Err(e) => panic!("walk {walk}: {e}"),
        }
    }
    for common in [
        (S::Single, S::WaitPrimary),
        (S::WaitStandby, S::Catchingup),
        (S::Catchingup, S::Secondary),
        (S::WaitPrimary, S::Primary),
        (S::Secondary, S::PreparePromotion),
        (S::Primary, S::Draining),
        (S::PreparePromotion, S::StopReplication),
        (S::StopReplication, S::WaitPrimary),
        (S::Secondary, S::ReportLsn),
        (S::ReportLsn, S::PreparePromotion),
        (S::ReportLsn, S::JoinSecondary),
        (S::Demoted, S::Catchingup),
    ] {
        assert!(
            seen.contains(&common),
            "walks never produced {} -> {}",
            common.0,
            common.1
        );
    }
    if std::env::var_os("PRINT_EDGES").is_some() {
        for (from, to) in &seen {
            println!("EDGE {from} {to}");
        }
    }
}
