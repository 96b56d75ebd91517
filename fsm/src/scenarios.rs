//! Rule-by-rule tests of the monitor's decisions, and whole flows run through the simulator.

use crate::api;
use crate::group::Effect;
use crate::model::{Health, Lsn};
use crate::register::{self, Registration};
use crate::rules::proceed;
use crate::sim::Sim;
use crate::testing::{NOW, formation, goal, group, kill, node};
use crate::vocab;
use crate::{FsmError, Group, ReplicationState as S};

fn goals(g: &Group) -> Vec<S> {
    g.all_nodes().iter().map(|n| n.goal).collect()
}

fn assigned(g: &Group) -> Vec<(i64, S)> {
    g.effects()
        .iter()
        .filter_map(|e| match e {
            Effect::AssignGoal { node_id, goal, .. } => Some((*node_id, *goal)),
            _ => None,
        })
        .collect()
}

fn primary_secondary() -> Group {
    group(vec![node(1, S::Primary), node(2, S::Secondary)])
}

// ---- early checks -----------------------------------------------------------------------------

#[test]
fn converged_dropped_node_is_deleted() {
    let mut g = group(vec![node(1, S::Primary), node(2, S::Dropped)]);
    assert!(proceed(&mut g, 2).expect("decides"));
    assert!(g.get(2).is_none());
    assert!(matches!(
        g.effects(),
        [Effect::DeleteNode { node_id: 2, .. }]
    ));
}

#[test]
fn node_being_dropped_is_left_alone() {
    let mut n = node(2, S::Secondary);
    n.goal = S::Dropped;
    let mut g = group(vec![node(1, S::Primary), n]);
    proceed(&mut g, 2).expect("decides");
    assert!(g.effects().is_empty());
}

#[test]
fn maintenance_is_never_touched_even_when_primary_dies() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    let mut g = group(vec![p, node(2, S::Maintenance)]);
    proceed(&mut g, 2).expect("decides");
    assert!(g.effects().is_empty());
}

#[test]
fn alone_becomes_single_or_report_lsn() {
    let mut g = group(vec![node(1, S::Secondary)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(goal(&g, 1), S::Single);

    let mut n = node(1, S::Secondary);
    n.candidate_priority = 0;
    let mut g = group(vec![n]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(goal(&g, 1), S::ReportLsn);

    // a primary with priority 0 stays a primary
    let mut n = node(1, S::Primary);
    n.candidate_priority = 0;
    let mut g = group(vec![n]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(goal(&g, 1), S::Single);
}

#[test]
fn alone_without_data_waits() {
    for state in [S::WaitStandby, S::JoinSecondary] {
        let mut g = group(vec![node(1, state)]);
        proceed(&mut g, 1).expect("decides");
        assert!(assigned(&g).is_empty(), "{state} must not become single");
    }
}

#[test]
fn no_primary_and_no_election_changes_nothing() {
    let mut g = group(vec![node(1, S::Secondary), node(2, S::Secondary)]);
    proceed(&mut g, 1).expect("decides");
    assert!(matches!(g.effects(), [Effect::Log(m)] if m.contains("No primary")));
}

// ---- the primary's section ---------------------------------------------------------------------

#[test]
fn single_moves_to_wait_primary_when_a_standby_joins() {
    let mut g = group(vec![node(1, S::Single), node(2, S::WaitStandby)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::WaitPrimary)]);
}

#[test]
fn unhealthy_secondary_drops_primary_to_wait_primary() {
    let mut s = node(2, S::Secondary);
    kill(&mut s);
    let mut g = group(vec![node(1, S::Primary), s]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Catchingup), (1, S::WaitPrimary)]);
}

#[test]
fn number_sync_standbys_keeps_primary_blocking_writes() {
    let mut s2 = node(2, S::Secondary);
    let mut s3 = node(3, S::Secondary);
    kill(&mut s2);
    kill(&mut s3);
    let mut g = group(vec![node(1, S::Primary), s2, s3]);
    g.formation.number_sync_standbys = 1;
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Catchingup), (3, S::Catchingup)]);
    assert_eq!(goal(&g, 1), S::Primary);
}

#[test]
fn wait_primary_goes_primary_with_a_quorum_secondary() {
    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::Secondary)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::Primary)]);
}

#[test]
fn apply_settings_returns_to_primary_or_wait_primary() {
    let mut g = group(vec![node(1, S::ApplySettings), node(2, S::Secondary)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::Primary)]);

    let mut g = group(vec![node(1, S::ApplySettings), node(2, S::Catchingup)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::WaitPrimary)]);
}

#[test]
fn async_standbys_only_give_primary_when_one_is_secondary() {
    let mut s = node(2, S::Secondary);
    s.replication_quorum = false;
    let mut g = group(vec![node(1, S::WaitPrimary), s.clone()]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::Primary)]);

    s.goal = S::Catchingup;
    s.reported = S::Catchingup;
    let mut g = group(vec![node(1, S::Primary), s]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::WaitPrimary)]);
}

#[test]
fn join_primary_is_turned_into_primary() {
    let mut g = group(vec![node(1, S::JoinPrimary), node(2, S::Secondary)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::Primary)]);
}

#[test]
fn stable_primary_and_secondary_change_nothing() {
    let mut g = primary_secondary();
    proceed(&mut g, 1).expect("decides");
    proceed(&mut g, 2).expect("decides");
    assert!(g.effects().is_empty());
}

// ---- standby rules -----------------------------------------------------------------------------

#[test]
fn wait_standby_starts_catching_up_when_primary_is_ready() {
    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::WaitStandby)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Catchingup)]);
}

