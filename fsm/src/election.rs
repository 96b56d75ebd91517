//! Electing a new primary among several standbys (`ProceedGroupStateForMSFailover` in 2.0).
//!
//! Every standby that could hold acknowledged commits first stops replicating and reports its
//! last received LSN (`report_lsn`). Only when all of them reported does the monitor pick the
//! candidate: highest candidate priority, then most advanced position. A candidate behind the
//! most advanced standby first fetches the missing WAL from it (`fast_forward`); the other
//! standbys then follow the new primary (`join_secondary`).
//!
//! Positions are compared as (timeline, LSN), where the timeline is the one of the WAL the node
//! holds at that LSN (keepers read it from their WAL files, `crate::timeline`). On one history
//! this order is the order of "holds more WAL": a node at (t, l) holds the bytes of timeline t's
//! history before l, and timeline t starts where its parent ended, so any node on an older
//! timeline with a larger LSN has written past that fork: it diverged and holds WAL no newer
//! node has, which is never acknowledged WAL of the current history. So the most advanced
//! position holds every byte any other candidate holds on that history.
//!
//! An election that cannot finish starts again: a candidate whose keeper stopped reporting, or
//! that did not reach the most advanced position within `node_considered_unhealthy_timeout` of
//! being told to fetch it, goes back to `report_lsn`, and the next report picks again (maybe
//! the same node, once it can fetch). A candidate that was told to promote
//! (`stop_replication` and after) is never abandoned: it may already take writes.

use crate::group::{
    CANDIDATE_PRIORITY_INCREMENT, Group, MAX_USER_CANDIDATE_PRIORITY, is_being_demoted_primary,
    is_demoted_primary, is_ready_to_stream_wal,
};
use crate::model::{Lsn, Node, NodeId};
use crate::{FsmError, ReplicationState as S};

/// The standbys taking part in an election, as counted by [`build_candidates`].
#[derive(Debug, Default)]
struct Candidates {
    /// Healthy nodes that reported their LSN, in id order.
    reported: Vec<NodeId>,
    /// How many of those count toward the replication quorum.
    quorum_count: usize,
    /// Nodes that must still report before a choice is safe.
    missing: usize,
    /// Whether a member of the replication quorum made its position known in this election:
    /// the primary acknowledged a commit only once quorum members had it, so the most advanced
    /// known position then holds every acknowledged commit.
    quorum_position_known: bool,
    /// Members whose position is unknown (a lost primary among them): while there are some,
    /// only the quorum members' positions tell where the acknowledged commits are.
    unknown: usize,
}

impl Candidates {
    /// Whether the most advanced known position is sure to hold every acknowledged commit, so
    /// that any candidate that reaches it (a standby outside the quorum too) loses none:
    /// either a quorum member's position is known, or every member's is (the old primary's
    /// included, which matters when no standby was in the quorum and the primary acknowledged
    /// commits alone).
    fn acknowledged_commits_located(&self) -> bool {
        self.quorum_position_known || (self.unknown == 0 && self.missing == 0)
    }
}

