//! The monitor's transition rules, run whenever a node reports (`ProceedGroupState` in 2.0).
//!
//! Given the group after the calling node's report, [`proceed`] decides at most one step for the
//! group: the first matching rule wins. Rules are grouped as in 2.0: early checks, the primary's
//! own section, then rules for every other reporting node. Each rule's comment names the
//! transition it makes; `docs/state-machine.md` lists them all.

use crate::election;
use crate::group::Group;
use crate::model::{FormationKind, NodeId};
use crate::{FsmError, ReplicationState as S};

/// Runs the rules for the group of `active`, the node that just reported (or the node an API
/// call starts from). Returns whether a rule matched.
pub fn proceed(group: &mut Group, active: NodeId) -> Result<bool, FsmError> {
    let a = group.node(active)?.clone();
    let a_id = Some(active);

    // dropped, converged: the row goes.
    if a.is_converged(S::Dropped) {
        group.delete(
            active,
            format!(
                "Removing {} from formation \"{}\" and group {}",
                a.label(),
                group.formation.id,
                a.group_id
            ),
        );
        return Ok(true);
    }
    // being dropped: nothing more to decide for it.
    if a.goal == S::Dropped {
        return Ok(true);
    }
    // maintenance (reached or on its way): only stop_maintenance() brings it back.
    if a.goal == S::Maintenance {
        return Ok(true);
    }

    // Alone in the group: single, or report_lsn for a node that must never be primary. A node
    // with no data yet (wait_standby), or waiting for a new primary, is left to wait: making it
    // a primary would start an empty or diverged database.
    if group.member_count() == 1
        && !a.is_converged(S::Single)
        && !matches!(
            a.reported,
            S::WaitStandby | S::JoinSecondary | S::PrepareMaintenance
        )
    {
        // A removed primary that has not stopped yet still takes writes: wait until it
        // confirms (its row goes) or is gone, or the group would have two primaries.
        if wait_for_removed_writer(group, active) {
            return Ok(false);
        }
        if a.candidate_priority > 0 || a.goal.can_take_writes() {
            group.assign(
                active,
                S::Single,
                format!(
                    "Setting goal state of {} to single as there is no other node.",
                    a.label()
                ),
            );
        } else {
            group.assign(
                active,
                S::ReportLsn,
                format!(
                    "Setting goal state of {} to report_lsn as there is no other node \
                     and its candidate priority is 0.",
                    a.label()
                ),
            );
        }
        return Ok(true);
    }

    if group.in_primary_state(a_id) {
        return Ok(proceed_for_primary(group, active));
    }

    let p_id = group.primary_or_demoted();
    if p_id.is_none() && !group.failover_in_progress() {
        // 2.0 raises an ERROR here, which also discards the caller's report. Keep the report
        // and say why nothing happens.
        group.log(format!(
            "No primary node found in formation \"{}\", group {}: nothing to do for {} \
             in state {}",
            group.formation.id,
            a.group_id,
            a.label(),
            a.goal
        ));
        return Ok(false);
    }

    // More than one standby and the primary is gone: elect a new primary.
    if group.member_count() > 2 && group.health.is_unhealthy(p_id.and_then(|p| group.get(p))) {
        if let Some(p) = p_id {
            let secondaries = group.others_with_goal(p, S::Secondary);
            if group.in_primary_state(p_id)
                && !group.converged(p_id, S::WaitPrimary)
                && group.healthy_candidate_count(&secondaries) >= 1
            {
                let msg = format!(
                    "Setting goal state of {} to draining after it became unhealthy.",
                    group.label(p_id)
                );
                group.assign(p, S::Draining, msg);
            } else if group.converged(p_id, S::PrepareMaintenance) {
                let msg = format!(
                    "Setting goal state of {} to maintenance after it converged to \
                     prepare_maintenance.",
                    group.label(p_id)
                );
                group.assign(p, S::Maintenance, msg);
            }
        }
        if election::proceed(group, active, p_id)? {
            return Ok(true);
        }
    }

    Ok(proceed_for_standby(group, active, p_id))
}

