//! A monitor server for tests, and scripted keepers that speak the node protocol to it.
//!
//! [`ScriptedKeeper`] plays a keeper's side of `register_node()` / `node_active()`: it reports a
//! state, receives its goal, and (when told to) reports that goal as reached on the next call.
//! It lets the SQL tests walk the monitor through whole scenarios without running Postgres
//! nodes; the end-to-end tests with real nodes come with the keeper.

use postgres::Client;

use crate::server::PgServer;

/// Settings every test monitor uses: the extension preloaded, short timeouts, no probes unless
/// a test asks for them (a probe of a fake node would interfere with scripted health).
pub const MONITOR_SETTINGS: &[&str] = &[
    "shared_preload_libraries = 'pgautofailover'",
    "pgautofailover.enable_health_checks = off",
    "pgautofailover.startup_grace_period = 0",
];

/// A monitor: a Postgres server with the extension created in database `postgres`.
pub struct Monitor {
    /// The server.
    pub server: PgServer,
    /// A connection used by the test.
    pub client: Client,
}

impl Monitor {
    /// Starts a monitor with [`MONITOR_SETTINGS`] plus `extra` settings.
    pub fn start(label: &str, extra: &[&str]) -> Monitor {
        Monitor::start_in(label, extra, "postgres")
    }

    /// Like [`Monitor::start`], with the extension in database `dbname` (created if needed).
    pub fn start_in(label: &str, extra: &[&str], dbname: &str) -> Monitor {
        let mut settings: Vec<&str> = MONITOR_SETTINGS.to_vec();
        settings.extend_from_slice(extra);
        let server = PgServer::start(label, &settings);
        if dbname != "postgres" {
            server
                .connect()
                .batch_execute(&format!("CREATE DATABASE {dbname}"))
                .unwrap_or_else(|e| panic!("create database {dbname}: {e}"));
        }
        let mut client = server.connect_to(dbname);
        client
            .batch_execute("CREATE EXTENSION pgautofailover CASCADE")
            .unwrap_or_else(|e| panic!("create extension: {e}\n{}", server.log()));
        Monitor { server, client }
    }

    /// `(reportedstate, goalstate)` of a node.
    pub fn states(&mut self, node_id: i64) -> (String, String) {
        let row = self
            .client
            .query_one(
                "SELECT reportedstate::text, goalstate::text FROM pgautofailover.node \
                  WHERE nodeid = $1",
                &[&node_id],
            )
            .unwrap_or_else(|e| panic!("read node {node_id}: {e}"));
        (row.get(0), row.get(1))
    }

    /// The goal state of a node.
    pub fn goal(&mut self, node_id: i64) -> String {
        self.states(node_id).1
    }

    /// Descriptions of every event so far, oldest first.
    pub fn events(&mut self) -> Vec<String> {
        self.client
            .query(
                "SELECT format('%s: %s/%s %s', nodeid, reportedstate, goalstate, description) \
                   FROM pgautofailover.event ORDER BY eventid",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
            .unwrap_or_default()
    }
}

/// An error with its SQLSTATE and message, for test failures.
pub fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!(
            "{} {} (detail: {:?}, hint: {:?})",
            db.code().code(),
            db.message(),
            db.detail(),
            db.hint()
        ),
        None => error.to_string(),
    }
}

/// One simulated keeper.
#[derive(Debug, Clone)]
pub struct ScriptedKeeper {
    /// Its node id.
    pub node_id: i64,
    /// Its group.
    pub group_id: i32,
    /// Its formation.
    pub formation: String,
    /// The state it is in (what it reports).
    pub current: String,
    /// The goal it last received.
    pub assigned: String,
    /// The LSN it reports.
    pub lsn: String,
    /// The timeline it reports.
    pub tli: i32,
    /// Whether its Postgres runs.
    pub pg_is_running: bool,
}

impl ScriptedKeeper {
    /// Registers a node on `port` in `formation` with this candidate priority.
    pub fn register(
        client: &mut Client,
        formation: &str,
        port: i32,
        priority: i32,
    ) -> ScriptedKeeper {
        Self::try_register(client, formation, port, priority)
            .unwrap_or_else(|e| panic!("register node on port {port}: {}", describe(&e)))
    }

    /// Like [`ScriptedKeeper::register`], returning the error.
    pub fn try_register(
        client: &mut Client,
        formation: &str,
        port: i32,
        priority: i32,
    ) -> Result<ScriptedKeeper, postgres::Error> {
        let row = client.query_one(
            "SELECT assigned_node_id, assigned_group_id, assigned_group_state::text \
               FROM pgautofailover.register_node($1, '127.0.0.1', $2, 'postgres', \
                    sysidentifier => 6000000000000000001, candidate_priority => $3)",
            &[&formation, &port, &priority],
        )?;
        Ok(ScriptedKeeper {
            node_id: row.get(0),
            group_id: row.get(1),
            formation: formation.to_string(),
            current: "init".to_string(),
            assigned: row.get(2),
            lsn: "0/3000000".to_string(),
            tli: 1,
            pg_is_running: true,
        })
    }

    /// Reports the current state; returns the assigned goal.
    pub fn heartbeat(&mut self, client: &mut Client) -> String {
        self.try_heartbeat(client)
            .unwrap_or_else(|e| panic!("node_active of node {}: {}", self.node_id, describe(&e)))
    }

    /// Like [`ScriptedKeeper::heartbeat`], returning the error.
    pub fn try_heartbeat(&mut self, client: &mut Client) -> Result<String, postgres::Error> {
        use fsm::protocol::api::node_active as f;
        let params = f::Arguments::<&(dyn postgres::types::ToSql + Sync)> {
            formation_id: &self.formation,
            node_id: &self.node_id,
            group_id: &self.group_id,
            current_group_role: &self.current,
            current_pg_is_running: &self.pg_is_running,
            current_tli: &self.tli,
            current_lsn: &self.lsn,
            current_rep_state: &"",
        }
        .in_order();
        let sql = format!(
            "SELECT assigned_group_state::text FROM {}",
            f::FUNCTION.call()
        );
        let row = client.query_one(&sql, &params)?;
        self.assigned = row.get(0);
        Ok(self.assigned.clone())
    }

    /// Reaches the assigned goal (as a keeper would after its transition) and reports it.
    pub fn step(&mut self, client: &mut Client) -> String {
        self.current = self.assigned.clone();
        self.heartbeat(client)
    }
}

/// Lets every keeper step in turn until nothing changes (at most `rounds` rounds).
pub fn settle(client: &mut Client, keepers: &mut [&mut ScriptedKeeper], rounds: usize) {
    for _ in 0..rounds {
        let mut changed = false;
        for keeper in keepers.iter_mut() {
            let before = (keeper.current.clone(), keeper.assigned.clone());
            keeper.step(client);
            changed |= before != (keeper.current.clone(), keeper.assigned.clone());
        }
        if !changed {
            return;
        }
    }
}
