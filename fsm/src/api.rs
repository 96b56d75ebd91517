//! Transitions triggered by the monitor's SQL API rather than by a heartbeat: manual failover
//! and promotion, maintenance, node removal, and replication settings.
//!
//! Each function checks its preconditions first and returns an error without any effect when
//! they do not hold, so a refused call changes nothing.

use crate::group::{CANDIDATE_PRIORITY_INCREMENT, Group, MAX_USER_CANDIDATE_PRIORITY};
use crate::model::NodeId;
use crate::rules::proceed;
use crate::{FsmError, ReplicationState as S};

/// `perform_failover()`: demote the primary and promote a standby.
pub fn perform_failover(group: &mut Group) -> Result<(), FsmError> {
    let count = group.member_count();
    let formation = group.formation.id.clone();
    if count < 2 {
        return Err(FsmError::not_ready(
            format!(
                "cannot fail over: group {} in formation \"{formation}\" currently has {count} \
                 node registered",
                group.group_id
            ),
            Some("At least 2 nodes are required to implement a failover."),
        ));
    }
    let Some(primary) = group.failover_source() else {
        // After losing the primary of a multi-standby group the standbys wait in report_lsn:
        // a manual failover then resumes the election.
        let reporting = group
            .members()
            .find(|n| n.is_converged(S::ReportLsn))
            .map(|n| n.id);
        if let Some(reporting) = reporting {
            proceed(group, reporting)?;
            return Ok(());
        }
        return Err(FsmError::not_ready(
            format!(
                "couldn't find the primary node in formation \"{formation}\", group {}: \
                 a failover starts from a node in state primary or single",
                group.group_id
            ),
            Some("Check the node states with pg_autoctl show state."),
        ));
    };
    let p_label = group.label(Some(primary));
    let others = group.other_ids(primary);

    if count == 2 {
        let standby = others[0];
        let s = group.node(standby)?.clone();
        if s.goal != S::Secondary {
            return Err(FsmError::not_ready(
                format!(
                    "standby {} is in state \"{}\", which prevents the node for being a \
                     failover candidate",
                    s.label(),
                    s.goal
                ),
                Some("Wait until the standby is in state secondary."),
            ));
        }
        if !group.converged(Some(primary), S::Primary) || !s.is_converged(S::Secondary) {
            let p = group.node(primary)?;
            return Err(FsmError::not_ready(
                format!(
                    "cannot fail over: primary node is not in a stable state: {p_label} has \
                     reported state \"{}\" and is assigned state \"{}\", and {} has reported \
                     state \"{}\" and is assigned state \"{}\"",
                    p.reported,
                    p.goal,
                    s.label(),
                    s.reported,
                    s.goal
                ),
                Some("A stable state must be observed to perform a manual failover."),
            ));
        }
        if s.candidate_priority <= 0 {
            return Err(FsmError::not_ready(
                format!(
                    "cannot fail over: standby {} has candidate priority {}, so it can not \
                     become the primary",
                    s.label(),
                    s.candidate_priority
                ),
                Some("Raise it with pg_autoctl set node candidate-priority."),
            ));
        }
        let msg = format!(
            "Setting goal state of {p_label} to draining and {} to prepare_promotion after a \
             user-initiated failover.",
            s.label()
        );
        group.assign(primary, S::Draining, msg.clone());
        group.assign(standby, S::PreparePromotion, msg);
        return Ok(());
    }

    // As 2.0, candidate priorities do not matter here: with every priority at 0 the standbys
    // wait in report_lsn until an operator raises one. But a failover with no healthy
    // secondary at all would only stop the writes.
    let healthy_secondaries = others
        .iter()
        .filter_map(|id| group.get(*id))
        .filter(|n| n.is_converged(S::Secondary) && group.health.is_healthy(Some(n)))
        .count();
    if healthy_secondaries == 0 {
        return Err(FsmError::not_ready(
            format!(
                "cannot fail over: formation \"{formation}\" has no healthy standby in state \
                 secondary"
            ),
            Some("Check the standbys with pg_autoctl show state."),
        ));
    }
    if group.healthy_candidate_count(&others) == 0 {
        group.notice(format!(
            "every standby of group {} in formation \"{formation}\" has candidate priority 0: \
             they wait in report_lsn until one is given a priority above 0 with pg_autoctl set \
             node candidate-priority",
            group.group_id
        ));
    }
    let p = group.node(primary)?.clone();
    group.assign(
        primary,
        S::Draining,
        format!(
            "Setting goal state of {p_label} at LSN {} to draining after a user-initiated \
             failover.",
            p.reported_lsn
        ),
    );
    // The old primary usually has the most recent WAL and would win the election: make it
    // lose; the election restores the priority.
    let lowered = p.candidate_priority - CANDIDATE_PRIORITY_INCREMENT;
    group.set_candidate_priority(
        primary,
        lowered,
        format!("Updating candidate priority to {lowered} for {p_label}"),
    );
    proceed(group, others[0])?;
    Ok(())
}