#[test]
fn quorum_standby_joining_a_primary_makes_it_apply_settings() {
    let mut g = group(vec![
        node(1, S::Primary),
        node(2, S::Secondary),
        node(3, S::WaitStandby),
    ]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::Catchingup), (1, S::ApplySettings)]);

    let mut s = node(3, S::WaitStandby);
    s.replication_quorum = false;
    let mut g = group(vec![node(1, S::Primary), node(2, S::Secondary), s]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::Catchingup)]);
}

#[test]
fn catchingup_becomes_secondary_only_when_close_and_on_the_same_timeline() {
    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::Catchingup)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Secondary)]);

    let mut s = node(2, S::Catchingup);
    s.reported_tli = 2;
    let mut g = group(vec![node(1, S::WaitPrimary), s]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "other timeline");

    let mut p = node(1, S::WaitPrimary);
    p.reported_lsn = Lsn(0x100_0000 + 16 * 1024 * 1024 + 1);
    let mut g = group(vec![p, node(2, S::Catchingup)]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "too far behind");

    let mut s = node(2, S::Catchingup);
    s.pg_is_running = false;
    let mut g = group(vec![node(1, S::WaitPrimary), s]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "not healthy");
}

#[test]
fn secondary_is_promoted_when_primary_dies() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    let mut g = group(vec![p, node(2, S::Secondary)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::PreparePromotion), (1, S::Draining)]);
}

#[test]
fn no_promotion_of_priority_zero_lagging_or_with_healthy_primary() {
    let dead_primary = || {
        let mut p = node(1, S::Primary);
        kill(&mut p);
        p
    };
    let mut s = node(2, S::Secondary);
    s.candidate_priority = 0;
    let mut g = group(vec![dead_primary(), s]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "priority 0");

    let mut p = dead_primary();
    p.reported_lsn = Lsn(0x300_0000);
    let mut g = group(vec![p, node(2, S::Secondary)]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "too far behind");

    let mut g = primary_secondary();
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "primary healthy");

    // a primary that is silent but whose probe still succeeds is not unhealthy
    let mut p = node(1, S::Primary);
    p.report_time = NOW.plus_ms(-60_000);
    let mut g = group(vec![p, node(2, S::Secondary)]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "probe still good");
}

#[test]
fn wait_maintenance_proceeds_once_primary_dropped_sync_rep() {
    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::WaitMaintenance)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Maintenance)]);

    let mut g = group(vec![node(1, S::Primary), node(2, S::WaitMaintenance)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Maintenance)]);
}

#[test]
fn promotion_path_prepare_stop_wait() {
    // primary going to maintenance
    let mut g = group(vec![
        node(1, S::PrepareMaintenance),
        node(2, S::PreparePromotion),
    ]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::StopReplication)]);
    let mut g = group(vec![
        node(1, S::PrepareMaintenance),
        node(2, S::StopReplication),
    ]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::WaitPrimary), (1, S::Maintenance)]);

    // failover: the old primary gets demote_timeout
    let mut p = node(1, S::Primary);
    p.goal = S::Draining;
    let mut g = group(vec![p, node(2, S::PreparePromotion)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(
        assigned(&g),
        [(2, S::StopReplication), (1, S::DemoteTimeout)]
    );

    // no primary left
    let mut g = group(vec![node(2, S::PreparePromotion), node(3, S::ReportLsn)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::WaitPrimary)]);
}

#[test]
fn promotion_completes_when_old_primary_confirmed_or_timed_out() {
    let mut g = group(vec![node(1, S::DemoteTimeout), node(2, S::StopReplication)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::WaitPrimary), (1, S::Demoted)]);

    // assigned demote_timeout but silent: wait for primary_demote_timeout
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::DemoteTimeout;
    p.state_change_time = NOW.plus_ms(-29_000);
    let mut g = group(vec![p.clone(), node(2, S::StopReplication)]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty(), "drain not expired");

    p.state_change_time = NOW.plus_ms(-30_000);
    let mut g = group(vec![p, node(2, S::StopReplication)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::WaitPrimary), (1, S::Demoted)]);
}

#[test]
fn demoted_old_primary_rejoins_as_standby() {
    let mut old = node(1, S::Demoted);
    old.pg_is_running = false;
    let mut g = group(vec![old, node(2, S::WaitPrimary)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::Catchingup)]);
}

#[test]
fn join_secondary_follows_new_primary() {
    let mut g = group(vec![
        node(1, S::WaitPrimary),
        node(2, S::JoinSecondary),
        node(3, S::Secondary),
    ]);
    proceed(&mut g, 2).expect("decides");
    // node 2 follows; the primary has a quorum secondary (3) so goes primary
    assert_eq!(assigned(&g), [(2, S::Secondary), (1, S::Primary)]);

    let mut g = group(vec![node(1, S::Primary), node(2, S::JoinSecondary)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Secondary)]);
}

#[test]
fn report_lsn_follows_the_new_primary() {
    let mut g = group(vec![
        node(1, S::WaitPrimary),
        node(2, S::ReportLsn),
        node(3, S::Secondary),
    ]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::Secondary)]);

    let mut g = group(vec![node(1, S::FastForward), node(2, S::ReportLsn)]);
    proceed(&mut g, 1).expect("decides");
    assert_eq!(assigned(&g), [(1, S::PreparePromotion)]);
}

// ---- elections ----------------------------------------------------------------------------------

