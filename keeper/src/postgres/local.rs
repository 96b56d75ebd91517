//! SQL on the local Postgres: what the keeper reports (recovery, LSN, timeline, sync state),
//! and the changes it makes (roles, database, replication slots, settings, promotion).

use std::path::Path;
use std::time::Duration;

use tokio_postgres::Client;

use super::pgdata::PostmasterPid;
use crate::db::{self, quote_ident, quote_literal};
use crate::exit::{CliError, CliResult, Exit};

/// The role the monitor's health checks present.
pub const MONITOR_ROLE: &str = "pgautofailover_monitor";
/// The role standbys replicate and rewind with.
pub const REPLICATION_ROLE: &str = "pgautofailover_replicator";
pub use fsm::protocol::standby_name;

/// What the keeper reports about its Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// The flush LSN of a primary, or the last received (else replayed) LSN of a standby.
    pub lsn: String,
    /// The timeline.
    pub timeline: i32,
    /// The best sync_state among our standbys ('' when none is connected).
    pub sync_state: String,
    /// How many of our standbys stream and replied within the last 3 seconds (they reply
    /// every second: `wal_receiver_status_interval`). A standby cut off by the network can
    /// look `streaming` until `wal_sender_timeout`; its reply time shows it is gone.
    pub streaming_standbys: i64,
    /// Of those, how many count for synchronous replication (`sync` or `quorum`): while one
    /// streams, a primary past its lease keeps serving (`fsm::lease`).
    pub sync_standbys_streaming: i64,
    /// `default_transaction_read_only`.
    pub read_only: bool,
    /// A standby's WAL receiver streams from its primary.
    pub receiving: bool,
}

/// Who the keeper may connect to its own Postgres as, in order, with passwords from the
/// node's password file: the configured user (the superuser), with its password when the file
/// has one. Over TCP, a standby copied from its primary does not know the primary's generated
/// superuser password (`NodeContext::initdb`), so when the file has none for that user, the
/// replication role (a superuser whose password every node knows) is tried next.
fn local_credentials(
    entries: &[super::passfile::Entry],
    host: &str,
    port: u16,
    user: &str,
    dbname: &str,
) -> Vec<(String, Option<String>)> {
    let name = if user.is_empty() {
        crate::os_user::current_user_name()
    } else {
        user.to_string()
    };
    let lookup_host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let lookup = |who: &str| super::passfile::lookup(entries, lookup_host, port, dbname, who);
    let own = lookup(&name);
    let mut candidates = vec![(user.to_string(), own.clone())];
    if own.is_none()
        && !host.starts_with('/')
        && let Some(password) = lookup(REPLICATION_ROLE)
    {
        candidates.push((REPLICATION_ROLE.to_string(), Some(password)));
    }
    candidates
}

/// A connection to the local Postgres.
pub struct LocalPg {
    client: Client,
}

fn pgsql_error(doing: &str, e: &tokio_postgres::Error) -> CliError {
    let report = db::report(e);
    let mut err = CliError::new(Exit::Pgsql, format!("{doing}: {}", report.message));
    err.hint = report.hint;
    err
}