/// `perform_promotion()`: make one named standby the new primary. Returns false when it is
/// already the primary.
pub fn perform_promotion(group: &mut Group, node_id: NodeId) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    let formation = group.formation.id.clone();
    if node.is_converged(S::Single) || node.is_converged(S::Primary) {
        group.notice(format!(
            "cannot perform promotion: node {} in formation {formation} is already a primary.",
            node.name
        ));
        return Ok(false);
    }
    if !node.is_converged(S::Secondary) && !node.is_converged(S::ReportLsn) {
        return Err(FsmError::not_ready(
            format!(
                "cannot perform promotion: node {} in formation {formation} has reported state \
                 \"{}\" and is assigned state \"{}\", promotion can only be performed when in \
                 state \"secondary\".",
                node.name, node.reported, node.goal
            ),
            Some("Wait until the node is in state secondary."),
        ));
    }
    if group.member_count() > 2 {
        let raised = node.candidate_priority + CANDIDATE_PRIORITY_INCREMENT;
        group.set_candidate_priority(
            node_id,
            raised,
            format!(
                "Updating candidate priority to {raised} for {}",
                node.label()
            ),
        );
    }
    perform_failover(group)?;
    Ok(true)
}

/// `start_maintenance()`: take a node out of the group's decisions. A primary first hands over
/// to a standby.
pub fn start_maintenance(group: &mut Group, node_id: NodeId) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    if node.reported == S::Maintenance || node.goal == S::Maintenance {
        return Ok(true);
    }
    let standby_like = matches!(node.reported, S::Secondary | S::Catchingup);
    let is_primary = node.is_converged(S::Primary);
    if !is_primary && !standby_like {
        return Err(FsmError::not_ready(
            format!(
                "cannot start maintenance: node {}:{} has reported state \"{}\" and is assigned \
                 state \"{}\", expected either \"primary\", \"secondary\" or \"catchingup\"",
                node.host, node.port, node.reported, node.goal
            ),
            Some("Wait until the group is stable, see pg_autoctl show state."),
        ));
    }
    let primary = if is_primary {
        node_id
    } else {
        group.writable_member().ok_or_else(|| {
            FsmError::not_ready(
                format!(
                    "couldn't find the primary node in formation \"{}\", group {}",
                    group.formation.id, node.group_id
                ),
                None,
            )
        })?
    };
    let p_label = group.label(Some(primary));
    let secondaries = group.others_with_goal(primary, S::Secondary);
    let candidates = group.healthy_candidate_count(&secondaries);
    let sync_standbys = secondaries
        .iter()
        .filter(|id| group.is_healthy_sync_standby(**id))
        .count();
    let nss = group.formation.number_sync_standbys;
    if nss > 0
        && sync_standbys <= usize::try_from(nss).unwrap_or(0)
        && group.is_healthy_sync_standby(node_id)
    {
        group.warning(format!(
            "Starting maintenance on {} will block writes on the primary {p_label}: we now have \
             {} healthy node(s) left in the \"secondary\" state and formation \"{}\" \
             number-sync-standbys requires {nss} sync standbys",
            node.label(),
            sync_standbys.saturating_sub(1),
            group.formation.id
        ));
    }

    if is_primary {
        if candidates < 1 {
            return Err(FsmError::not_ready(
                format!(
                    "Starting maintenance on {} in state \"{}\" is not currently possible: \
                     there is currently {candidates} candidate nodes available",
                    node.label(),
                    node.reported
                ),
                Some(
                    "A healthy standby in state secondary with candidate priority above 0 is needed to take over.",
                ),
            ));
        }
        let others = group.other_ids(node_id);
        if group.member_count() == 2 {
            let standby = others[0];
            let msg = format!(
                "Setting goal state of {} to prepare_maintenance and {} to prepare_promotion \
                 after a user-initiated start_maintenance call.",
                node.label(),
                group.label(Some(standby))
            );
            group.assign(node_id, S::PrepareMaintenance, msg.clone());
            group.assign(standby, S::PreparePromotion, msg);
        } else {
            group.assign(
                node_id,
                S::PrepareMaintenance,
                format!(
                    "Setting goal state of {} to prepare_maintenance after a user-initiated \
                     start_maintenance call.",
                    node.label()
                ),
            );
            proceed(group, others[0])?;
        }
        return Ok(true);
    }

    if !group.converged(Some(primary), S::Primary) {
        let p = group.node(primary)?;
        return Err(FsmError::not_ready(
            format!(
                "cannot start maintenance: current state for {} is \"{}\", expected \
                 \"secondary\" or \"catchingup\", and current state for primary {p_label} is \
                 \"{}\" ➜ \"{}\"",
                node.label(),
                node.reported,
                p.reported,
                p.goal
            ),
            Some("Wait until the primary is in state primary."),
        ));
    }
    // Taking the last healthy sync standby away: drop synchronous replication first so that
    // writes do not hang while the standby stops.
    if nss == 0 && sync_standbys == 1 && group.is_healthy_sync_standby(node_id) {
        let msg = format!(
            "Setting goal state of {p_label} to wait_primary and {} to wait_maintenance after a \
             user-initiated start_maintenance call.",
            node.label()
        );
        group.assign(primary, S::WaitPrimary, msg.clone());
        group.assign(node_id, S::WaitMaintenance, msg);
    } else {
        group.assign(
            node_id,
            S::Maintenance,
            format!(
                "Setting goal state of {} to maintenance after a user-initiated \
                 start_maintenance call.",
                node.label()
            ),
        );
    }
    Ok(true)
}