#[test]
fn election_asks_every_standby_for_its_lsn_first() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    let mut g = group(vec![p, node(2, S::Secondary), node(3, S::Secondary)]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(
        assigned(&g),
        [(1, S::Draining), (2, S::ReportLsn), (3, S::ReportLsn)]
    );
}

#[test]
fn an_asynchronous_standby_is_elected_only_where_no_acknowledged_commit_can_be_lost() {
    // Two nodes: the primary's synchronous_standby_names is empty when its only standby is
    // asynchronous, so it acknowledged commits alone: no automatic failover.
    let mut p = node(1, S::Primary);
    kill(&mut p);
    let mut s = node(2, S::Secondary);
    s.replication_quorum = false;
    let mut g = group(vec![p, s]);
    proceed(&mut g, 2).expect("decides");
    assert!(
        assigned(&g).is_empty(),
        "two nodes: no failover to an async standby"
    );

    // An election where a quorum member reported: the acknowledged commits are at or before
    // the most advanced position, so priority decides, as in 2.0.
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    s2.candidate_priority = 50;
    s3.candidate_priority = 90;
    s3.replication_quorum = false;
    let mut g = group(vec![p.clone(), s2.clone(), s3.clone()]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(3, S::PreparePromotion)]);

    // ... and when it is behind, it first fetches the WAL of the most advanced quorum member
    s2.reported_lsn = Lsn(s3.reported_lsn.0 + 4096);
    let mut g = group(vec![p.clone(), s2.clone(), s3.clone()]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(3, S::FastForward)]);

    // The only candidate left is asynchronous: elected, once the quorum member is known to
    // be behind it (it reported, then went away).
    let mut gone = s2.clone();
    gone.reported_lsn = s3.reported_lsn;
    gone.candidate_priority = 100;
    kill(&mut gone);
    let mut g = group(vec![p.clone(), gone, s3.clone()]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::PreparePromotion)]);

    // No standby in the quorum and the primary lost: it acknowledged commits alone, and no
    // known position holds them. Nobody is promoted ...
    let mut a2 = s2.clone();
    a2.replication_quorum = false;
    a2.reported_lsn = s3.reported_lsn;
    let mut g = group(vec![p.clone(), a2.clone(), s3.clone()]);
    proceed(&mut g, 3).expect("decides");
    assert!(assigned(&g).is_empty(), "{:?}", g.effects());
    assert!(
        g.effects()
            .iter()
            .any(|e| matches!(e, Effect::Log(m) if m.contains("not in the replication quorum")))
    );

    // ... until the old primary is back and reported where its WAL ends.
    let mut back = node(1, S::ReportLsn);
    back.replication_quorum = false;
    let mut g = group(vec![back, a2, s3.clone()]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::PreparePromotion)]);

    // Named by perform_promotion, it is promoted.
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    s3.replication_quorum = false;
    s3.candidate_priority = 50 + crate::group::CANDIDATE_PRIORITY_INCREMENT;
    s2.candidate_priority = 50;
    let mut g = group(vec![p, s2, s3]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(goal(&g, 3), S::PreparePromotion);
}

#[test]
fn election_picks_highest_priority_then_most_advanced() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    let mut s4 = node(4, S::ReportLsn);
    s2.candidate_priority = 50;
    s3.candidate_priority = 90;
    s4.candidate_priority = 90;
    s3.reported_lsn = Lsn(0x100_0000 + 10);
    s4.reported_lsn = Lsn(0x100_0000 + 20);
    let mut g = group(vec![p, s2, s3, s4]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(4, S::PreparePromotion)]);
}

#[test]
fn a_standby_ahead_of_the_dead_primarys_last_report_is_not_too_far_behind() {
    // the primary wrote 32 MB after its last heartbeat, then died
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    p.reported_lsn = Lsn(0x500_0000);
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    s2.reported_lsn = Lsn(0x700_0000);
    s3.reported_lsn = Lsn(0x700_0000);
    let mut g = group(vec![p, s2, s3]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::PreparePromotion)]);

    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.reported_lsn = Lsn(0x500_0000);
    let mut s = node(2, S::Secondary);
    s.reported_lsn = Lsn(0x700_0000);
    let mut g = group(vec![p, s]);
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(2, S::PreparePromotion), (1, S::Draining)]);
}

#[test]
fn lagging_winner_fast_forwards_first() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    s2.candidate_priority = 100;
    s3.candidate_priority = 10;
    s3.reported_lsn = Lsn(0x100_0000 + 4096);
    let mut g = group(vec![p, s2, s3]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(2, S::FastForward)]);
}

#[test]
fn election_waits_for_missing_quorum_nodes() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s3 = node(3, S::Secondary);
    s3.goal = S::ReportLsn; // asked, not yet reported
    let mut g = group(vec![p, node(2, S::ReportLsn), s3]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty());
    assert!(
        g.effects()
            .iter()
            .any(|e| matches!(e, Effect::Log(m) if m.contains("waiting for 1 nodes")))
    );
}

#[test]
fn election_needs_number_sync_standbys_plus_one_quorum_candidates() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s3 = node(3, S::ReportLsn);
    s3.replication_quorum = false;
    let mut g = group(vec![p, node(2, S::ReportLsn), s3]);
    g.formation.number_sync_standbys = 1;
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty());
}

#[test]
fn priority_zero_node_is_never_elected() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    s2.candidate_priority = 0;
    s2.reported_lsn = Lsn(0x200_0000);
    let mut s3 = node(3, S::ReportLsn);
    s3.reported_lsn = Lsn(0x100_0000);
    let mut g = group(vec![p, s2, s3]);
    proceed(&mut g, 2).expect("decides");
    // node 3 wins but lacks WAL node 2 has: it fast-forwards from node 2
    assert_eq!(assigned(&g), [(3, S::FastForward)]);
}