/// Drives an election one step. Returns whether it made progress.
pub fn proceed(
    group: &mut Group,
    active: NodeId,
    primary: Option<NodeId>,
) -> Result<bool, FsmError> {
    // A candidate may already be on its way: keep following it rather than electing another,
    // unless it is stuck before promoting (see `abandon_if_stuck`).
    if let Some(candidate) = group.candidate_being_promoted()
        && !abandon_if_stuck(group, candidate)
    {
        if candidate == active {
            return Ok(follow_candidate(group, active, candidate));
        }
        group.log(format!(
            "Active {} found failover candidate {} being promoted (currently \"{}\"/\"{}\")",
            group.label(Some(active)),
            group.label(Some(candidate)),
            group
                .get(candidate)
                .map_or("unknown", |n| n.reported.as_str()),
            group.get(candidate).map_or("unknown", |n| n.goal.as_str()),
        ));
        // Postgres is stopped in report_lsn, so a candidate there may look unhealthy: still
        // follow it, two candidates at once must never happen.
        let keep = group.get(candidate).is_some_and(|c| {
            matches!(c.reported, S::ReportLsn | S::PreparePromotion)
                || group.health.is_healthy(Some(c))
                || !abandonable(c)
        });
        if keep {
            return Ok(follow_candidate(group, active, candidate));
        }
        // an unhealthy candidate that has not started promoting: elect again
        abandon(group, candidate, "is unhealthy");
    }

    let candidates = build_candidates(group);
    let active_label = group.label(Some(active));
    let active_reported = group.get(active).map_or(S::Unknown, |n| n.reported);

    if candidates.missing > 0 {
        group.log(format!(
            "Failover still in progress after {} nodes reported their LSN and we are waiting \
             for {} nodes to report, active node is {active_label} and reported state \
             \"{active_reported}\"",
            candidates.reported.len(),
            candidates.missing
        ));
        return Ok(false);
    }
    if candidates.reported.is_empty() {
        return Ok(false);
    }
    let nss = group.formation.number_sync_standbys;
    let needed = usize::try_from(nss.max(0)).unwrap_or(0) + 1;
    if candidates.quorum_count < needed {
        group.log(format!(
            "Failover still in progress with {} candidates that participate in the quorum \
             having reported their LSN: {needed} nodes are required in the quorum to satisfy \
             number_sync_standbys={nss} in formation \"{}\", active node is {active_label} and \
             reported state \"{active_reported}\"",
            candidates.quorum_count, group.formation.id
        ));
        return Ok(false);
    }

    let (most_advanced, best) = most_advanced_standbys(group);
    let Some(&reference) = most_advanced.first() else {
        return Err(FsmError::Internal(
            "no standby found while selecting a failover candidate".to_string(),
        ));
    };
    group.log(format!(
        "The current most advanced reported LSN is {} on timeline {}, as reported by {} and \
         {} other nodes",
        best.1,
        best.0,
        group.label(Some(reference)),
        most_advanced.len() - 1
    ));

    let Some(selected) = select_candidate(group, &candidates, &most_advanced, best, primary) else {
        group.log(format!(
            "Failover still in progress after all {} candidate nodes reported their LSN and we \
             failed to select one of them; active node is {active_label} and reported state \
             \"{active_reported}\"",
            candidates.reported.len()
        ));
        return Ok(false);
    };
    promote(group, selected, primary, &candidates, best);
    Ok(true)
}

/// Whether `candidate` was chosen but has not been told to promote yet (its goal is
/// `fast_forward` or `prepare_promotion`): giving it up cannot leave two writable nodes.
fn abandonable(candidate: &Node) -> bool {
    matches!(candidate.goal, S::FastForward | S::PreparePromotion)
}

/// Gives up `candidate` when the election cannot finish with it: its keeper stopped reporting,
/// or it was told to fetch WAL and still lacks some after `node_considered_unhealthy_timeout`.
/// Returns whether it did.
pub fn abandon_if_stuck(group: &mut Group, candidate: NodeId) -> bool {
    let Some(c) = group.get(candidate).cloned() else {
        return false;
    };
    if !abandonable(&c) {
        return false;
    }
    if !group.health.is_reporting(Some(&c)) {
        abandon(group, candidate, "stopped reporting");
        return true;
    }
    let timeout = group.settings().node_considered_unhealthy_timeout_ms;
    let fetching_for_too_long = c.goal == S::FastForward
        && c.state_change_time
            .exceeded_by(group.health.clock.now, timeout)
        && first_standby_ahead_of(group, candidate).is_some();
    if fetching_for_too_long {
        // as 2.0 steers elections with priorities: one step down until a node is promoted
        // (`promote` restores it), so that the next election prefers a node that needs no
        // fetch, when there is one
        if c.candidate_priority > 0 {
            let priority = c.candidate_priority - CANDIDATE_PRIORITY_INCREMENT;
            group.set_candidate_priority(
                candidate,
                priority,
                format!(
                    "Updating candidate priority to {priority} for {} until a new primary is \
                     elected",
                    c.label()
                ),
            );
        }
        abandon(
            group,
            candidate,
            &format!("did not reach the most advanced standby's WAL within {timeout} ms"),
        );
        return true;
    }
    false
}

/// Sends a stuck candidate back to `report_lsn`, so that the election starts again.
fn abandon(group: &mut Group, candidate: NodeId, why: &str) {
    let label = group.label(Some(candidate));
    group.assign(
        candidate,
        S::ReportLsn,
        format!(
            "Setting goal state of {label} to report_lsn: it {why} before its promotion,              electing a failover candidate again"
        ),
    );
}

/// A standby that reported its LSN follows the candidate once it can stream from it.
fn follow_candidate(group: &mut Group, active: NodeId, candidate: NodeId) -> bool {
    let ready = group.get(candidate).is_some_and(is_ready_to_stream_wal);
    if group.converged(Some(active), S::ReportLsn) && ready {
        let msg = format!(
            "Setting goal state of {} to join_secondary after {} got selected as the failover \
             candidate.",
            group.label(Some(active)),
            group.label(Some(candidate))
        );
        return group.assign(active, S::JoinSecondary, msg);
    }
    false
}