/// `stop_maintenance()`: bring a node back as a standby (or into an ongoing election).
pub fn stop_maintenance(group: &mut Group, node_id: NodeId) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    let count = group.member_count();
    let in_maintenance = node.is_converged(S::Maintenance)
        || (count > 2 && node.is_converged(S::PrepareMaintenance));
    if !in_maintenance {
        return Err(FsmError::not_ready(
            format!(
                "cannot stop maintenance when current state for {} is not \"maintenance\": \
                 current reported state is \"{}\" and assigned state is \"{}\"",
                node.label(),
                node.reported,
                node.goal
            ),
            Some("Wait until the node reached maintenance."),
        ));
    }
    let label = node.label();
    let primary = group.primary_or_demoted();
    let goal = if count == 1 {
        // Alone: report_lsn first, then the rules make it single if it may be a primary.
        S::ReportLsn
    } else if primary.is_none() && count == 2 {
        return Err(FsmError::not_ready(
            format!(
                "couldn't find the primary node in formation \"{}\", group {}",
                group.formation.id, node.group_id
            ),
            None,
        ));
    } else if primary.is_none() || group.failover_in_progress() {
        S::ReportLsn
    } else {
        S::Catchingup
    };
    group.assign(
        node_id,
        goal,
        format!(
            "Setting goal state of {label} to {goal} after a user-initiated stop_maintenance \
             call."
        ),
    );
    Ok(true)
}