/// The election of item 1 of issue 11: the candidate reports a stale timeline (1) while the
/// others hold the same LSN on timeline 2. It is told to fetch, and never looks caught up.
fn stranded_candidate() -> crate::group::Group {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::Draining;
    let mut s2 = node(2, S::ReportLsn);
    let mut s3 = node(3, S::ReportLsn);
    let mut s4 = node(4, S::ReportLsn);
    for s in [&mut s2, &mut s3, &mut s4] {
        s.reported_tli = 2;
        s.reported_lsn = Lsn(0x502_8780);
    }
    s3.reported_tli = 1;
    s3.candidate_priority = 50 + crate::group::CANDIDATE_PRIORITY_INCREMENT;
    group(vec![p, s2, s3, s4])
}

#[test]
fn a_candidate_that_cannot_catch_up_is_given_up_and_the_election_runs_again() {
    let mut g = stranded_candidate();
    proceed(&mut g, 2).expect("decides");
    assert_eq!(assigned(&g), [(3, S::FastForward)]);
    // it says it fetched, but still looks behind: within the timeout, it is waited for
    let mut g = stranded_candidate();
    let c = g.get_mut(3).expect("candidate");
    c.goal = S::FastForward;
    c.reported = S::FastForward;
    c.state_change_time = NOW.plus_ms(-5_000);
    proceed(&mut g, 3).expect("decides");
    assert!(assigned(&g).is_empty());
    // past it, it goes back to report_lsn one priority step down, and the next report elects
    // a node that needs no fetch
    let later = NOW.plus_ms(25_000);
    g.health.clock.now = later;
    for id in [2, 3, 4] {
        if let Some(n) = g.get_mut(id) {
            n.report_time = later;
        }
    }
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::ReportLsn)]);
    assert_eq!(g.get(3).map(|n| n.candidate_priority), Some(50));
    let mut g2 = g.clone();
    g2.take_effects();
    let c = g2.get_mut(3).expect("candidate");
    c.reported = S::ReportLsn;
    proceed(&mut g2, 2).expect("decides");
    let chosen = assigned(&g2);
    assert_eq!(chosen.len(), 1, "{chosen:?}");
    assert_eq!(chosen[0].1, S::PreparePromotion, "{chosen:?}");
}

#[test]
fn a_candidate_whose_keeper_went_silent_is_given_up() {
    let mut g = stranded_candidate();
    for id in [2, 3, 4] {
        if let Some(n) = g.get_mut(id) {
            n.reported_tli = 2;
        }
    }
    let c = g.get_mut(3).expect("candidate");
    c.goal = S::PreparePromotion;
    c.reported = S::ReportLsn;
    // its keeper stopped reporting; its Postgres (a stopped standby) answers nothing either
    c.report_time = NOW.plus_ms(-60_000);
    c.health = crate::model::Health::Bad;
    proceed(&mut g, 2).expect("decides");
    let effects = assigned(&g);
    assert!(effects.contains(&(3, S::ReportLsn)), "{effects:?}");
    // and the election goes on without waiting for it: its LSN is known
    assert!(
        effects
            .iter()
            .any(|(id, s)| *id != 3 && *s == S::PreparePromotion),
        "{effects:?}"
    );
}

#[test]
fn a_candidate_told_to_promote_is_never_given_up() {
    let mut g = stranded_candidate();
    let c = g.get_mut(3).expect("candidate");
    c.goal = S::StopReplication;
    c.reported = S::PreparePromotion;
    c.report_time = NOW.plus_ms(-60_000);
    c.health = crate::model::Health::Bad;
    proceed(&mut g, 2).expect("decides");
    assert!(
        !assigned(&g).iter().any(|(id, _)| *id == 3),
        "{:?}",
        assigned(&g)
    );
    assert!(
        !assigned(&g)
            .iter()
            .any(|(_, s)| matches!(s, S::PreparePromotion | S::FastForward)),
        "a second candidate: {:?}",
        assigned(&g)
    );
}

#[test]
fn losers_join_the_new_primary_once_it_streams() {
    let mut p = node(1, S::Primary);
    kill(&mut p);
    p.goal = S::DemoteTimeout;
    let mut g = group(vec![p, node(2, S::StopReplication), node(3, S::ReportLsn)]);
    proceed(&mut g, 3).expect("decides");
    assert_eq!(assigned(&g), [(3, S::JoinSecondary)]);
}

// ---- whole flows ------------------------------------------------------------------------------

fn bootstrapped(n: i64) -> Sim {
    let mut nodes = vec![node(1, S::Single)];
    for id in 2..=n {
        let mut standby = node(id, S::WaitStandby);
        standby.reported = S::Init;
        nodes.push(standby);
    }
    let mut sim = Sim::new(nodes);
    sim.settle(30);
    sim
}

#[test]
fn flow_bootstrap_two_nodes() {
    let sim = bootstrapped(2);
    assert_eq!(
        sim.states(),
        [(S::Primary, S::Primary), (S::Secondary, S::Secondary)]
    );
    assert!(sim.errors().is_empty());
}

#[test]
fn flow_bootstrap_three_nodes() {
    let sim = bootstrapped(3);
    assert_eq!(
        sim.states(),
        [
            (S::Primary, S::Primary),
            (S::Secondary, S::Secondary),
            (S::Secondary, S::Secondary)
        ]
    );
}

