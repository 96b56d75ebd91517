//! The settings a scenario runs with, identical for both systems.

/// Monitor settings and keeper timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name in the report.
    pub name: &'static str,
    /// Lines for the monitor's postgresql.conf.
    pub monitor: &'static [&'static str],
    /// `timeout.network_partition_timeout` for the keepers, when changed.
    pub partition_timeout: Option<&'static str>,
}

/// Each system's own defaults.
pub const DEFAULTS: Profile = Profile {
    name: "defaults",
    monitor: &[],
    partition_timeout: None,
};

/// The fast detection settings of the issue.
pub const FAST: Profile = Profile {
    name: "fast detection",
    monitor: &[
        "pgautofailover.health_check_period = 1000",
        "pgautofailover.health_check_timeout = 1000",
        "pgautofailover.health_check_max_retries = 1",
        "pgautofailover.health_check_retry_delay = 500",
        "pgautofailover.node_considered_unhealthy_timeout = 2000",
    ],
    partition_timeout: None,
};

/// Fast detection plus a short drain: pg_auto_failover 2.0's best measured profile.
pub const TUNED: Profile = Profile {
    name: "fast detection + primary_demote_timeout 5 s + network_partition_timeout 3 s",
    monitor: &[
        "pgautofailover.health_check_period = 1000",
        "pgautofailover.health_check_timeout = 1000",
        "pgautofailover.health_check_max_retries = 1",
        "pgautofailover.health_check_retry_delay = 500",
        "pgautofailover.node_considered_unhealthy_timeout = 2000",
        "pgautofailover.primary_demote_timeout = 5000",
    ],
    partition_timeout: Some("3"),
};
