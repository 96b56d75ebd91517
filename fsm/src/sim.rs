//! A simulated group for tests: keepers that reach whatever goal they are assigned, a health
//! probe that sees which nodes are up, and a clock that moves one second per round.

use std::collections::BTreeSet;

use crate::ReplicationState as S;
use crate::group::{Effect, Group};
use crate::model::{Health, Node, NodeId};
use crate::report::Report;
use crate::rules::proceed;
use crate::testing;

/// Whether a keeper that reached `state` has Postgres running.
pub fn pg_runs_in(state: S) -> bool {
    !matches!(
        state,
        S::Draining
            | S::DemoteTimeout
            | S::Demoted
            | S::JoinSecondary
            | S::Dropped
            | S::PrepareMaintenance
    )
}

/// A group driven by simulated keepers.
pub struct Sim {
    /// The monitor's view.
    pub group: Group,
    /// Nodes whose host is down: no reports, failed probes.
    pub dead: BTreeSet<NodeId>,
    /// Every effect decided so far.
    pub log: Vec<Effect>,
    /// How many heartbeats reported a new state.
    pub reports_changed: usize,
}

impl Sim {
    /// A simulation of `nodes` in the default formation.
    pub fn new(nodes: Vec<Node>) -> Self {
        Sim {
            group: testing::group(nodes),
            dead: BTreeSet::new(),
            log: Vec::new(),
            reports_changed: 0,
        }
    }

    /// Moves the clock.
    pub fn advance(&mut self, ms: i64) {
        self.group.health.clock.now = self.group.health.clock.now.plus_ms(ms);
    }

    /// The monitor probes every node.
    pub fn probe(&mut self) {
        let now = self.group.health.clock.now;
        let ids: Vec<NodeId> = self.group.all_nodes().iter().map(|n| n.id).collect();
        for id in ids {
            let up = !self.dead.contains(&id);
            if let Some(node) = self.group.get_mut(id) {
                node.health = if up && pg_runs_in(node.reported) {
                    Health::Good
                } else {
                    Health::Bad
                };
                node.health_check_time = now;
            }
        }
    }

    /// Node `id`'s keeper reaches its goal and reports; the rules run. Dead nodes do nothing.
    pub fn heartbeat(&mut self, id: NodeId) -> Vec<Effect> {
        if self.dead.contains(&id) {
            return Vec::new();
        }
        let Some(node) = self.group.get(id) else {
            return Vec::new();
        };
        let report = Report {
            state: node.goal,
            pg_is_running: pg_runs_in(node.goal),
            tli: node.reported_tli,
            lsn: node.reported_lsn,
            sync_state: node.sync_state,
        };
        if self.group.report(id, &report) {
            self.reports_changed += 1;
        }
        // A decision error is a test failure: surface it through the effects log.
        if let Err(err) = proceed(&mut self.group, id) {
            self.group.log(format!("ERROR: {err}"));
        }
        let effects = self.group.take_effects();
        self.log.extend(effects.iter().cloned());
        effects
    }

    /// One round: probe, every live node reports once (in id order), one second passes.
    /// Returns how many decisions and reported-state changes the round saw.
    pub fn round(&mut self) -> usize {
        self.probe();
        let ids: Vec<NodeId> = self.group.all_nodes().iter().map(|n| n.id).collect();
        let mut changes = 0;
        let reports_before = self.reports_changed;
        for id in ids {
            changes += self
                .heartbeat(id)
                .iter()
                .filter(|e| !matches!(e, Effect::Log(_)))
                .count();
        }
        self.advance(1_000);
        changes + (self.reports_changed - reports_before)
    }

    /// Runs rounds until a round changes nothing and every live node reached its goal, at most
    /// `max_rounds`. Returns the rounds run.
    pub fn settle(&mut self, max_rounds: usize) -> usize {
        for round in 1..=max_rounds {
            let changes = self.round();
            let converged = self
                .group
                .all_nodes()
                .iter()
                .all(|n| self.dead.contains(&n.id) || n.goal == n.reported);
            if changes == 0 && converged {
                return round;
            }
        }
        max_rounds
    }

    /// Runs rounds until `done` holds, at most `max_rounds`. Returns whether it held.
    pub fn run_until(&mut self, max_rounds: usize, done: impl Fn(&Sim) -> bool) -> bool {
        for _ in 0..max_rounds {
            if done(self) {
                return true;
            }
            self.round();
        }
        done(self)
    }

    /// The (reported, goal) pair of every node, in id order.
    pub fn states(&self) -> Vec<(S, S)> {
        self.group
            .all_nodes()
            .iter()
            .map(|n| (n.reported, n.goal))
            .collect()
    }

    /// The goal of node `id`.
    pub fn goal(&self, id: NodeId) -> S {
        testing::goal(&self.group, id)
    }

    /// Whether any recorded effect is a decision error.
    pub fn errors(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::Log(m) if m.starts_with("ERROR") => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}