#[test]
fn flow_host_loss_two_nodes() {
    let mut sim = bootstrapped(2);
    sim.dead.insert(1);
    let killed_at = sim.group.health.clock.now;
    // unhealthy after 20 s of silence, then 30 s of demote timeout
    assert!(sim.run_until(120, |s| s.goal(2) == S::WaitPrimary));
    let promoted_at = sim.group.health.clock.now;
    assert_eq!(sim.goal(1), S::Demoted);
    let elapsed_s = (promoted_at.0 - killed_at.0) / 1_000_000;
    assert!(
        (50..=60).contains(&elapsed_s),
        "2.0 timing: about 50 s, got {elapsed_s}"
    );
    // the old primary comes back and rejoins
    sim.dead.remove(&1);
    sim.settle(30);
    assert_eq!(
        sim.states(),
        [(S::Secondary, S::Secondary), (S::Primary, S::Primary)]
    );
}

#[test]
fn flow_host_loss_three_nodes_elects_by_priority() {
    let mut sim = bootstrapped(3);
    if let Some(n) = sim.group.get_mut(3) {
        n.candidate_priority = 90;
    }
    sim.dead.insert(1);
    assert!(sim.run_until(150, |s| s.goal(3) == S::Primary
        && s.goal(2) == S::Secondary));
    sim.settle(20);
    assert_eq!(sim.goal(3), S::Primary);
    assert_eq!(sim.goal(2), S::Secondary);
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
}

#[test]
fn flow_switchover_both_ways() {
    let mut sim = bootstrapped(2);
    api::perform_failover(&mut sim.group).expect("stable group fails over");
    sim.settle(60);
    assert_eq!(
        sim.states(),
        [(S::Secondary, S::Secondary), (S::Primary, S::Primary)]
    );
    api::perform_failover(&mut sim.group).expect("and back");
    sim.settle(60);
    assert_eq!(
        sim.states(),
        [(S::Primary, S::Primary), (S::Secondary, S::Secondary)]
    );
}

#[test]
fn flow_switchover_three_nodes_picks_another_node() {
    let mut sim = bootstrapped(3);
    api::perform_failover(&mut sim.group).expect("fails over");
    sim.settle(80);
    assert_ne!(sim.goal(1), S::Primary);
    let primaries = sim
        .group
        .all_nodes()
        .iter()
        .filter(|n| n.goal == S::Primary)
        .count();
    assert_eq!(primaries, 1);
    // the old primary got its priority back
    assert_eq!(sim.group.get(1).map(|n| n.candidate_priority), Some(50));
}

#[test]
fn flow_promotion_of_a_named_node() {
    let mut sim = bootstrapped(3);
    api::perform_promotion(&mut sim.group, 3).expect("promotes");
    sim.settle(80);
    assert_eq!(sim.goal(3), S::Primary);
    assert_eq!(sim.group.get(3).map(|n| n.candidate_priority), Some(50));
    assert_eq!(
        api::perform_promotion(&mut sim.group, 3),
        Ok(false),
        "already primary"
    );
}

#[test]
fn flow_secondary_maintenance_and_back() {
    let mut sim = bootstrapped(2);
    assert_eq!(api::start_maintenance(&mut sim.group, 2), Ok(true));
    assert_eq!(goal(&sim.group, 1), S::WaitPrimary);
    assert_eq!(goal(&sim.group, 2), S::WaitMaintenance);
    sim.settle(20);
    assert_eq!(
        sim.states(),
        [
            (S::WaitPrimary, S::WaitPrimary),
            (S::Maintenance, S::Maintenance)
        ]
    );
    assert_eq!(api::stop_maintenance(&mut sim.group, 2), Ok(true));
    sim.settle(20);
    assert_eq!(
        sim.states(),
        [(S::Primary, S::Primary), (S::Secondary, S::Secondary)]
    );
}

#[test]
fn flow_primary_maintenance_fails_over() {
    let mut sim = bootstrapped(2);
    assert_eq!(api::start_maintenance(&mut sim.group, 1), Ok(true));
    sim.settle(30);
    assert_eq!(
        sim.states(),
        [
            (S::Maintenance, S::Maintenance),
            (S::WaitPrimary, S::WaitPrimary)
        ]
    );
    assert_eq!(api::stop_maintenance(&mut sim.group, 1), Ok(true));
    sim.settle(30);
    assert_eq!(
        sim.states(),
        [(S::Secondary, S::Secondary), (S::Primary, S::Primary)]
    );
}

#[test]
fn flow_remove_standby_then_primary_is_alone() {
    let mut sim = bootstrapped(2);
    assert_eq!(api::remove_node(&mut sim.group, 2, false), Ok(true));
    assert_eq!(goal(&sim.group, 2), S::Dropped);
    sim.settle(20);
    assert!(
        sim.group.get(2).is_none(),
        "row deleted once dropped reported"
    );
    assert_eq!(sim.states(), [(S::Single, S::Single)]);
}

#[test]
fn flow_remove_primary_of_three_elects_a_new_one() {
    let mut sim = bootstrapped(3);
    assert_eq!(api::remove_node(&mut sim.group, 1, false), Ok(true));
    sim.settle(60);
    assert!(sim.group.get(1).is_none());
    let goals: Vec<S> = goals(&sim.group);
    assert_eq!(goals.iter().filter(|g| **g == S::Primary).count(), 1);
    assert_eq!(goals.iter().filter(|g| **g == S::Secondary).count(), 1);
}