/// The rules for a node that is not the primary, `p_id` being the primary (or old primary).
fn proceed_for_standby(group: &mut Group, active: NodeId, p_id: Option<NodeId>) -> bool {
    let a_id = Some(active);
    let a_label = group.label(a_id);
    let p_label = group.label(p_id);
    let health = group.health;
    let p = p_id.and_then(|p| group.get(p)).cloned();
    let p_reported = p.as_ref().map(|p| p.reported);
    let p_goal = p.as_ref().map(|p| p.goal);
    let a = match group.get(active) {
        Some(a) => a.clone(),
        None => return false,
    };
    let settings = *group.settings();

    // report_lsn -> secondary: the new primary is up (wait_primary or primary) and healthy.
    if a.is_converged(S::ReportLsn)
        && (group.converged(p_id, S::WaitPrimary) || group.converged(p_id, S::JoinPrimary))
        && health.is_healthy(p.as_ref())
    {
        return group.assign(
            active,
            S::Secondary,
            format!(
                "Setting goal state of {a_label} to secondary after {p_label} converged to {} \
                 and has been marked healthy.",
                p_reported.map_or("unknown", S::as_str)
            ),
        );
    }
    if a.is_converged(S::ReportLsn)
        && group.converged(p_id, S::Primary)
        && health.is_healthy(p.as_ref())
    {
        return group.assign(
            active,
            S::Secondary,
            format!(
                "Setting goal state of {a_label} to secondary after {p_label} got selected as \
                 the failover candidate."
            ),
        );
    }

    // fast_forward -> prepare_promotion: the candidate fetched the WAL it lacked. Check it
    // really reached the most advanced standby: promoting it earlier would lose commits. A
    // candidate that cannot get there in time goes back to report_lsn (a new election).
    if a.is_converged(S::FastForward) {
        if election::abandon_if_stuck(group, active) {
            return true;
        }
        if let Some(ahead) = election::first_standby_ahead_of(group, active) {
            group.log(format!(
                "Waiting for {a_label} to fast forward: {} reported a more advanced LSN.",
                group.label(Some(ahead))
            ));
            return false;
        }
        return group.assign(
            active,
            S::PreparePromotion,
            format!("Setting goal state of {a_label} to prepare_promotion after fast forwarding."),
        );
    }

    // An election in progress continues with every report.
    if a.is_converged(S::ReportLsn) || a.is_converged(S::FastForward) {
        return election::proceed(group, active, p_id).unwrap_or(false);
    }

    // wait_standby -> catchingup: the primary has opened replication for the new standby.
    if a.is_converged(S::WaitStandby)
        && (group.converged(p_id, S::WaitPrimary) || group.converged(p_id, S::JoinPrimary))
    {
        return group.assign(
            active,
            S::Catchingup,
            format!(
                "Setting goal state of {a_label} to catchingup after {p_label} converged to {}.",
                p_reported.map_or("unknown", S::as_str)
            ),
        );
    }
    // wait_standby -> catchingup, primary -> apply_settings: a quorum standby joins a primary
    // that must add it to synchronous_standby_names.
    if a.is_converged(S::WaitStandby)
        && group.converged(p_id, S::Primary)
        && let Some(p) = p_id
    {
        let msg = if a.replication_quorum {
            format!(
                "Setting goal state of {a_label} to catchingup and {p_label} to \
                 apply_settings to edit synchronous_standby_names."
            )
        } else {
            format!("Setting goal state of {a_label} to catchingup.")
        };
        group.assign(active, S::Catchingup, msg.clone());
        if a.replication_quorum {
            group.assign(p, S::ApplySettings, msg);
        }
        return true;
    }

    // catchingup -> secondary: healthy, same timeline, close enough to the primary.
    if a.is_converged(S::Catchingup)
        && (group.converged(p_id, S::WaitPrimary)
            || group.converged(p_id, S::JoinPrimary)
            || group.converged(p_id, S::Primary))
        && health.is_healthy(Some(&a))
        && p.as_ref().is_some_and(|p| p.reported_tli == a.reported_tli)
        && group.wal_within(a_id, p_id, settings.enable_sync_wal_log_threshold)
    {
        return group.assign(
            active,
            S::Secondary,
            format!("Setting goal state of {a_label} to secondary after it caught up."),
        );
    }

    // Automatic failover: secondary -> prepare_promotion, primary -> draining. Never while
    // another candidate is on its way: two candidates would both end up primary. Never an
    // asynchronous standby (not in the replication quorum): it may lack commits the primary
    // acknowledged.
    if a.is_converged(S::Secondary)
        && group.candidate_being_promoted().is_none()
        && group.in_primary_state(p_id)
        && health.is_unhealthy(p.as_ref())
        && health.is_healthy(Some(&a))
        && a.candidate_priority > 0
        && a.replication_quorum
        && group.wal_within(a_id, p_id, settings.promote_wal_log_threshold)
        && let Some(p) = p_id
    {
        let msg = format!(
            "Setting goal state of {p_label} to draining and {a_label} to prepare_promotion \
             after {p_label} became unhealthy."
        );
        group.assign(active, S::PreparePromotion, msg.clone());
        group.assign(p, S::Draining, msg);
        return true;
    }

    // wait_maintenance -> maintenance once the primary dropped synchronous replication, or no
    // longer needs to.
    if a.is_converged(S::WaitMaintenance) && group.converged(p_id, S::WaitPrimary) {
        return group.assign(
            active,
            S::Maintenance,
            format!(
                "Setting goal state of {a_label} to maintenance after {p_label} converged to \
                 wait_primary."
            ),
        );
    }
    if a.is_converged(S::WaitMaintenance) && p_goal != Some(S::WaitPrimary) {
        return group.assign(
            active,
            S::Maintenance,
            format!(
                "Setting goal state of {a_label} to maintenance after {p_label} got assigned {} \
                 as goal state.",
                p_goal.map_or("nothing", S::as_str)
            ),
        );
    }

    // prepare_promotion -> stop_replication while the old primary goes to maintenance.
    if a.is_converged(S::PreparePromotion) && group.converged(p_id, S::PrepareMaintenance) {
        return group.assign(
            active,
            S::StopReplication,
            format!(
                "Setting goal state of {a_label} to stop_replication after {p_label} converged \
                 to prepare_maintenance."
            ),
        );
    }

    let citus_worker = group.formation.kind == FormationKind::Citus && a.group_id > 0;

    // Citus worker: prepare_promotion -> wait_primary, old primary -> demoted.
    if a.is_converged(S::PreparePromotion)
        && citus_worker
        && !wait_for_removed_writer(group, active)
    {
        let msg = format!(
            "Setting goal state of {a_label} to wait_primary and {p_label} to demoted after \
             the coordinator metadata was updated."
        );
        group.assign(active, S::WaitPrimary, msg.clone());
        if let Some(p) = p_id {
            group.assign(p, S::Demoted, msg);
        }
        return true;
    }

    // prepare_promotion -> stop_replication, old primary -> demote_timeout.
    if a.is_converged(S::PreparePromotion) {
        if let Some(p) = p_id {
            if !p_goal.is_some_and(S::is_maintenance) {
                let msg = format!(
                    "Setting goal state of {p_label} to demote_timeout and {a_label} to \
                     stop_replication after {a_label} converged to prepare_promotion."
                );
                group.assign(active, S::StopReplication, msg.clone());
                group.assign(p, S::DemoteTimeout, msg);
                return true;
            }
        } else if !wait_for_removed_writer(group, active) {
            // The primary was removed and has stopped: nothing to wait for.
            return group.assign(
                active,
                S::WaitPrimary,
                format!(
                    "Setting goal state of {a_label} to wait_primary after it converged to \
                     prepare_promotion and no primary is left."
                ),
            );
        }
    }

    // stop_replication -> wait_primary, old primary -> maintenance.
    if a.is_converged(S::StopReplication)
        && group.converged(p_id, S::PrepareMaintenance)
        && let Some(p) = p_id
        && !wait_for_removed_writer(group, active)
    {
        let msg = format!(
            "Setting goal state of {a_label} to wait_primary and {p_label} to maintenance."
        );
        group.assign(active, S::WaitPrimary, msg.clone());
        group.assign(p, S::Maintenance, msg);
        return true;
    }

    // Promotion completes: the old primary confirmed it stopped, or had the demote timeout to
    // stop itself. stop_replication -> wait_primary, old primary -> demoted.
    if a.is_converged(S::StopReplication)
        && (group.converged(p_id, S::DemoteTimeout) || health.drain_time_expired(p.as_ref()))
        && let Some(p) = p_id
        && !wait_for_removed_writer(group, active)
    {
        let msg = format!(
            "Setting goal state of {a_label} to wait_primary and {p_label} to demoted after \
             the demote timeout expired."
        );
        group.assign(active, S::WaitPrimary, msg.clone());
        group.assign(p, S::Demoted, msg);
        return true;
    }

    // Citus worker: stop_replication -> wait_primary without waiting for the drain.
    if a.is_converged(S::StopReplication) && citus_worker && !wait_for_removed_writer(group, active)
    {
        let msg = format!(
            "Setting goal state of {a_label} to wait_primary and {p_label} to demoted after \
             the coordinator metadata was updated."
        );
        group.assign(active, S::WaitPrimary, msg.clone());
        if let Some(p) = p_id {
            group.assign(p, S::Demoted, msg);
        }
        return true;
    }

    // demoted -> catchingup: a new primary is up, the old one may rejoin as a standby.
    if a.is_converged(S::Demoted)
        && health.is_healthy(p.as_ref())
        && ((matches!(p_reported, Some(S::WaitPrimary | S::JoinPrimary))
            && p_goal == Some(S::Primary))
            || group.converged(p_id, S::JoinPrimary)
            || group.converged(p_id, S::WaitPrimary)
            || group.converged(p_id, S::Primary))
    {
        return group.assign(
            active,
            S::Catchingup,
            format!(
                "Setting goal state of {a_label} to catchingup after it converged to demotion \
                 and {p_label} converged to {}.",
                p_reported.map_or("unknown", S::as_str)
            ),
        );
    }

    // join_secondary -> secondary once the new primary reached wait_primary; then the primary
    // decides about synchronous replication.
    if a.is_converged(S::JoinSecondary)
        && p_reported == Some(S::WaitPrimary)
        && matches!(p_goal, Some(S::WaitPrimary | S::Primary))
    {
        group.assign(
            active,
            S::Secondary,
            format!(
                "Setting goal state of {a_label} to secondary after {p_label} converged to \
                 wait_primary."
            ),
        );
        if let Some(p) = p_id {
            proceed_for_primary(group, p);
        }
        return true;
    }
    if a.is_converged(S::JoinSecondary) && group.converged(p_id, S::Primary) {
        return group.assign(
            active,
            S::Secondary,
            format!(
                "Setting goal state of {a_label} to secondary after {p_label} converged to \
                 primary."
            ),
        );
    }

    false
}

