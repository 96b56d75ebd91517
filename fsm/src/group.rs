//! A group of nodes under decision: the snapshot the rules read, and the effects they produce.
//!
//! Rules never touch storage. They read and update this in-memory copy (so later rules in the
//! same decision see earlier assignments) and append [`Effect`]s, which the caller applies to the
//! database in order.

use crate::health::HealthModel;
use crate::model::{Clock, Formation, Node, NodeId, Settings};
use crate::{FsmError, ReplicationState as S};

/// How a candidate priority is moved to win (+) or lose (−) an election on purpose.
pub const CANDIDATE_PRIORITY_INCREMENT: i32 = 101;

/// The largest candidate priority a user may set.
pub const MAX_USER_CANDIDATE_PRIORITY: i32 = 100;

/// One change decided by the rules, to be applied by the caller in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Set the node's goal state (and its `statechangetime`), record an event, notify.
    AssignGoal {
        /// The node.
        node_id: NodeId,
        /// Its new goal.
        goal: S,
        /// Why, for the event and the log.
        description: String,
        /// The node right after the change: the event row.
        event: Box<Node>,
    },
    /// Change a node's candidate priority, record an event, notify.
    SetCandidatePriority {
        /// The node.
        node_id: NodeId,
        /// The new priority.
        priority: i32,
        /// Why.
        description: String,
        /// The node right after the change: the event row.
        event: Box<Node>,
    },
    /// Change a node's replication quorum, record an event, notify.
    SetReplicationQuorum {
        /// The node.
        node_id: NodeId,
        /// The new value.
        replication_quorum: bool,
        /// Why.
        description: String,
        /// The node right after the change: the event row.
        event: Box<Node>,
    },
    /// Change the formation's `number_sync_standbys`.
    SetNumberSyncStandbys {
        /// The new value.
        value: i32,
        /// Why.
        description: String,
    },
    /// Delete the node's row.
    DeleteNode {
        /// The node.
        node_id: NodeId,
        /// Why.
        description: String,
        /// The node as it was: the event row.
        event: Box<Node>,
    },
    /// A message for the log and the `log` channel only.
    Log(String),
    /// A NOTICE for the caller.
    Notice(String),
    /// A WARNING for the caller.
    Warning(String),
}

/// The nodes of one group of one formation, with the settings and the instant of the decision.
#[derive(Debug, Clone)]
pub struct Group {
    /// The formation the group belongs to.
    pub formation: Formation,
    /// The group's id within the formation.
    pub group_id: i32,
    /// Every node of the group, including those being dropped, ordered by node id.
    nodes: Vec<Node>,
    /// Health predicates at the decision instant.
    pub health: HealthModel,
    effects: Vec<Effect>,
}