#[test]
fn flow_standby_loss_and_return() {
    let mut sim = bootstrapped(2);
    sim.dead.insert(2);
    assert!(sim.run_until(60, |s| s.goal(1) == S::WaitPrimary));
    assert_eq!(sim.goal(2), S::Catchingup);
    sim.dead.remove(&2);
    sim.settle(20);
    assert_eq!(
        sim.states(),
        [(S::Primary, S::Primary), (S::Secondary, S::Secondary)]
    );
}

// ---- API preconditions ------------------------------------------------------------------------

#[test]
fn failover_needs_two_stable_nodes() {
    let mut g = group(vec![node(1, S::Single)]);
    let err = api::perform_failover(&mut g).unwrap_err();
    assert!(err.to_string().contains("currently has 1 node"));

    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::Catchingup)]);
    assert!(api::perform_failover(&mut g).is_err());
    assert!(g.effects().is_empty());

    let mut s = node(2, S::Secondary);
    s.reported = S::Catchingup;
    let mut g = group(vec![node(1, S::Primary), s]);
    let err = api::perform_failover(&mut g).unwrap_err();
    assert!(err.to_string().contains("not in a stable state"));

    let mut s = node(2, S::Secondary);
    s.candidate_priority = 0;
    let mut g = group(vec![node(1, S::Primary), s]);
    assert!(api::perform_failover(&mut g).is_err());
}

#[test]
fn failover_of_three_needs_a_healthy_standby() {
    let mut s2 = node(2, S::Secondary);
    let mut s3 = node(3, S::Secondary);
    kill(&mut s2);
    s2.pg_is_running = false;
    kill(&mut s3);
    s3.pg_is_running = false;
    let mut g = group(vec![node(1, S::Primary), s2, s3]);
    let err = api::perform_failover(&mut g).unwrap_err();
    assert!(err.to_string().contains("no healthy standby"));
    assert!(g.effects().is_empty());
}

#[test]
fn failover_with_every_priority_zero_waits_for_an_operator() {
    // As 2.0: accepted; the standbys wait in report_lsn until a priority is raised.
    let mut sim = bootstrapped(3);
    for id in [2, 3] {
        api::set_candidate_priority(&mut sim.group, id, 0).expect("priority 0");
    }
    sim.settle(40);
    api::perform_failover(&mut sim.group).expect("accepted with every priority at 0");
    assert!(
        sim.group
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::Notice(m) if m.contains("candidate priority 0"))),
        "the caller is told why nothing will be promoted"
    );
    sim.settle(80);
    assert_eq!(sim.goal(2), S::ReportLsn);
    assert_eq!(sim.goal(3), S::ReportLsn);
    assert!(
        sim.group
            .all_nodes()
            .iter()
            .all(|n| !n.goal.can_take_writes()),
        "{:?}",
        sim.states()
    );
    api::set_candidate_priority(&mut sim.group, 3, 100).expect("raised");
    assert!(sim.run_until(150, |s| s.goal(3) == S::Primary));
    sim.settle(60);
    assert_eq!(sim.goal(3), S::Primary);
    assert_eq!(sim.goal(2), S::Secondary);
    assert_eq!(sim.goal(1), S::Secondary);
    // the old primary's lowered priority is restored
    assert_eq!(sim.group.get(1).map(|n| n.candidate_priority), Some(50));
}

#[test]
fn a_standby_joins_the_quorum_only_while_a_primary_can_apply_it() {
    // Primary lost: the standby would count as holding commits the primary acknowledged
    // without it.
    let mut p = node(1, S::Primary);
    kill(&mut p);
    let mut s2 = node(2, S::Secondary);
    s2.replication_quorum = false;
    let mut g = group(vec![p, s2, node(3, S::Secondary)]);
    let err = api::set_replication_quorum(&mut g, 2, true).unwrap_err();
    assert!(err.to_string().contains("no healthy primary"), "{err}");
    assert!(g.effects().is_empty());

    let mut s2 = node(2, S::Secondary);
    s2.replication_quorum = false;
    let mut g = group(vec![node(1, S::Primary), s2, node(3, S::Secondary)]);
    assert_eq!(api::set_replication_quorum(&mut g, 2, true), Ok(true));
    assert_eq!(goal(&g, 1), S::ApplySettings);
}

#[test]
fn promotion_refuses_a_catching_up_node() {
    let mut g = group(vec![node(1, S::Primary), node(2, S::Catchingup)]);
    let err = api::perform_promotion(&mut g, 2).unwrap_err();
    assert!(matches!(err, FsmError::NotInPrerequisiteState { .. }));
}

#[test]
fn maintenance_preconditions() {
    let mut g = group(vec![node(1, S::WaitPrimary), node(2, S::WaitStandby)]);
    assert!(api::start_maintenance(&mut g, 2).is_err());

    // primary without candidate
    let mut g = group(vec![node(1, S::Primary), node(2, S::Catchingup)]);
    assert!(api::start_maintenance(&mut g, 1).is_err());

    // already in maintenance: fine
    let mut g = group(vec![node(1, S::Primary), node(2, S::Maintenance)]);
    assert_eq!(api::start_maintenance(&mut g, 2), Ok(true));

    // stop when not in maintenance
    let mut g = primary_secondary();
    assert!(api::stop_maintenance(&mut g, 2).is_err());
}

#[test]
fn maintenance_warns_when_it_will_block_writes() {
    let mut g = group(vec![
        node(1, S::Primary),
        node(2, S::Secondary),
        node(3, S::Secondary),
    ]);
    g.formation.number_sync_standbys = 2;
    assert_eq!(api::start_maintenance(&mut g, 2), Ok(true));
    assert!(g.effects().iter().any(|e| matches!(e, Effect::Warning(_))));
    assert_eq!(goal(&g, 2), S::Maintenance);
}