/// Collects the standbys that reported their LSN, counts those still expected to, and asks the
/// ones that must report to do so (goal `report_lsn`).
fn build_candidates(group: &mut Group) -> Candidates {
    let mut candidates = Candidates::default();
    let nss = group.formation.number_sync_standbys;
    for id in group.member_ids() {
        let Some(node) = group.get(id).cloned() else {
            continue;
        };
        // Old and new primaries are not candidates, except an old primary that finished
        // draining or is demoted: it may hold the most recent WAL.
        // (a node that last reported a primary's state and is still meant to be one counts
        // too: it may have acknowledged commits alone, in wait_primary; one told to report
        // its LSN is waited for below)
        let primary_like = group.in_primary_state(Some(id))
            || is_being_demoted_primary(&node)
            || is_demoted_primary(&node)
            || (node.reported.belongs_to_primary() && node.goal.belongs_to_primary());
        if primary_like && !(node.is_converged(S::Draining) || node.is_converged(S::Demoted)) {
            // its last WAL is unknown until it drained (or was demoted) and reported
            candidates.unknown += 1;
            continue;
        }
        // A node that is gone is not waited for, unless it is in the quorum and its LSN is
        // unknown: it may hold commits no other node has. Once it reported for this election
        // (report_lsn, or fetching and promoting since), its position is known, and a keeper
        // that stopped reporting is gone even if its Postgres still answers the probe.
        let position_known = matches!(
            node.reported,
            S::ReportLsn | S::FastForward | S::PreparePromotion
        );
        let silent = !group.health.is_reporting(Some(&node));
        if silent && (position_known || group.health.is_unhealthy(Some(&node))) {
            if node.replication_quorum && !position_known {
                candidates.missing += 1;
            }
            if position_known {
                candidates.quorum_position_known |= node.replication_quorum;
            } else {
                candidates.unknown += 1;
            }
            continue;
        }
        if node.is_converged(S::ReportLsn) {
            candidates.reported.push(id);
            candidates.quorum_position_known |= node.replication_quorum;
            if node.replication_quorum || nss == 0 {
                candidates.quorum_count += 1;
            }
            continue;
        }
        if node.goal == S::ReportLsn {
            candidates.missing += 1;
            continue;
        }
        let standby_like = |s: S| matches!(s, S::Secondary | S::Catchingup);
        let must_report = (standby_like(node.reported) && standby_like(node.goal))
            || (node.reported == S::Maintenance && node.goal == S::Catchingup)
            || node.is_converged(S::Draining)
            || node.is_converged(S::Demoted)
            || (node.reported == S::Demoted && node.goal == S::Catchingup);
        if must_report {
            candidates.missing += 1;
            group.assign(
                id,
                S::ReportLsn,
                format!(
                    "Setting goal state of {} to report_lsn to find the failover candidate",
                    node.label()
                ),
            );
        }
    }
    candidates
}

/// A WAL position that orders across timelines: a later timeline is always ahead.
type Position = (i32, Lsn);

fn position(node: &Node) -> Position {
    (node.reported_tli, node.reported_lsn)
}

/// The members (other than primaries) that reported the highest (timeline, LSN), and that
/// position.
fn most_advanced_standbys(group: &Group) -> (Vec<NodeId>, Position) {
    let standbys: Vec<&Node> = group
        .members()
        .filter(|n| !n.reported.belongs_to_primary())
        .collect();
    let best = standbys
        .iter()
        .map(|n| position(n))
        .max()
        .unwrap_or((0, Lsn(0)));
    let ids = standbys
        .iter()
        .filter(|n| position(n) == best)
        .map(|n| n.id)
        .collect();
    (ids, best)
}

/// A member that is not a primary and reported a more advanced position than `id`, if any.
pub fn first_standby_ahead_of(group: &Group, id: NodeId) -> Option<NodeId> {
    let mine = position(group.get(id)?);
    group
        .members()
        .filter(|n| n.id != id && !n.reported.belongs_to_primary())
        .find(|n| position(n) > mine)
        .map(|n| n.id)
}