/// Whether a node that reached `state` holds a copy of the data that may count in an election.
fn has_data_for_election(state: S) -> bool {
    matches!(
        state,
        S::Secondary
            | S::Catchingup
            | S::ReportLsn
            | S::FastForward
            | S::JoinSecondary
            | S::PreparePromotion
            | S::StopReplication
            | S::Draining
            | S::DemoteTimeout
            | S::Demoted
    )
}

/// `remove_node()`: mark a node `dropped` (its keeper then stops it) or, with `force` or once it
/// reported `dropped`, delete it. Removing the primary starts an election among the others.
pub fn remove_node(group: &mut Group, node_id: NodeId, force: bool) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    let label = node.label();
    if force || node.is_converged(S::Dropped) {
        group.delete(
            node_id,
            format!(
                "Removing {label} from formation \"{}\" and group {}",
                group.formation.id, node.group_id
            ),
        );
        return Ok(true);
    }
    if node.goal == S::Dropped {
        return Ok(true);
    }

    let was_primary = node.goal.can_take_writes();
    let others = group.other_ids(node_id);
    if was_primary {
        for &other in &others {
            let Some(o) = group.get(other).cloned() else {
                continue;
            };
            // Only standbys with data take part in the election. Nodes in maintenance are left
            // alone; nodes without data yet (init, wait_standby) join the new primary later;
            // an old primary that still reports a primary state is dead or diverged and must
            // rejoin through demoted -> catchingup.
            if o.goal.is_maintenance() || !has_data_for_election(o.reported) {
                continue;
            }
            group.assign(
                other,
                S::ReportLsn,
                format!(
                    "Setting goal state of {} to report_lsn after primary node removal.",
                    o.label()
                ),
            );
        }
    }
    group.assign(
        node_id,
        S::Dropped,
        format!(
            "Setting goal state of {label} from formation \"{}\" and group {} to \"dropped\" to \
             implement node removal.",
            group.formation.id, node.group_id
        ),
    );

    // Keep number_sync_standbys achievable with the standbys left (one of the remaining quorum
    // nodes is, or becomes, the primary).
    let quorum_left = others
        .iter()
        .filter_map(|id| group.get(*id))
        .filter(|n| n.replication_quorum)
        .count();
    let sync_standbys = i32::try_from(quorum_left).unwrap_or(i32::MAX) - 1;
    let nss = group.formation.number_sync_standbys;
    if sync_standbys < nss + 1 {
        let lowered = (sync_standbys - 1).max(0);
        if lowered != nss {
            group.set_number_sync_standbys(
                lowered,
                format!(
                    "Setting number_sync_standbys to {lowered} for formation \"{}\" now that we \
                     have {} standby nodes set with replication-quorum.",
                    group.formation.id,
                    sync_standbys.max(0)
                ),
            );
        }
    }

    if was_primary {
        if let Some(&first) = others.first() {
            proceed(group, first)?;
        }
    } else if let Some(primary) = group
        .writable_member()
        .filter(|p| group.in_primary_state(Some(*p)))
    {
        let before = group.node(primary)?.goal;
        proceed(group, primary)?;
        // The primary must drop the removed standby from synchronous_standby_names even when
        // its state does not change.
        if group.node(primary)?.goal == before && before != S::ApplySettings {
            let msg = format!(
                "Setting goal state of {} to apply_settings after removing standby {label} from \
                 formation {}.",
                group.label(Some(primary)),
                group.formation.id
            );
            group.assign(primary, S::ApplySettings, msg);
        }
    }
    Ok(true)
}

/// Refuses a settings change while the primary is still applying the previous one, which
/// would race with it.
fn check_no_settings_in_flight(group: &Group, what: &str) -> Result<(), FsmError> {
    if group.member_count() == 1 {
        return Ok(());
    }
    match group.writable_member() {
        Some(primary) if group.converged(Some(primary), S::ApplySettings) => {
            Err(FsmError::not_ready(
                format!(
                    "cannot set {what} when current state for primary {} is \"apply_settings\"",
                    group.label(Some(primary))
                ),
                Some("Retry once the primary applied the previous settings change."),
            ))
        }
        _ => Ok(()),
    }
}