impl Group {
    /// A group to decide on. `nodes` are all rows of the group (any order).
    pub fn new(
        formation: Formation,
        group_id: i32,
        mut nodes: Vec<Node>,
        settings: Settings,
        clock: Clock,
    ) -> Self {
        nodes.sort_by_key(|n| n.id);
        Group {
            formation,
            group_id,
            nodes,
            health: HealthModel { settings, clock },
            effects: Vec::new(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.health.settings
    }

    /// Every node, including those being dropped.
    pub fn all_nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this id, if it is in the group.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node with this id, or an error naming it.
    pub fn node(&self, id: NodeId) -> Result<&Node, FsmError> {
        self.get(id).ok_or(FsmError::NodeNotFound { node_id: id })
    }

    /// The node with this id, for updating what was observed about it (a report, a probe).
    /// Goal changes go through [`Group::assign`] so they are recorded as effects.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// Applies a keeper's heartbeat to its node. Returns whether its reported state changed.
    pub fn report(&mut self, id: NodeId, report: &crate::report::Report) -> bool {
        let now = self.health.clock.now;
        self.get_mut(id).is_some_and(|node| report.apply(node, now))
    }

    /// Adds a node to the group (a registration).
    pub fn insert(&mut self, node: Node) {
        self.nodes.push(node);
        self.nodes.sort_by_key(|n| n.id);
    }

    /// Ids of the nodes taking part in the group: every node not being dropped
    /// (`AutoFailoverNodeGroup` in 2.0), in id order.
    pub fn member_ids(&self) -> Vec<NodeId> {
        self.members().map(|n| n.id).collect()
    }

    /// The nodes taking part in the group (goal not `dropped`), in id order.
    pub fn members(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.goal != S::Dropped)
    }

    /// Number of nodes taking part in the group.
    pub fn member_count(&self) -> usize {
        self.members().count()
    }

    /// The other members, in id order.
    pub fn other_ids(&self, id: NodeId) -> Vec<NodeId> {
        self.members()
            .filter(|n| n.id != id)
            .map(|n| n.id)
            .collect()
    }

    /// The effects decided so far, in order.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// Takes the decided effects.
    pub fn into_effects(self) -> Vec<Effect> {
        self.effects
    }

    /// Takes the effects decided so far, leaving none.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Assigns a goal to a node, unless it already has it. Returns whether anything changed.
    pub fn assign(&mut self, id: NodeId, goal: S, description: String) -> bool {
        let now = self.health.clock.now;
        let Some(node) = self.get_mut(id) else {
            return false;
        };
        if node.goal == goal {
            return false;
        }
        node.goal = goal;
        node.state_change_time = now;
        let event = Box::new(node.clone());
        self.effects.push(Effect::AssignGoal {
            node_id: id,
            goal,
            description,
            event,
        });
        true
    }

    /// Changes a node's candidate priority.
    pub fn set_candidate_priority(&mut self, id: NodeId, priority: i32, description: String) {
        if let Some(node) = self.get_mut(id) {
            node.candidate_priority = priority;
            let event = Box::new(node.clone());
            self.effects.push(Effect::SetCandidatePriority {
                node_id: id,
                priority,
                description,
                event,
            });
        }
    }

    /// Changes a node's replication quorum.
    pub fn set_replication_quorum(&mut self, id: NodeId, quorum: bool, description: String) {
        if let Some(node) = self.get_mut(id) {
            node.replication_quorum = quorum;
            let event = Box::new(node.clone());
            self.effects.push(Effect::SetReplicationQuorum {
                node_id: id,
                replication_quorum: quorum,
                description,
                event,
            });
        }
    }

    /// Changes the formation's `number_sync_standbys`.
    pub fn set_number_sync_standbys(&mut self, value: i32, description: String) {
        self.formation.number_sync_standbys = value;
        self.effects
            .push(Effect::SetNumberSyncStandbys { value, description });
    }

    /// Removes a node from the group and its row from storage.
    pub fn delete(&mut self, id: NodeId, description: String) {
        let Some(at) = self.nodes.iter().position(|n| n.id == id) else {
            return;
        };
        let event = Box::new(self.nodes.remove(at));
        self.effects.push(Effect::DeleteNode {
            node_id: id,
            description,
            event,
        });
    }

    /// Records a message for the log only.
    pub fn log(&mut self, message: String) {
        self.effects.push(Effect::Log(message));
    }

    /// Records a NOTICE for the caller.
    pub fn notice(&mut self, message: String) {
        self.effects.push(Effect::Notice(message));
    }

    /// Records a WARNING for the caller.
    pub fn warning(&mut self, message: String) {
        self.effects.push(Effect::Warning(message));
    }

    /// A node's label for messages, or `"no node"`.
    pub fn label(&self, id: Option<NodeId>) -> String {
        id.and_then(|id| self.get(id))
            .map_or_else(|| "no node".to_string(), Node::label)
    }

    // ---- queries shared by the rules -------------------------------------------------------

    /// Whether `id` is converged to `state`.
    pub fn converged(&self, id: Option<NodeId>, state: S) -> bool {
        id.and_then(|id| self.get(id))
            .is_some_and(|n| n.is_converged(state))
    }

    /// The node reached a writable state, or moves between `primary` and `apply_settings`
    /// (`IsInPrimaryState` in 2.0).
    pub fn in_primary_state(&self, id: Option<NodeId>) -> bool {
        id.and_then(|id| self.get(id)).is_some_and(|n| {
            (n.goal == n.reported && n.goal.can_take_writes())
                || (matches!(n.goal, S::ApplySettings | S::Primary)
                    && matches!(n.reported, S::Primary | S::ApplySettings))
        })
    }

    /// The first member whose goal is writable (`GetPrimaryNodeInGroup` in 2.0).
    pub fn writable_member(&self) -> Option<NodeId> {
        self.members()
            .find(|n| n.goal.can_take_writes())
            .map(|n| n.id)
    }

    /// The primary, or else the old primary being demoted (`GetPrimaryOrDemotedNodeInGroup`):
    /// first a member with a writable goal; otherwise the last member whose reported state
    /// belongs to a primary, preferring one still being demoted over one already demoted.
    pub fn primary_or_demoted(&self) -> Option<NodeId> {
        if let Some(id) = self.writable_member() {
            return Some(id);
        }
        let mut found: Option<&Node> = None;
        for node in self.members() {
            if node.reported.belongs_to_primary()
                && (!found.is_some_and(is_being_demoted_primary) || !is_demoted_primary(node))
            {
                found = Some(node);
            }
        }
        found.map(|n| n.id)
    }

    /// A removed node (goal `dropped`) that was, or was becoming, a primary and may still take
    /// writes: it has not confirmed the removal and is not known to be gone. No other node may
    /// be promoted while it exists, or the group would have two primaries. A node removed while
    /// on the promotion path counts: its keeper may have opened it for writes already.
    pub fn removed_writer(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|n| {
                n.goal == S::Dropped
                    && (n.reported.belongs_to_primary()
                        || matches!(n.reported, S::PreparePromotion | S::StopReplication))
                    && !self.health.is_unhealthy(Some(n))
            })
            .map(|n| n.id)
    }

