//! The keeper's own safety decisions, apart from the monitor: when a primary that lost the
//! monitor and every standby must stop taking writes, whether to report Postgres as running
//! while it is being restarted, and when to start again a Postgres someone else stopped.

use std::time::{Duration, Instant};

/// Whether a primary must fence itself (stop Postgres): it has heard from neither the monitor
/// nor a streaming standby for longer than `timeout`. Times are Unix seconds; 0 is "never",
/// counted from `started` (when the keeper started) so that a fresh keeper does not fence at
/// once.
pub fn primary_is_partitioned(
    now: u64,
    started: u64,
    last_monitor_contact: u64,
    last_secondary_contact: u64,
    timeout: Duration,
) -> bool {
    let since = |t: u64| now.saturating_sub(t.max(started));
    let limit = timeout.as_secs();
    since(last_monitor_contact) > limit && since(last_secondary_contact) > limit
}

/// How long the keeper leaves down a Postgres that someone else shut down cleanly (an
/// operator's `pg_ctl stop`) before it starts it again: long enough for `pg_ctl stop`, which
/// checks every 100 ms, to see it stopped and return, and for the next command of a script to
/// run; short enough that writes are back well before a failover (a primary keeps reporting
/// Postgres as running meanwhile, see [`RestartTracker`]). A crash (or `pg_ctl stop -m
/// immediate`) leaves the control file "in production": restarted at once.
pub const OPERATOR_STOP_GRACE: Duration = Duration::from_secs(5);

/// Whether to start Postgres now, found down since `down_since`: at once after a crash, after
/// [`OPERATOR_STOP_GRACE`] when someone else shut it down cleanly.
pub fn restart_is_due(
    shut_down_cleanly_by_someone_else: bool,
    down_since: Instant,
    now: Instant,
) -> bool {
    !shut_down_cleanly_by_someone_else
        || now.saturating_duration_since(down_since) >= OPERATOR_STOP_GRACE
}

/// Tracks failed Postgres restarts, as 2.0 does: a primary keeps reporting Postgres as running
/// while it tries to restart it, until `max_retries` attempts or `timeout` have passed; then it
/// reports it down so that the monitor fails over.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    first_failure: Option<Instant>,
    failures: u64,
    max_retries: u64,
    timeout: Duration,
}

impl RestartTracker {
    /// A tracker with 2.0's limits (3 retries, 20 s by default).
    pub fn new(max_retries: u64, timeout: Duration) -> Self {
        RestartTracker {
            first_failure: None,
            failures: 0,
            max_retries,
            timeout,
        }
    }

    /// Postgres was found down, or failed to start, at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.first_failure.get_or_insert(now);
        self.failures += 1;
    }

    /// Postgres runs again.
    pub fn recovered(&mut self) {
        self.first_failure = None;
        self.failures = 0;
    }

    /// Whether to report Postgres as running although it is not: only while still within the
    /// retry budget.
    pub fn still_trying(&self, now: Instant) -> bool {
        match self.first_failure {
            None => true,
            Some(first) => {
                self.failures <= self.max_retries && now.duration_since(first) < self.timeout
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_stopped_by_an_operator_is_left_down_for_the_grace_period() {
        let down = Instant::now();
        assert!(
            restart_is_due(false, down, down),
            "a crash is restarted at once"
        );
        assert!(!restart_is_due(true, down, down));
        assert!(!restart_is_due(
            true,
            down,
            down + Duration::from_millis(4_900)
        ));
        assert!(restart_is_due(true, down, down + OPERATOR_STOP_GRACE));
    }

    const T: Duration = Duration::from_secs(20);

    #[test]
    fn fences_only_when_both_monitor_and_standbys_are_silent() {
        assert!(!primary_is_partitioned(100, 0, 90, 0, T), "monitor fresh");
        assert!(!primary_is_partitioned(100, 0, 0, 95, T), "standby fresh");
        assert!(primary_is_partitioned(100, 0, 70, 60, T), "both silent");
        assert!(
            !primary_is_partitioned(100, 0, 80, 60, T),
            "exactly at the limit"
        );
    }

    #[test]
    fn a_fresh_keeper_counts_from_its_start() {
        assert!(!primary_is_partitioned(100, 95, 0, 0, T));
        assert!(primary_is_partitioned(130, 95, 0, 0, T));
    }

    #[test]
    fn restart_failures_are_hidden_within_the_budget_only() {
        let start = Instant::now();
        let mut tracker = RestartTracker::new(3, T);
        assert!(tracker.still_trying(start));
        for _ in 0..3 {
            tracker.failed(start);
        }
        assert!(tracker.still_trying(start + Duration::from_secs(5)));
        assert!(
            !tracker.still_trying(start + Duration::from_secs(21)),
            "timed out"
        );
        tracker.failed(start);
        assert!(!tracker.still_trying(start), "too many retries");
        tracker.recovered();
        assert!(tracker.still_trying(start));
    }
}