/// Asks the primary to re-read its replication settings after a settings change.
fn request_apply_settings(group: &mut Group, what: &str) {
    if group.member_count() == 1 {
        return;
    }
    let Some(primary) = group.writable_member() else {
        return;
    };
    // A primary still on its way (being promoted, or already applying settings) fetches the
    // settings when it reaches primary anyway.
    if !group.in_primary_state(Some(primary)) {
        return;
    }
    let p_label = group.label(Some(primary));
    group.assign(
        primary,
        S::ApplySettings,
        format!("Setting goal state of {p_label} to apply_settings after updating {what}."),
    );
}

/// Whether `number_sync_standbys` can be met by the quorum standbys of `primary`: 0 always can;
/// N needs N+1 of them so that losing one still lets writes through. Returns the count too.
pub fn number_sync_standbys_valid(group: &Group, primary: NodeId, nss: i32) -> (bool, usize) {
    let quorum_standbys = group
        .other_ids(primary)
        .iter()
        .filter_map(|id| group.get(*id))
        .filter(|n| n.replication_quorum)
        .count();
    let needed = usize::try_from(nss).unwrap_or(0) + 1;
    (nss == 0 || quorum_standbys >= needed, quorum_standbys)
}

/// `set_node_candidate_priority()`.
pub fn set_candidate_priority(
    group: &mut Group,
    node_id: NodeId,
    priority: i32,
) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    if !(0..=MAX_USER_CANDIDATE_PRIORITY).contains(&priority) {
        return Err(FsmError::invalid(format!(
            "invalid value for candidate_priority \"{priority}\": expected an integer value \
             between 0 and {MAX_USER_CANDIDATE_PRIORITY}"
        )));
    }
    if node.node_cluster != "default" && priority != 0 {
        return Err(FsmError::invalid(
            "invalid value for candidate_priority: read-replica nodes in a citus cluster must \
             always have candidate priority set to zero",
        ));
    }
    let what = format!("{} candidate priority to {priority}", node.label());
    check_no_settings_in_flight(group, &what)?;
    if priority == 0 && node.candidate_priority != 0 {
        let others_candidates = group
            .members()
            .filter(|n| n.id != node_id && n.candidate_priority > 0)
            .count();
        if others_candidates < 2 {
            group.notice(format!(
                "setting candidate priority to zero, preventing automated failover: group {} in \
                 formation \"{}\" has no failover candidate",
                node.group_id, group.formation.id
            ));
        }
    }
    group.set_candidate_priority(
        node_id,
        priority,
        format!(
            "Updating candidate priority to {priority} for {}",
            node.label()
        ),
    );
    request_apply_settings(group, &what);
    Ok(true)
}

/// `set_node_replication_quorum()`.
pub fn set_replication_quorum(
    group: &mut Group,
    node_id: NodeId,
    quorum: bool,
) -> Result<bool, FsmError> {
    let node = group.node(node_id)?.clone();
    let what = format!("{} replication quorum to {quorum}", node.label());
    check_no_settings_in_flight(group, &what)?;
    if !quorum {
        let primary = group.writable_member().ok_or_else(|| {
            FsmError::not_ready(
                format!(
                    "Couldn't find the primary node in formation \"{}\", group {}",
                    group.formation.id, node.group_id
                ),
                None,
            )
        })?;
        let nss = group.formation.number_sync_standbys;
        let mut after = group.clone();
        if let Some(n) = after.get_mut(node_id) {
            n.replication_quorum = false;
        }
        let (valid, count) = number_sync_standbys_valid(&after, primary, nss);
        if !valid {
            return Err(FsmError::invalid(format!(
                "can't set replication quorum to false: at least {} standby nodes are required \
                 in formation {} with number_sync_standbys = {nss}, and only {count} would be \
                 participating in the replication quorum",
                nss + 1,
                group.formation.id
            )));
        }
    }
    // A standby joins the quorum only once a primary applied it: the monitor would otherwise
    // count on it to hold commits the lost primary acknowledged without it.
    if quorum && !node.replication_quorum && group.member_count() > 1 {
        let primary_up = group
            .writable_member()
            .and_then(|p| group.get(p))
            .is_some_and(|p| {
                group.health.is_healthy(Some(p)) && group.in_primary_state(Some(p.id))
            });
        if !primary_up {
            return Err(FsmError::not_ready(
                format!(
                    "cannot set {what}: no healthy primary to apply it, and until one does the \
                     node holds no commit the primary acknowledged"
                ),
                Some("Retry once the group has a healthy primary."),
            ));
        }
    }
    group.set_replication_quorum(
        node_id,
        quorum,
        format!(
            "Updating replicationQuorum to {quorum} for {}",
            node.label()
        ),
    );
    request_apply_settings(group, &what);
    Ok(true)
}