#[test]
fn settings_validation() {
    let mut g = primary_secondary();
    assert!(api::set_candidate_priority(&mut g, 2, 101).is_err());
    assert!(api::set_candidate_priority(&mut g, 2, -1).is_err());
    assert_eq!(api::set_candidate_priority(&mut g, 2, 0), Ok(true));
    assert!(g.effects().iter().any(|e| matches!(e, Effect::Notice(_))));
    assert_eq!(goal(&g, 1), S::ApplySettings);

    // the primary still applies the previous change: refuse
    let mut p = node(1, S::ApplySettings);
    p.goal = S::ApplySettings;
    let mut g = group(vec![p, node(2, S::Secondary)]);
    assert!(api::set_candidate_priority(&mut g, 2, 10).is_err());
    assert!(g.effects().is_empty());

    let mut g = group(vec![
        node(1, S::Primary),
        node(2, S::Secondary),
        node(3, S::Secondary),
    ]);
    g.formation.number_sync_standbys = 1;
    let err = api::set_replication_quorum(&mut g, 2, false).unwrap_err();
    assert!(err.to_string().contains("at least 2 standby nodes"));

    let mut g = primary_secondary();
    assert!(api::set_number_sync_standbys(&mut g, -1).is_err());
    assert!(
        api::set_number_sync_standbys(&mut g, 1).is_err(),
        "needs 2 standbys"
    );
    assert_eq!(api::set_number_sync_standbys(&mut g, 0), Ok(true));
    assert_eq!(goal(&g, 1), S::ApplySettings);
}

#[test]
fn synchronous_standby_names_follow_2_0() {
    let g = group(vec![node(1, S::Single)]);
    assert_eq!(api::synchronous_standby_names(&g), Ok(String::new()));

    let g = primary_secondary();
    assert_eq!(
        api::synchronous_standby_names(&g).as_deref(),
        Ok("ANY 1 (pgautofailover_standby_2)")
    );

    let g = group(vec![node(1, S::WaitPrimary), node(2, S::Catchingup)]);
    assert_eq!(api::synchronous_standby_names(&g), Ok(String::new()));

    let mut s3 = node(3, S::Secondary);
    s3.candidate_priority = 90;
    let mut s4 = node(4, S::Secondary);
    s4.replication_quorum = false;
    let mut g = group(vec![node(1, S::Primary), node(2, S::Secondary), s3, s4]);
    g.formation.number_sync_standbys = 1;
    assert_eq!(
        api::synchronous_standby_names(&g).as_deref(),
        Ok("ANY 1 (pgautofailover_standby_3, pgautofailover_standby_2)")
    );

    let g = group(vec![]);
    assert!(matches!(
        api::synchronous_standby_names(&g),
        Err(FsmError::EmptyGroup { .. })
    ));
}

// ---- registration -----------------------------------------------------------------------------

fn registration(priority: i32) -> Registration {
    Registration {
        host: "127.0.0.1".to_string(),
        port: 6000,
        dbname: "postgres".to_string(),
        name: String::new(),
        desired_node_id: -1,
        node_cluster: "default".to_string(),
        desired_group_id: -1,
        initial_state: S::Init,
        node_kind: "standalone".to_string(),
        candidate_priority: priority,
    }
}

#[test]
fn first_node_is_single_then_standbys() {
    let empty = group(vec![]);
    let plan = register::plan(&formation(), 0, &empty, &registration(50)).expect("plans");
    assert_eq!(plan.goal, S::Single);
    assert_eq!(plan.group_id, 0);

    let g = group(vec![node(1, S::Single)]);
    let plan = register::plan(&formation(), 1, &g, &registration(50)).expect("plans");
    assert_eq!(plan.goal, S::WaitStandby);
}

#[test]
fn registration_refuses_values_outside_the_vocabulary() {
    let empty = group(vec![]);
    let f = formation();
    let refused = |change: &dyn Fn(&mut Registration)| {
        let mut r = registration(50);
        change(&mut r);
        match register::plan(&f, 0, &empty, &r) {
            Err(e @ FsmError::InvalidValue { .. }) => e.to_string(),
            other => panic!("{r:?} gave {other:?}"),
        }
    };
    assert!(refused(&|r| r.host = "0.0.0.0/0".into()).contains("node_host"));
    assert!(
        refused(&|r| r.host = "db1\nhost all all 0.0.0.0/0 trust".into()).contains("node_host")
    );
    assert!(refused(&|r| r.host = "all".into()).contains("keyword"));
    assert!(refused(&|r| r.host = String::new()).contains("empty"));
    assert!(refused(&|r| r.port = 70000).contains("node_port"));
    assert!(refused(&|r| r.name = "node\n1".into()).contains("node_name"));
    assert!(refused(&|r| r.name = "x".repeat(256)).contains("node_name"));
    assert!(refused(&|r| r.dbname = "db\r".into()).contains("dbname"));
    assert!(refused(&|r| r.node_cluster = String::new()).contains("node_cluster"));
    assert!(refused(&|r| r.desired_node_id = i64::MAX).contains("desired_node_id"));
    assert!(refused(&|r| r.desired_node_id = 0).contains("desired_node_id"));
    assert!(refused(&|r| r.desired_group_id = -2).contains("desired_group_id"));
    // and the message shows the value escaped, on one line
    let message = refused(&|r| r.host = "a\nb".into());
    assert!(message.contains("\"a\\nb\""), "{message}");
    assert!(!message.contains('\n'));

    let mut r = registration(50);
    r.name = "node a/1 \"quoted\"".to_string();
    r.desired_node_id = vocab::MAX_NODE_ID;
    r.host = "db-1.example.com".to_string();
    assert!(register::plan(&f, 0, &empty, &r).is_ok());
    assert!(register::check_metadata("n", "::1", 5432).is_ok());
    assert!(register::check_metadata("", "::1", 5432).is_err());
    assert!(register::check_metadata("n", "10.0.0.0/8", 5432).is_err());
    assert!(register::check_new_formation("f", "pgsql", "db", 0).is_ok());
    assert!(register::check_new_formation("f\n", "pgsql", "db", 0).is_err());
    assert!(register::check_new_formation("f", "other", "db", 0).is_err());
    assert!(register::check_new_formation("f", "pgsql", "", 0).is_err());
    assert!(register::check_new_formation("f", "pgsql", "db", -1).is_err());
}

