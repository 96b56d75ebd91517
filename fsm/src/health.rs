//! The monitor's health model: when a node counts as healthy, unhealthy, or still reporting.
//!
//! Two sources are combined: the keeper's own reports (`node_active`: report time and whether
//! Postgres runs) and the monitor's background probe (`health`, `healthchecktime`). A node is
//! *unhealthy* only when both agree it is gone (no report for the unhealthy timeout and a failed
//! probe), or when its keeper says Postgres is down. *Healthy* is the stronger positive verdict
//! the rules require before promoting or enrolling a node. The two are not complements: a node
//! can be neither (for instance a probe failed but the keeper still reports).

use crate::model::{Clock, Health, Node, Settings};

/// How fresh a keeper report must be to override a failed probe: a keeper that reached the
/// monitor after the probe failed proves the node is up. Keepers report every second; the extra
/// second absorbs scheduling delays.
pub const KEEPER_REPORT_FRESHNESS_MS: i64 = 2_000;

/// Health predicates evaluated at one instant with one set of settings.
#[derive(Debug, Clone, Copy)]
pub struct HealthModel {
    /// The timeouts in force.
    pub settings: Settings,
    /// The instant of evaluation and the monitor's start time.
    pub clock: Clock,
}

impl HealthModel {
    /// The node is up: Postgres runs and the probe (or a fresh keeper report) confirms it.
    pub fn is_healthy(&self, node: Option<&Node>) -> bool {
        let Some(node) = node else { return false };
        match node.health {
            // A keeper that reported after the failed probe, and recently, is reachable.
            Health::Bad
                if node.report_time > node.health_check_time
                    && !node
                        .report_time
                        .exceeded_by(self.clock.now, KEEPER_REPORT_FRESHNESS_MS) =>
            {
                node.pg_is_running
            }
            // Not probed yet: trust the keeper's report.
            Health::Unknown => node.pg_is_running,
            health => health == Health::Good && node.pg_is_running,
        }
    }

    /// The node is gone: silent and failing probes, or its keeper reports Postgres is not
    /// running. A missing node counts as unhealthy.
    ///
    /// Silent means: its lease ran out, for a node whose keeper holds one (the lease was
    /// renewed since the monitor started, so no grace period applies); otherwise, as in 2.0,
    /// no report for `node_considered_unhealthy_timeout`, once the monitor has been up for its
    /// grace period. The failed probe is required either way: a keeper that died leaves its
    /// Postgres running, and only the probe tells.
    pub fn is_unhealthy(&self, node: Option<&Node>) -> bool {
        let Some(node) = node else { return true };
        let probe_failed_since_start =
            node.health == Health::Bad && node.health_check_time >= self.clock.monitor_start;
        if let Some(lease) = node.lease {
            return (lease.expired(self.clock.now) && probe_failed_since_start)
                || !node.pg_is_running;
        }
        let settings = &self.settings;
        let silent = node.report_time.exceeded_by(
            self.clock.now,
            settings.node_considered_unhealthy_timeout_ms,
        );
        let past_grace = self
            .clock
            .monitor_start
            .exceeded_by(self.clock.now, settings.startup_grace_period_ms);
        (silent && probe_failed_since_start && past_grace) || !node.pg_is_running
    }

    /// The keeper called `node_active` within the unhealthy timeout.
    pub fn is_reporting(&self, node: Option<&Node>) -> bool {
        node.is_some_and(|node| {
            !node.report_time.exceeded_by(
                self.clock.now,
                self.settings.node_considered_unhealthy_timeout_ms,
            )
        })
    }