    /// The converged primary a manual failover can start from (`GetNodeToFailoverFromInGroup`).
    pub fn failover_source(&self) -> Option<NodeId> {
        self.members()
            .find(|n| n.goal.can_initiate_failover() && n.reported == n.goal)
            .map(|n| n.id)
    }

    /// Healthy converged secondaries with a non-zero priority among `ids`.
    pub fn healthy_candidate_count(&self, ids: &[NodeId]) -> usize {
        ids.iter()
            .filter_map(|id| self.get(*id))
            .filter(|n| {
                n.candidate_priority > 0
                    && n.is_converged(S::Secondary)
                    && self.health.is_healthy(Some(n))
            })
            .count()
    }

    /// Whether the node is a healthy converged secondary in the replication quorum.
    pub fn is_healthy_sync_standby(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|n| {
            n.replication_quorum && n.is_converged(S::Secondary) && self.health.is_healthy(Some(n))
        })
    }

    /// Whether standby `a`'s last reported LSN is at most `delta` bytes behind `b`'s; false
    /// when either has not reported an LSN, true when either node is missing.
    ///
    /// One-sided, unlike 2.0's `WalDifferenceWithin` (an absolute difference): a primary
    /// reports at most once a second, so a standby is often *ahead* of the primary's last
    /// report, and most of all after a burst of writes just before the primary died — which
    /// 2.0 takes for "too far behind" and refuses to fail over.
    pub fn wal_within(&self, a: Option<NodeId>, b: Option<NodeId>, delta: u64) -> bool {
        let (Some(a), Some(b)) = (a.and_then(|id| self.get(id)), b.and_then(|id| self.get(id)))
        else {
            return true;
        };
        if a.reported_lsn.0 == 0 || b.reported_lsn.0 == 0 {
            return false;
        }
        b.reported_lsn.0.saturating_sub(a.reported_lsn.0) <= delta
    }

    /// Whether any member takes part in a promotion or election (`IsFailoverInProgress`).
    pub fn failover_in_progress(&self) -> bool {
        self.members().any(is_participating_in_promotion)
    }

    /// The first member on its way to becoming the new primary (`FindCandidateNodeBeingPromoted`).
    pub fn candidate_being_promoted(&self) -> Option<NodeId> {
        self.members().find(|n| is_being_promoted(n)).map(|n| n.id)
    }

    /// Ids of the members (other than `id`) whose goal is `state`.
    pub fn others_with_goal(&self, id: NodeId, state: S) -> Vec<NodeId> {
        self.members()
            .filter(|n| n.id != id && n.goal == state)
            .map(|n| n.id)
            .collect()
    }
}

