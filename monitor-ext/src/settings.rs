//! The monitor's settings (GUCs), with 2.0's names, units and contexts.
//!
//! All are `sighup` (change them in postgresql.conf or with `ALTER SYSTEM`, and reload), but
//! `pgautofailover.keeper_lease`, which a keeper sets on its own connection. Differences from
//! 2.0: faster health check defaults (2 s period and timeout, 1 retry after 1 s, against
//! 5 s, 5 s, 2 and 2 s), the lease settings `node_lease_timeout` and `node_lease_margin`
//! (see `fsm::lease`), and `group_lock_timeout` (see `crate::locks`).

use std::ffi::CString;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `pgautofailover.health_check_period`: pause between two probe rounds.
pub static HEALTH_CHECK_PERIOD: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// `pgautofailover.health_check_timeout`: how long one probe attempt may take.
pub static HEALTH_CHECK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// `pgautofailover.health_check_max_retries`: attempts after a failed one before "bad".
pub static HEALTH_CHECK_MAX_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(1);
/// `pgautofailover.health_check_retry_delay`: pause between attempts.
pub static HEALTH_CHECK_RETRY_DELAY: GucSetting<i32> = GucSetting::<i32>::new(1_000);
/// `pgautofailover.node_considered_unhealthy_timeout`.
pub static NODE_CONSIDERED_UNHEALTHY_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(20_000);
/// `pgautofailover.startup_grace_period`.
pub static STARTUP_GRACE_PERIOD: GucSetting<i32> = GucSetting::<i32>::new(10_000);
/// `pgautofailover.primary_demote_timeout`.
pub static PRIMARY_DEMOTE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
/// `pgautofailover.promote_wal_log_threshold` (bytes).
pub static PROMOTE_WAL_LOG_THRESHOLD: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024 * 1024);
/// `pgautofailover.enable_sync_wal_log_threshold` (bytes).
pub static ENABLE_SYNC_WAL_LOG_THRESHOLD: GucSetting<i32> =
    GucSetting::<i32>::new(16 * 1024 * 1024);
/// `pgautofailover.node_lease_timeout`: the lease a keeper holds, bounded by
/// `node_considered_unhealthy_timeout`; 0 grants none.
pub static NODE_LEASE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(3_000);
/// `pgautofailover.node_lease_margin`: how long after a lease ran out the monitor promotes.
pub static NODE_LEASE_MARGIN: GucSetting<i32> = GucSetting::<i32>::new(500);
/// `pgautofailover.group_lock_timeout`: the longest a call waits for a formation or group lock,
/// and the longest a session may hold one in a transaction before the health check worker
/// terminates it; 0 for no bound (2.0).
pub static GROUP_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// `pgautofailover.keeper_lease` (hidden, per session): the lease this connection's keeper
/// holds, in ms; 0 for none (a pg_auto_failover 2.0 keeper).
pub static KEEPER_LEASE: GucSetting<i32> = GucSetting::<i32>::new(0);
/// `pgautofailover.enable_health_checks` (hidden): turns the background probe on or off.
pub static ENABLE_HEALTH_CHECKS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// `pgautofailover.enable_version_checks` (hidden): accepted for compatibility; this monitor
/// always ships its SQL and library together.
pub static ENABLE_VERSION_CHECKS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// `pgautofailover.heartbeat_flush_interval` (hidden): how often heartbeats kept in shared
/// memory are written to the table.
pub static HEARTBEAT_FLUSH_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(1_000);
/// `pgautofailover.health_check_user` (hidden): the role the probe presents.
pub static HEALTH_CHECK_USER: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgautofailover_monitor"));