/// `set_formation_number_sync_standbys()` for group 0.
pub fn set_number_sync_standbys(group: &mut Group, value: i32) -> Result<bool, FsmError> {
    if value < 0 {
        return Err(FsmError::invalid(format!(
            "invalid value for number_sync_standbys: \"{value}\": a non-negative integer is \
             expected"
        )));
    }
    let formation = group.formation.id.clone();
    let primary = group.writable_member().ok_or_else(|| {
        FsmError::not_ready(
            format!(
                "Couldn't find the primary node in formation \"{formation}\", group {}",
                group.group_id
            ),
            None,
        )
    })?;
    let p = group.node(primary)?.clone();
    if !p.is_converged(S::Primary) && !p.is_converged(S::WaitPrimary) {
        return Err(FsmError::not_ready(
            format!(
                "cannot set number_sync_standbys when current goal state for primary {} is \
                 \"{}\", and current reported state is \"{}\"",
                p.label(),
                p.goal,
                p.reported
            ),
            Some(
                "The primary node must be in state \"primary\" or \"wait_primary\" to apply \
                 changes to its synchronous_standby_names.",
            ),
        ));
    }
    let (valid, count) = number_sync_standbys_valid(group, primary, value);
    if !valid {
        return Err(FsmError::invalid(format!(
            "invalid value for number_sync_standbys: \"{value}\": at least {} standby nodes are \
             required, and only {count} are currently participating in the replication quorum",
            value + 1
        )));
    }
    group.set_number_sync_standbys(
        value,
        format!("Setting number_sync_standbys to {value} for formation {formation}."),
    );
    group.assign(
        primary,
        S::ApplySettings,
        format!(
            "Setting goal state of {} to apply_settings after updating number_sync_standbys to \
             {value} for formation {formation}.",
            p.label()
        ),
    );
    Ok(true)
}

/// `synchronous_standby_names()`: the value the primary must use.
pub fn synchronous_standby_names(group: &Group) -> Result<String, FsmError> {
    let count = group.member_count();
    if count == 0 {
        return Err(FsmError::EmptyGroup {
            formation_id: group.formation.id.clone(),
            group_id: group.group_id,
        });
    }
    if count == 1 {
        return Ok(String::new());
    }
    let Some(primary) = group.writable_member() else {
        return Ok(String::new());
    };
    let standbys: Vec<_> = group
        .other_ids(primary)
        .iter()
        .filter_map(|id| group.get(*id).cloned())
        .collect();
    if count == 2 {
        return Ok(match standbys.first() {
            Some(s) if s.replication_quorum && s.goal == S::Secondary => {
                format!("ANY 1 ({})", crate::protocol::standby_name(s.id))
            }
            _ => String::new(),
        });
    }
    let mut sync: Vec<_> = standbys
        .into_iter()
        .filter(|n| n.replication_quorum)
        .collect();
    if sync.is_empty() || group.converged(Some(primary), S::WaitPrimary) {
        return Ok(String::new());
    }
    sync.sort_by_key(|n| std::cmp::Reverse(n.candidate_priority));
    let names: Vec<String> = sync
        .iter()
        .map(|n| crate::protocol::standby_name(n.id))
        .collect();
    Ok(format!(
        "ANY {} ({})",
        group.formation.number_sync_standbys.max(1),
        names.join(", ")
    ))
}