/// A primary whose demotion is under way.
pub fn is_being_demoted_primary(node: &Node) -> bool {
    node.reported.belongs_to_primary()
        && matches!(
            node.goal,
            S::Draining | S::DemoteTimeout | S::PrepareMaintenance
        )
}

/// A primary assigned `demoted`, whether or not it got there.
pub fn is_demoted_primary(node: &Node) -> bool {
    node.goal == S::Demoted && (node.reported.belongs_to_primary() || node.reported == S::Demoted)
}

/// A standby somewhere on the path report_lsn/fast_forward → prepare_promotion →
/// stop_replication → wait_primary.
pub fn is_being_promoted(node: &Node) -> bool {
    matches!(
        (node.reported, node.goal),
        (S::ReportLsn, S::FastForward | S::PreparePromotion)
            | (S::FastForward, S::FastForward | S::PreparePromotion)
            | (
                S::PreparePromotion,
                S::PreparePromotion | S::StopReplication | S::WaitPrimary
            )
            | (S::StopReplication, S::StopReplication | S::WaitPrimary)
    )
}

/// A newly chosen primary far enough along for the other standbys to follow it.
pub fn is_ready_to_stream_wal(node: &Node) -> bool {
    matches!(
        (node.reported, node.goal),
        (S::PreparePromotion, S::StopReplication | S::WaitPrimary)
            | (S::StopReplication, S::StopReplication | S::WaitPrimary)
            | (S::WaitPrimary, S::WaitPrimary | S::Primary)
            | (S::Primary, S::Primary)
    )
}

/// A node being promoted, reporting its LSN, or joining a new primary.
pub fn is_participating_in_promotion(node: &Node) -> bool {
    is_being_promoted(node)
        || matches!(node.reported, S::ReportLsn | S::JoinSecondary)
        || matches!(node.goal, S::ReportLsn | S::JoinSecondary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{group, node};

    #[test]
    fn each_effect_carries_its_node_right_after_the_change() {
        let mut g = group(vec![node(1, S::Primary), node(2, S::Secondary)]);
        let priority_before = g.get(2).map(|n| n.candidate_priority);
        assert!(g.assign(2, S::ReportLsn, "to report_lsn".to_string()));
        g.set_candidate_priority(2, 0, "priority 0".to_string());
        g.delete(1, "gone".to_string());
        let effects = g.take_effects();
        let [
            Effect::AssignGoal { event: first, .. },
            Effect::SetCandidatePriority { event: second, .. },
            Effect::DeleteNode { event: gone, .. },
        ] = effects.as_slice()
        else {
            panic!("{effects:?}");
        };
        // the event of the goal change shows the new goal and the priority of that moment
        assert_eq!(first.goal, S::ReportLsn);
        assert_eq!(Some(first.candidate_priority), priority_before);
        assert_eq!(second.goal, S::ReportLsn);
        assert_eq!(second.candidate_priority, 0);
        // a deleted node's event is the node as it was
        assert_eq!((gone.id, gone.goal), (1, S::Primary));
        assert!(g.get(1).is_none());
        // an unknown node changes nothing
        g.delete(7, "unknown".to_string());
        assert!(g.take_effects().is_empty());
    }
}