    /// The node was assigned `demote_timeout` and, if it was alive, has stopped itself by now:
    /// its lease ran out `node_lease_margin` ago, or, for a node without a lease (2.0), the
    /// assignment is `primary_demote_timeout` old.
    pub fn drain_time_expired(&self, node: Option<&Node>) -> bool {
        node.is_some_and(|node| {
            node.goal == crate::ReplicationState::DemoteTimeout
                && match node.lease {
                    Some(lease) => lease.fenced(self.clock.now, self.settings.lease_margin_ms),
                    None => node
                        .state_change_time
                        .exceeded_by(self.clock.now, self.settings.primary_demote_timeout_ms),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use crate::testing::node;

    const NOW: Timestamp = Timestamp(1_000_000_000_000);

    fn model() -> HealthModel {
        HealthModel {
            settings: Settings::default(),
            clock: Clock {
                now: NOW,
                monitor_start: NOW.plus_ms(-3_600_000),
            },
        }
    }

    #[test]
    fn silent_node_with_failed_probe_is_unhealthy() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.health = Health::Bad;
        n.health_check_time = NOW.plus_ms(-1_000);
        n.report_time = NOW.plus_ms(-20_000);
        assert!(model().is_unhealthy(Some(&n)));
        n.report_time = NOW.plus_ms(-19_999);
        assert!(!model().is_unhealthy(Some(&n)), "still reporting recently");
    }

    #[test]
    fn failed_probe_before_monitor_start_does_not_count() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.health = Health::Bad;
        n.report_time = NOW.plus_ms(-60_000);
        let mut m = model();
        m.clock.monitor_start = NOW.plus_ms(-30_000);
        n.health_check_time = NOW.plus_ms(-40_000);
        assert!(!m.is_unhealthy(Some(&n)));
        n.health_check_time = NOW.plus_ms(-1_000);
        assert!(m.is_unhealthy(Some(&n)));
    }

    #[test]
    fn no_unhealthy_verdict_during_startup_grace() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.health = Health::Bad;
        n.report_time = NOW.plus_ms(-60_000);
        n.health_check_time = NOW.plus_ms(-1_000);
        let mut m = model();
        m.clock.monitor_start = NOW.plus_ms(-5_000);
        assert!(!m.is_unhealthy(Some(&n)));
    }

    #[test]
    fn postgres_down_is_unhealthy_at_once() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.pg_is_running = false;
        assert!(model().is_unhealthy(Some(&n)));
        assert!(!model().is_healthy(Some(&n)));
    }

    #[test]
    fn fresh_keeper_report_overrides_failed_probe() {
        let mut n = node(1, crate::ReplicationState::Secondary);
        n.health = Health::Bad;
        n.health_check_time = NOW.plus_ms(-3_000);
        n.report_time = NOW.plus_ms(-500);
        assert!(model().is_healthy(Some(&n)));
        n.report_time = NOW.plus_ms(-2_500);
        assert!(!model().is_healthy(Some(&n)), "report too old");
        n.report_time = NOW.plus_ms(-4_000);
        assert!(!model().is_healthy(Some(&n)), "report older than the probe");
    }

    #[test]
    fn unknown_health_trusts_the_keeper() {
        let mut n = node(1, crate::ReplicationState::Secondary);
        n.health = Health::Unknown;
        assert!(model().is_healthy(Some(&n)));
        n.pg_is_running = false;
        assert!(!model().is_healthy(Some(&n)));
    }

    #[test]
    fn missing_node_is_unhealthy_and_not_healthy() {
        assert!(model().is_unhealthy(None));
        assert!(!model().is_healthy(None));
        assert!(!model().is_reporting(None));
    }

    #[test]
    fn a_lease_holder_is_silent_when_its_lease_ran_out_with_no_grace_period() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.health = Health::Bad;
        n.health_check_time = NOW.plus_ms(-500);
        n.report_time = NOW.plus_ms(-2_000);
        let mut m = model();
        m.clock.monitor_start = NOW.plus_ms(-3_000);
        n.lease = Some(crate::lease::MonitorLease {
            expires: NOW.plus_ms(1),
        });
        assert!(!m.is_unhealthy(Some(&n)), "lease still running");
        n.lease = Some(crate::lease::MonitorLease { expires: NOW });
        assert!(m.is_unhealthy(Some(&n)), "lease ran out, probe failed");
        n.health = Health::Good;
        assert!(
            !m.is_unhealthy(Some(&n)),
            "a keeper died but its Postgres answers the probe"
        );
    }

    #[test]
    fn a_lease_holder_is_drained_a_margin_after_its_lease() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.goal = crate::ReplicationState::DemoteTimeout;
        n.state_change_time = NOW;
        n.lease = Some(crate::lease::MonitorLease {
            expires: NOW.plus_ms(-499),
        });
        assert!(!model().drain_time_expired(Some(&n)));
        n.lease = Some(crate::lease::MonitorLease {
            expires: NOW.plus_ms(-500),
        });
        assert!(
            model().drain_time_expired(Some(&n)),
            "no primary_demote_timeout wait for a lease holder"
        );
    }

    #[test]
    fn drain_expires_after_demote_timeout() {
        let mut n = node(1, crate::ReplicationState::Primary);
        n.goal = crate::ReplicationState::DemoteTimeout;
        n.state_change_time = NOW.plus_ms(-29_999);
        assert!(!model().drain_time_expired(Some(&n)));
        n.state_change_time = NOW.plus_ms(-30_000);
        assert!(model().drain_time_expired(Some(&n)));
        n.goal = crate::ReplicationState::Draining;
        assert!(!model().drain_time_expired(Some(&n)));
    }
}