/// Picks the healthy candidate with the highest priority, the most advanced among equals;
/// standbys outside the replication quorum only when the acknowledged commits are located
/// (see [`Candidates::acknowledged_commits_located`]: the winner then fetches up to the most
/// advanced position before it promotes) or when `perform_promotion` named them.
/// Refuses when even the most advanced standby is too far behind the old primary, or when the
/// choice lags and no most advanced standby is up to fetch WAL from.
fn select_candidate(
    group: &mut Group,
    candidates: &Candidates,
    most_advanced: &[NodeId],
    best: Position,
    primary: Option<NodeId>,
) -> Option<NodeId> {
    let threshold = group.settings().promote_wal_log_threshold;
    let reference = *most_advanced.first()?;
    if primary.is_some() && !group.wal_within(Some(reference), primary, threshold) {
        let msg = format!(
            "One of the most advanced standby nodes in the group is {} with reported LSN {}, \
             which is more than pgautofailover.promote_wal_log_threshold ({threshold}) behind \
             the primary {}, which has reported {}",
            group.label(Some(reference)),
            group.get(reference).map_or(Lsn(0), |n| n.reported_lsn),
            group.label(primary),
            primary
                .and_then(|p| group.get(p))
                .map_or(Lsn(0), |n| n.reported_lsn),
        );
        group.log(msg);
        return None;
    }

    let mut sorted: Vec<Node> = Vec::new();
    let reported: Vec<Node> = candidates
        .reported
        .iter()
        .filter_map(|id| group.get(*id).cloned())
        .collect();
    for node in reported {
        if node.candidate_priority <= 0 {
            continue;
        }
        if !node.replication_quorum
            && !candidates.acknowledged_commits_located()
            && node.candidate_priority <= MAX_USER_CANDIDATE_PRIORITY
        {
            group.log(format!(
                "Not selecting failover candidate {}: it is not in the replication quorum and \
                 no quorum member reported its position, so it may lack commits the primary \
                 acknowledged",
                node.label()
            ));
            continue;
        }
        sorted.push(node);
    }
    // Stable: among equal priorities the lower node id comes first.
    sorted.sort_by_key(|n| std::cmp::Reverse(n.candidate_priority));

    let mut selected: Option<Node> = None;
    for node in sorted {
        if group.health.is_unhealthy(Some(&node)) {
            group.log(format!(
                "Not selecting failover candidate {} because it is unhealthy",
                node.label()
            ));
            continue;
        }
        match &selected {
            None => selected = Some(node),
            Some(best) if node.candidate_priority == best.candidate_priority => {
                if position(&node) > position(best) {
                    selected = Some(node);
                }
            }
            Some(_) => break,
        }
    }
    let selected = selected?;

    if position(&selected) < best {
        let source_up = most_advanced
            .iter()
            .any(|id| group.health.is_healthy(group.get(*id)));
        if !source_up {
            group.log(format!(
                "The selected candidate {} needs to fetch missing WAL to reach LSN {} (from \
                 current reported LSN {}) and none of the most advanced standby nodes are \
                 healthy at the moment.",
                selected.label(),
                best.1,
                selected.reported_lsn
            ));
            return None;
        }
    }
    Some(selected.id)
}

/// Assigns the chosen candidate its next state and undoes the priority steering.
fn promote(
    group: &mut Group,
    selected: NodeId,
    primary: Option<NodeId>,
    candidates: &Candidates,
    best: Position,
) {
    if let Some(node) = group.get(selected).cloned()
        && node.candidate_priority > MAX_USER_CANDIDATE_PRIORITY
    {
        let priority = node.candidate_priority - CANDIDATE_PRIORITY_INCREMENT;
        group.set_candidate_priority(
            selected,
            priority,
            format!(
                "Updating candidate priority back to {priority} for {}",
                node.label()
            ),
        );
    }
    // every priority an election lowered comes back, also of nodes that stopped reporting
    for id in group.member_ids() {
        if let Some(node) = group.get(id).cloned()
            && node.candidate_priority < 0
        {
            let priority = node.candidate_priority + CANDIDATE_PRIORITY_INCREMENT;
            group.set_candidate_priority(
                id,
                priority,
                format!(
                    "Updating candidate priority back to {priority} for {}",
                    node.label()
                ),
            );
        }
    }

    let Some(node) = group.get(selected).cloned() else {
        return;
    };
    let count = candidates.reported.len();
    let after = match primary {
        Some(_) => format!(" after {} became unhealthy and", group.label(primary)),
        None => " and".to_string(),
    };
    let goal = if position(&node) == best {
        S::PreparePromotion
    } else {
        S::FastForward
    };
    group.assign(
        selected,
        goal,
        format!(
            "Setting goal state of {} to {goal}{after} {count} nodes reported their LSN position.",
            node.label()
        ),
    );
}