/// Whether a removed primary may still take writes, which forbids promoting `active`; logs why.
fn wait_for_removed_writer(group: &mut Group, active: NodeId) -> bool {
    let Some(old) = group.removed_writer() else {
        return false;
    };
    let (reported, old_label) = group
        .get(old)
        .map_or((S::Unknown, String::new()), |n| (n.reported, n.label()));
    group.log(format!(
        "Not promoting {} while the removed {old_label} may still take writes in state \
         {reported}.",
        group.label(Some(active))
    ));
    true
}

/// The rules for the primary (`ProceedGroupStateForPrimaryNode`): enrol new standbys, and keep
/// `primary` vs `wait_primary` in line with how many healthy quorum standbys there are.
pub fn proceed_for_primary(group: &mut Group, primary: NodeId) -> bool {
    let p_id = Some(primary);
    let p_label = group.label(p_id);
    let others = group.other_ids(primary);

    // single -> wait_primary: a standby wants to join.
    if group.converged(p_id, S::Single)
        && let Some(&joining) = others
            .iter()
            .find(|id| group.converged(Some(**id), S::WaitStandby))
    {
        let msg = format!(
            "Setting goal state of {p_label} to wait_primary after {} joined.",
            group.label(Some(joining))
        );
        return group.assign(primary, S::WaitPrimary, msg);
    }

    if group.converged(p_id, S::Primary)
        || group.converged(p_id, S::WaitPrimary)
        || group.converged(p_id, S::ApplySettings)
    {
        let total = others.len();
        let mut quorum_nodes = total;
        let mut secondaries = total;
        let mut quorum_secondaries = total;
        for &other in &others {
            let Some(node) = group.get(other).cloned() else {
                continue;
            };
            if node.goal == S::Secondary
                && !matches!(node.reported, S::ReportLsn | S::JoinSecondary)
                && group.health.is_unhealthy(Some(&node))
            {
                secondaries -= 1;
                quorum_secondaries -= 1;
                group.assign(
                    other,
                    S::Catchingup,
                    format!(
                        "Setting goal state of {} to catchingup after it became unhealthy.",
                        node.label()
                    ),
                );
            } else if !node.is_converged(S::Secondary) {
                secondaries -= 1;
                quorum_secondaries -= 1;
            } else if !node.replication_quorum {
                quorum_secondaries -= 1;
            }
            if !node.replication_quorum {
                quorum_nodes -= 1;
            }
        }

        let nss = group.formation.number_sync_standbys;
        let p_goal = group.get(primary).map(|p| p.goal);

        // Every standby is asynchronous: primary as long as one of them is a secondary.
        if quorum_nodes == 0 {
            let goal = if secondaries == 0 {
                S::WaitPrimary
            } else {
                S::Primary
            };
            if p_goal != Some(goal) {
                group.assign(
                    primary,
                    goal,
                    format!(
                        "Setting goal state of {p_label} to {goal} because none of the standby \
                         nodes take part in the replication quorum and {secondaries} of them \
                         are secondary."
                    ),
                );
            }
            return true;
        }

        // No healthy quorum standby: drop synchronous replication to keep taking writes, unless
        // the user asked for sync standbys (number_sync_standbys > 0), then writes wait.
        if !group.converged(p_id, S::WaitPrimary) && quorum_secondaries == 0 {
            let goal = if nss == 0 { S::WaitPrimary } else { S::Primary };
            if p_goal != Some(goal) {
                return group.assign(
                    primary,
                    goal,
                    format!(
                        "Setting goal state of {p_label} to {goal} because none of the standby \
                         nodes in the quorum are healthy at the moment."
                    ),
                );
            }
        }

        // wait_primary -> primary: a healthy quorum secondary is back.
        if group.converged(p_id, S::WaitPrimary) && quorum_secondaries > 0 {
            return group.assign(
                primary,
                S::Primary,
                format!(
                    "Setting goal state of {p_label} to primary now that we have \
                     {quorum_secondaries} healthy secondary nodes in the quorum."
                ),
            );
        }

        // apply_settings -> primary or wait_primary once the new settings are applied.
        if group.converged(p_id, S::ApplySettings) {
            let goal = if nss == 0 && quorum_secondaries == 0 {
                S::WaitPrimary
            } else {
                S::Primary
            };
            return group.assign(
                primary,
                goal,
                format!(
                    "Setting goal state of {p_label} to {goal} after it applied replication \
                     properties change."
                ),
            );
        }
        return true;
    }

    // join_primary is deprecated: always move on to primary.
    if group.converged(p_id, S::JoinPrimary) {
        return group.assign(
            primary,
            S::Primary,
            format!("Setting goal state of {p_label} to primary."),
        );
    }
    false
}