#[test]
fn registration_errors() {
    let empty = group(vec![]);
    let f = formation();
    let mut r = registration(50);
    r.port = 0;
    assert!(register::plan(&f, 0, &empty, &r).is_err());
    let r = registration(101);
    assert!(register::plan(&f, 0, &empty, &r).is_err());
    let r = registration(0);
    assert!(
        register::plan(&f, 0, &empty, &r).is_err(),
        "first node priority 0"
    );
    let mut r = registration(50);
    r.node_kind = "worker".to_string();
    assert!(matches!(
        register::plan(&f, 0, &empty, &r),
        Err(FsmError::NotSupported(_))
    ));
    let mut r = registration(50);
    r.desired_group_id = 2;
    assert!(register::plan(&f, 0, &empty, &r).is_err());

    // existing primary, but asked to be single
    let g = group(vec![node(1, S::Single)]);
    let mut r = registration(50);
    r.initial_state = S::Single;
    let err = register::plan(&f, 1, &g, &r).unwrap_err();
    assert!(err.to_string().contains("should be in state wait_standby"));

    // dbname mismatch once the formation has nodes
    let mut r = registration(50);
    r.dbname = "other".to_string();
    assert!(register::plan(&f, 1, &g, &r).is_err());
    let plan = register::plan(&f, 0, &group(vec![]), &r).expect("empty formation adopts");
    assert_eq!(plan.set_dbname.as_deref(), Some("other"));

    // secondaries disabled
    let mut f2 = formation();
    f2.opt_secondary = false;
    assert!(register::plan(&f2, 1, &g, &registration(50)).is_err());

    // no primary: retry later
    let g = group(vec![node(1, S::Secondary)]);
    assert!(matches!(
        register::plan(&f, 1, &g, &registration(50)),
        Err(FsmError::RetryLater { .. })
    ));
}

#[test]
fn second_quorum_standby_sets_number_sync_standbys() {
    let mut s3 = node(3, S::WaitStandby);
    s3.reported = S::Init;
    let mut g = group(vec![node(1, S::Primary), node(2, S::Secondary), s3]);
    assert!(register::adjust_number_sync_standbys(&mut g, 3));
    assert_eq!(g.formation.number_sync_standbys, 1);

    let mut s2 = node(2, S::WaitStandby);
    s2.reported = S::Init;
    let mut g = group(vec![node(1, S::WaitPrimary), s2]);
    assert!(!register::adjust_number_sync_standbys(&mut g, 2));
}

#[test]
fn health_probe_verdict_is_used_by_the_rules() {
    // a primary whose keeper is silent but probe fails only counts after the timeout
    let mut p = node(1, S::Primary);
    p.health = Health::Bad;
    p.report_time = NOW.plus_ms(-10_000);
    let mut g = group(vec![p, node(2, S::Secondary)]);
    proceed(&mut g, 2).expect("decides");
    assert!(assigned(&g).is_empty());
}

#[test]
fn a_taken_endpoint_name_or_id_refuses_the_registration_with_23505() {
    use crate::register::{Taken, check_unique};
    let mut request = registration(100);
    request.name = "east".to_string();
    request.desired_node_id = 7;
    assert_eq!(check_unique(&request, "default", &Taken::default()), Ok(()));

    let endpoint = Taken {
        endpoint: Some(("node 1 \"node_1\"".to_string(), "other".to_string())),
        ..Taken::default()
    };
    let err = check_unique(&request, "default", &endpoint).expect_err("endpoint taken");
    assert_eq!(err.class(), crate::error::ErrorClass::UniqueViolation);
    assert_eq!(crate::protocol::sqlstate(err.class()), "23505");
    assert!(err.to_string().contains("in formation \"other\""), "{err}");
    assert!(err.hint().is_some());

    let name = Taken {
        name: true,
        ..Taken::default()
    };
    let err = check_unique(&request, "default", &name).expect_err("name taken");
    assert_eq!(
        err.to_string(),
        "a node named \"east\" is already registered in formation \"default\""
    );
    // an empty name lets the monitor choose one: never taken
    request.name = String::new();
    assert_eq!(check_unique(&request, "default", &name), Ok(()));

    let id = Taken {
        node_id: true,
        ..Taken::default()
    };
    assert_eq!(
        check_unique(&request, "default", &id).map_err(|e| e.to_string()),
        Err("node id 7 is already in use".to_string())
    );
    request.desired_node_id = -1;
    assert_eq!(check_unique(&request, "default", &id), Ok(()));
}