impl LocalPg {
    /// Connects as `user` to `dbname` on the server running in `pgdata` (through the socket
    /// directory or listen address its postmaster.pid gives), or at `host`:`port` when the
    /// server is not found there. A password, when one is needed (no unix socket and a
    /// password method), comes from the password file `passfile` (`postgres::passfile`).
    pub async fn connect(
        pgdata: &Path,
        host: &str,
        port: u16,
        user: &str,
        dbname: &str,
        passfile: Option<&Path>,
    ) -> CliResult<LocalPg> {
        let mut config = tokio_postgres::Config::new();
        let pid = PostmasterPid::read(pgdata);
        let (host, port) = match (&pid, host.is_empty()) {
            (_, false) => (host.to_string(), port),
            (Some(pid), true) => (pid.connect_host(), pid.port),
            (None, true) => ("127.0.0.1".to_string(), port),
        };
        config
            .host(&host)
            .port(port)
            .dbname(dbname)
            .application_name("pg_autoctl")
            .connect_timeout(Duration::from_secs(5));
        // the keeper's own session never follows a database's search_path
        config.options("-c search_path=pg_catalog");
        let entries = passfile
            .map(|path| super::passfile::read(path).unwrap_or_default())
            .unwrap_or_default();
        let candidates = local_credentials(&entries, &host, port, user, dbname);
        let last = candidates.len().saturating_sub(1);
        let mut connected = None;
        for (i, (user, password)) in candidates.into_iter().enumerate() {
            let mut attempt = config.clone();
            if !user.is_empty() {
                attempt.user(&user);
            }
            if let Some(password) = password {
                attempt.password(password);
            }
            match db::connect(&attempt).await {
                // an authentication failure (class 28): try the next role
                Err(db::ConnectError::Postgres(e))
                    if i < last
                        && e.as_db_error()
                            .is_some_and(|d| d.code().code().starts_with("28")) => {}
                result => {
                    connected = Some(result);
                    break;
                }
            }
        }
        let result = connected.ok_or_else(|| {
            CliError::new(Exit::Pgsql, "no role to connect to the local Postgres as")
        })?;
        let (client, _notifications) = result.map_err(|e| {
            let report = e.report();
            let mut err = CliError::new(
                Exit::Pgsql,
                format!(
                    "cannot connect to the local Postgres at {host}:{port}: {}",
                    report.message
                ),
            );
            err.hint = report.hint;
            err
        })?;
        Ok(LocalPg { client })
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs statements with no result.
    pub async fn execute(&self, sql: &str) -> CliResult<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| pgsql_error(&format!("running \"{sql}\""), &e))
    }

    /// What the keeper reports to the monitor.
    pub async fn observe(&self) -> CliResult<Observation> {
        let row = self
            .client
            .query_one(
                "SELECT pg_is_in_recovery(), \
                 CASE WHEN pg_is_in_recovery() \
                      THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) \
                      ELSE pg_current_wal_flush_lsn() END::text, \
                 CASE WHEN pg_is_in_recovery() \
                      THEN greatest((SELECT max(received_tli) FROM pg_stat_wal_receiver), \
                                    (pg_control_checkpoint()).timeline_id, \
                                    (pg_control_recovery()).min_recovery_end_timeline) \
                      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int \
                 END, \
                 coalesce((SELECT sync_state FROM pg_stat_replication \
                           WHERE application_name LIKE 'pgautofailover\\_standby\\_%' \
                           ORDER BY CASE sync_state WHEN 'sync' THEN 1 WHEN 'quorum' THEN 2 \
                                    WHEN 'potential' THEN 3 ELSE 4 END LIMIT 1), ''), \
                 (SELECT count(*) FROM pg_stat_replication \
                  WHERE application_name LIKE 'pgautofailover\\_standby\\_%' AND state = 'streaming' \
                    AND reply_time > now() - interval '3 seconds'), \
                 (SELECT count(*) FROM pg_stat_replication \
                  WHERE application_name LIKE 'pgautofailover\\_standby\\_%' AND state = 'streaming' \
                    AND sync_state IN ('sync', 'quorum') \
                    AND reply_time > now() - interval '3 seconds'), \
                 current_setting('default_transaction_read_only')::bool, \
                 EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                &[],
            )
            .await
            .map_err(|e| pgsql_error("reading the local Postgres state", &e))?;
        let get_err =
            |e: tokio_postgres::Error| pgsql_error("reading the local Postgres state", &e);
        let mut observation = Observation {
            in_recovery: row.try_get(0).map_err(get_err)?,
            lsn: row
                .try_get::<_, Option<String>>(1)
                .map_err(get_err)?
                .unwrap_or_else(|| "0/0".to_string()),
            timeline: row
                .try_get::<_, Option<i32>>(2)
                .map_err(get_err)?
                .unwrap_or(1)
                .max(1),
            sync_state: row.try_get(3).map_err(get_err)?,
            streaming_standbys: row.try_get(4).map_err(get_err)?,
            sync_standbys_streaming: row.try_get(5).map_err(get_err)?,
            read_only: row.try_get(6).map_err(get_err)?,
            receiving: row.try_get(7).map_err(get_err)?,
        };
        // Without a WAL receiver, the control file's timelines can be minutes old: read the
        // timeline of the WAL the standby holds from its files (`fsm::timeline`).
        if observation.in_recovery && !observation.receiving {
            match self.wal_timeline(&observation.lsn).await {
                Ok(Some(tli)) => observation.timeline = tli,
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e.message, "cannot read the WAL's timeline"),
            }
        }
        Ok(observation)
    }

    /// The timeline of the WAL this standby holds at `lsn`, from its WAL segment and history
    /// files; None when they do not say (no segment file for that position).
    async fn wal_timeline(&self, lsn: &str) -> CliResult<Option<i32>> {
        use fsm::timeline;
        let Ok(lsn) = lsn.parse::<fsm::Lsn>() else {
            return Ok(None);
        };
        let failed = |e: tokio_postgres::Error| pgsql_error("reading pg_wal", &e);
        let size: i64 = self
            .client
            .query_one(
                "SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size'",
                &[],
            )
            .await
            .map_err(failed)?
            .try_get(0)
            .map_err(failed)?;
        let Some(suffix) = timeline::segment_suffix(lsn, u64::try_from(size).unwrap_or(0)) else {
            return Ok(None);
        };
        let names = self
            .client
            .query(
                "SELECT name FROM pg_catalog.pg_ls_waldir() WHERE name LIKE '%' || $1",
                &[&suffix],
            )
            .await
            .map_err(failed)?;
        let newest = names
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|name| timeline::segment_timeline(&name, &suffix))
            .max();
        let Some(newest) = newest else {
            return Ok(None);
        };
        let history = if newest == 1 {
            Vec::new()
        } else {
            let text: String = self
                .client
                .query_one(
                    "SELECT pg_catalog.pg_read_file('pg_wal/' || $1)",
                    &[&timeline::history_file_name(newest)],
                )
                .await
                .map_err(failed)?
                .try_get(0)
                .map_err(failed)?;
            match timeline::parse_history(&text) {
                Ok(history) => history,
                Err(e) => {
                    tracing::warn!(error = %e, tli = newest, "unreadable timeline history");
                    return Ok(None);
                }
            }
        };
        Ok(i32::try_from(timeline::timeline_of(lsn, newest, &history)).ok())
    }

    /// Creates the roles pg_auto_failover needs when missing: the monitor's (login, one
    /// connection) and the replication one (superuser, needed by pg_rewind).
    pub async fn ensure_roles(&self, replication_password: Option<&str>) -> CliResult<()> {
        self.execute(&format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {monitor}) THEN \
                 CREATE ROLE {monitor_ident} WITH LOGIN CONNECTION LIMIT 1; \
               END IF; \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {repl}) THEN \
                 CREATE ROLE {repl_ident} WITH LOGIN SUPERUSER REPLICATION; \
               END IF; \
             END $$",
            monitor = quote_literal(MONITOR_ROLE),
            monitor_ident = quote_ident(MONITOR_ROLE),
            repl = quote_literal(REPLICATION_ROLE),
            repl_ident = quote_ident(REPLICATION_ROLE),
        ))
        .await?;
        if let Some(password) = replication_password {
            self.set_role_password(REPLICATION_ROLE, password).await?;
        }
        Ok(())
    }

    /// Sets `role`'s password by its SCRAM verifier, computed here (`postgres::scram`), so that
    /// the statement, which Postgres may log, does not hold the password. A password SASLprep
    /// could change (non-ASCII) is sent as it is, in a session that logs no statement.
    pub async fn set_role_password(&self, role: &str, password: &str) -> CliResult<()> {
        match super::scram::verifier(password) {
            Some(verifier) => {
                self.execute(&format!(
                    "ALTER ROLE {} PASSWORD {}",
                    quote_ident(role),
                    quote_literal(&verifier)
                ))
                .await
            }
            None => {
                self.execute(
                    "SET log_statement = 'none'; SET log_min_error_statement = 'panic'; \
                     SET log_min_duration_statement = -1",
                )
                .await?;
                let result = self
                    .client
                    .batch_execute(&format!(
                        "ALTER ROLE {} PASSWORD {}",
                        quote_ident(role),
                        quote_literal(password)
                    ))
                    .await
                    .map_err(|e| pgsql_error(&format!("setting the password of {role}"), &e));
                let _ = self
                    .execute(
                        "RESET log_statement; RESET log_min_error_statement; \
                         RESET log_min_duration_statement",
                    )
                    .await;
                result
            }
        }
    }

    /// Creates database `dbname` when missing.
    pub async fn ensure_database(&self, dbname: &str) -> CliResult<()> {
        let exists = self
            .client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
            .await
            .map_err(|e| pgsql_error("looking up the database", &e))?
            .is_some();
        if !exists {
            self.execute(&format!("CREATE DATABASE {}", quote_ident(dbname)))
                .await?;
        }
        Ok(())
    }

    /// The current value of setting `name` for this session.
    async fn current_setting(&self, name: &str) -> CliResult<String> {
        self.client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| pgsql_error(&format!("reading {name}"), &e))
    }

    /// `ALTER SYSTEM SET name = value` and reload, when the value differs; returns once this
    /// session sees the new value (a reload is asynchronous).
    pub async fn set_system(&self, name: &str, value: &str) -> CliResult<()> {
        if self.current_setting(name).await? == value {
            return Ok(());
        }
        // ALTER SYSTEM refuses to run in the implicit transaction of a multi-statement query
        self.execute(&format!(
            "ALTER SYSTEM SET {name} TO {}",
            quote_literal(value)
        ))
        .await?;
        self.reload().await?;
        for _ in 0..100 {
            if self.current_setting(name).await? == value {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(CliError::new(
            Exit::Pgsql,
            format!("{name} did not change to \"{value}\" after a reload"),
        ))
    }

    /// Asks Postgres to reload its configuration files.
    pub async fn reload(&self) -> CliResult<()> {
        self.execute("SELECT pg_reload_conf()").await
    }

    /// Promotes a standby and waits for the promotion to finish.
    pub async fn promote(&self) -> CliResult<()> {
        let row = self
            .client
            .query_one(
                "SELECT CASE WHEN pg_is_in_recovery() THEN pg_promote(true, 60) ELSE true END",
                &[],
            )
            .await
            .map_err(|e| pgsql_error("promoting", &e))?;
        let done: bool = row.try_get(0).map_err(|e| pgsql_error("promoting", &e))?;
        if done {
            Ok(())
        } else {
            Err(CliError::new(
                Exit::Pgsql,
                "Postgres did not finish promoting within 60 s",
            ))
        }
    }

    /// Makes the replication slots of standbys exactly `wanted` (creating missing ones,
    /// dropping inactive ones of nodes that left). Other slots are not touched.
    pub async fn sync_slots(&self, wanted: &[String]) -> CliResult<()> {
        let rows = self
            .client
            .query(
                "SELECT slot_name::text, active FROM pg_replication_slots \
                 WHERE slot_name LIKE 'pgautofailover\\_standby\\_%'",
                &[],
            )
            .await
            .map_err(|e| pgsql_error("listing replication slots", &e))?;
        let mut present = Vec::new();
        for row in &rows {
            let name: String = row.try_get(0).map_err(|e| pgsql_error("slots", &e))?;
            let active: bool = row.try_get(1).map_err(|e| pgsql_error("slots", &e))?;
            if !wanted.contains(&name) && !active {
                self.client
                    .execute("SELECT pg_drop_replication_slot($1)", &[&name])
                    .await
                    .map_err(|e| pgsql_error(&format!("dropping slot {name}"), &e))?;
            }
            present.push(name);
        }
        for name in wanted {
            if !present.contains(name) {
                self.client
                    .execute(
                        "SELECT pg_create_physical_replication_slot($1, true)",
                        &[name],
                    )
                    .await
                    .map_err(|e| pgsql_error(&format!("creating slot {name}"), &e))?;
            }
        }
        Ok(())
    }

    /// Moves each inactive slot of `targets` forward to its LSN (never back; on a standby,
    /// Postgres stops at what it replayed), as 2.0 does on standbys: the WAL another node
    /// still needs is kept here too, so that this node can serve it once promoted.
    pub async fn advance_slots(&self, targets: &[(String, fsm::Lsn)]) -> CliResult<()> {
        for (name, lsn) in targets {
            if lsn.0 == 0 {
                continue;
            }
            self.client
                .execute(
                    "SELECT pg_catalog.pg_replication_slot_advance(s.slot_name, $2::text::pg_lsn) \
                       FROM pg_catalog.pg_replication_slots s \
                      WHERE s.slot_name = $1 AND NOT s.active \
                        AND s.restart_lsn IS NOT NULL AND s.restart_lsn < $2::text::pg_lsn",
                    &[name, &lsn.to_string()],
                )
                .await
                .map_err(|e| pgsql_error(&format!("advancing slot {name}"), &e))?;
        }
        Ok(())
    }

    /// CHECKPOINT.
    pub async fn checkpoint(&self) -> CliResult<()> {
        self.execute("CHECKPOINT").await
    }

    /// The replay LSN of a standby has reached `lsn`.
    pub async fn replayed_up_to(&self, lsn: &str) -> CliResult<bool> {
        let row = self
            .client
            .query_one(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                &[&lsn],
            )
            .await
            .map_err(|e| pgsql_error("reading the replay position", &e))?;
        row.try_get(0)
            .map_err(|e| pgsql_error("reading the replay position", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::passfile::Entry;

    #[test]
    fn a_standby_without_the_superusers_password_tries_the_replication_role_over_tcp() {
        let local = Entry {
            host: "*".to_string(),
            port: "5432".to_string(),
            database: "*".to_string(),
            user: "postgres".to_string(),
            password: "local".to_string(),
        };
        let replication = Entry::any_host(REPLICATION_ROLE, "repl");
        let both = [replication.clone(), local];
        assert_eq!(
            local_credentials(&both, "127.0.0.1", 5432, "postgres", "postgres"),
            [("postgres".to_string(), Some("local".to_string()))]
        );
        let copied = [replication];
        assert_eq!(
            local_credentials(&copied, "127.0.0.1", 5432, "postgres", "postgres"),
            [
                ("postgres".to_string(), None),
                (REPLICATION_ROLE.to_string(), Some("repl".to_string()))
            ]
        );
        // through a unix socket the configured user connects as it is (peer)
        assert_eq!(
            local_credentials(&copied, "/run/postgresql", 5432, "postgres", "postgres"),
            [("postgres".to_string(), None)]
        );
        assert_eq!(
            local_credentials(&[], "127.0.0.1", 5432, "postgres", "postgres"),
            [("postgres".to_string(), None)]
        );
    }
}