/// Registers every setting. Runs in every process that loads the library, so `SHOW` works
/// anywhere.
pub fn define() {
    let ms = GucFlags::UNIT_MS;
    let int = |name, short, long, setting, min, max, flags| {
        GucRegistry::define_int_guc(
            name,
            short,
            long,
            setting,
            min,
            max,
            GucContext::Sighup,
            flags,
        )
    };
    int(
        c"pgautofailover.health_check_period",
        c"Duration between each check (in milliseconds).",
        c"How long the health check worker waits between two rounds of probes.",
        &HEALTH_CHECK_PERIOD,
        1,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.health_check_timeout",
        c"Connect timeout (in milliseconds).",
        c"How long one probe attempt may take before it counts as failed.",
        &HEALTH_CHECK_TIMEOUT,
        1,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.health_check_max_retries",
        c"Maximum number of re-tries before marking a node as failed.",
        c"A node is marked bad after this many retries of a failed probe, all failing.",
        &HEALTH_CHECK_MAX_RETRIES,
        1,
        100,
        GucFlags::default(),
    );
    int(
        c"pgautofailover.health_check_retry_delay",
        c"Delay between consecutive retries.",
        c"How long the probe waits before retrying a failed attempt.",
        &HEALTH_CHECK_RETRY_DELAY,
        1,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.node_considered_unhealthy_timeout",
        c"Mark node unhealthy if last ping was over this long ago",
        c"A node whose keeper has not reported for this long, and whose probe fails, is unhealthy.",
        &NODE_CONSIDERED_UNHEALTHY_TIMEOUT,
        1,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.startup_grace_period",
        c"Wait for at least this much time after startup before initiating a failover.",
        c"No node is considered unhealthy until the monitor has been up this long.",
        &STARTUP_GRACE_PERIOD,
        0,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.primary_demote_timeout",
        c"Give the primary this long to drain before promoting the secondary",
        c"A primary told to stop that does not confirm is presumed stopped after this long.",
        &PRIMARY_DEMOTE_TIMEOUT,
        1,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.promote_wal_log_threshold",
        c"Don't promote secondary unless xlog is with this many bytes of the master",
        c"A standby further behind the primary's last reported LSN is not promoted.",
        &PROMOTE_WAL_LOG_THRESHOLD,
        1,
        i32::MAX,
        GucFlags::default(),
    );
    int(
        c"pgautofailover.enable_sync_wal_log_threshold",
        c"Don't enable synchronous replication until secondary xlog is within this many bytes of the primary's",
        c"A catching-up standby becomes secondary only within this many bytes of the primary.",
        &ENABLE_SYNC_WAL_LOG_THRESHOLD,
        1,
        i32::MAX,
        GucFlags::default(),
    );
    int(
        c"pgautofailover.node_lease_timeout",
        c"A keeper holds a lease of this long (at most node_considered_unhealthy_timeout) from each successful heartbeat.",
        c"A primary whose keeper did not renew its lease in time stops taking writes; 0 grants no leases (2.0 timing).",
        &NODE_LEASE_TIMEOUT,
        0,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.node_lease_margin",
        c"Wait this long after a primary's lease ran out before promoting another node.",
        c"Covers the keeper's scheduling delay and the time it takes to stop Postgres.",
        &NODE_LEASE_MARGIN,
        0,
        i32::MAX,
        ms,
    );
    int(
        c"pgautofailover.group_lock_timeout",
        c"Longest wait for, and longest hold of, a formation or group lock.",
        c"A call waits at most this long for the lock of a group; a session holding one in a transaction for longer is terminated. 0 disables both bounds.",
        &GROUP_LOCK_TIMEOUT,
        0,
        i32::MAX,
        ms,
    );
    GucRegistry::define_int_guc(
        c"pgautofailover.keeper_lease",
        c"The lease this session's keeper holds (set by pg_autoctl).",
        c"Each node_active() on this connection renews the node's lease for this long.",
        &KEEPER_LEASE,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_bool_guc(
        c"pgautofailover.enable_health_checks",
        c"Enable background health checks.",
        c"When off, the monitor does not probe the nodes.",
        &ENABLE_HEALTH_CHECKS,
        GucContext::Sighup,
        GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_bool_guc(
        c"pgautofailover.enable_version_checks",
        c"Enable extension version compatibility checks.",
        c"Accepted for compatibility with pg_auto_failover 2.0.",
        &ENABLE_VERSION_CHECKS,
        GucContext::Sighup,
        GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_int_guc(
        c"pgautofailover.heartbeat_flush_interval",
        c"How often heartbeats kept in shared memory are written to pgautofailover.node.",
        c"Heartbeats that change nothing are kept in shared memory and written in bulk.",
        &HEARTBEAT_FLUSH_INTERVAL,
        10,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_string_guc(
        c"pgautofailover.health_check_user",
        c"Role the health checks connect as.",
        c"The probe sends a startup packet for this role and the postgres database.",
        &HEALTH_CHECK_USER,
        GucContext::Sighup,
        GucFlags::NO_SHOW_ALL,
    );
}

fn non_negative(value: i32) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The settings the state machine reads, as currently set.
pub fn fsm_settings() -> fsm::Settings {
    fsm::Settings {
        node_considered_unhealthy_timeout_ms: i64::from(NODE_CONSIDERED_UNHEALTHY_TIMEOUT.get()),
        startup_grace_period_ms: i64::from(STARTUP_GRACE_PERIOD.get()),
        primary_demote_timeout_ms: i64::from(PRIMARY_DEMOTE_TIMEOUT.get()),
        promote_wal_log_threshold: non_negative(PROMOTE_WAL_LOG_THRESHOLD.get()),
        enable_sync_wal_log_threshold: non_negative(ENABLE_SYNC_WAL_LOG_THRESHOLD.get()),
        lease_margin_ms: i64::from(NODE_LEASE_MARGIN.get()),
    }
}

/// The lease this session's keeper holds, in ms (0: none).
pub fn keeper_lease_ms() -> u64 {
    non_negative(KEEPER_LEASE.get())
}

/// The probe's timing, as currently set.
pub fn probe_policy() -> fsm::probe::ProbePolicy {
    fsm::probe::ProbePolicy {
        timeout_ms: non_negative(HEALTH_CHECK_TIMEOUT.get()),
        max_retries: u32::try_from(HEALTH_CHECK_MAX_RETRIES.get()).unwrap_or(0),
        retry_delay_ms: non_negative(HEALTH_CHECK_RETRY_DELAY.get()),
    }
}

/// The pause between probe rounds, in milliseconds.
pub fn health_check_period_ms() -> u64 {
    non_negative(HEALTH_CHECK_PERIOD.get())
}

/// How often kept heartbeats are written to the table, in milliseconds.
pub fn heartbeat_flush_interval_ms() -> u64 {
    non_negative(HEARTBEAT_FLUSH_INTERVAL.get())
}

/// The bound on waiting for and holding a formation or group lock, in ms (0: none).
pub fn group_lock_timeout_ms() -> i32 {
    GROUP_LOCK_TIMEOUT.get().max(0)
}

/// The role the probe presents.
pub fn health_check_user() -> String {
    HEALTH_CHECK_USER
        .get()
        .and_then(|s| s.into_string().ok())
        .unwrap_or_else(|| fsm::probe::PROBE_USER.to_string())
}
