//! The monitor's SQL API as typed calls: one method per pgautofailover function the keeper
//! and the command line use. State names and LSNs travel as text and are cast on the server,
//! so the calls work whatever the OIDs of the extension's types.
//!
//! What the monitor answers is checked against `fsm::vocab` here, before anything else sees
//! it: the monitor may be older than this keeper, or compromised, and node hosts and names end
//! up in `pg_hba.conf`, `primary_conninfo` and command lines. A node the monitor describes with
//! a value outside the vocabulary is left out of lists (and logged), never written anywhere.

use fsm::ReplicationState;
use fsm::protocol::api;
use fsm::vocab::{self, Host, NodeName};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::{Monitor, MonitorError};

pub use fsm::protocol::Assignment;

/// What the monitor answers to `register_node`: the assignment and the node's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The first assignment.
    pub assignment: Assignment,
    /// The node's name (chosen by the monitor when none was given).
    pub name: Option<NodeName>,
}

/// Another node, as `get_other_nodes` and friends list it, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// Node id.
    pub node_id: i64,
    /// Name.
    pub name: NodeName,
    /// Host.
    pub host: Host,
    /// Port.
    pub port: u16,
    /// Its last reported LSN.
    pub lsn: fsm::Lsn,
    /// Whether the monitor takes it for the primary.
    pub is_primary: bool,
}

/// The arguments of `register_node`.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    /// Formation.
    pub formation: &'a str,
    /// Host other nodes reach this one at.
    pub host: &'a str,
    /// Postgres port.
    pub port: u16,
    /// Application database.
    pub dbname: &'a str,
    /// Node name ('' lets the monitor pick node_<id>).
    pub name: &'a str,
    /// Postgres system identifier, 0 when unknown.
    pub system_identifier: u64,
    /// Wanted group, -1 to let the monitor choose.
    pub desired_group: i32,
    /// Candidate priority.
    pub candidate_priority: i32,
    /// Replication quorum.
    pub replication_quorum: bool,
}

/// The arguments of `node_active`.
#[derive(Debug, Clone)]
pub struct Heartbeat<'a> {
    /// Formation.
    pub formation: &'a str,
    /// Node id.
    pub node_id: i64,
    /// Group.
    pub group_id: i32,
    /// The state the keeper is in.
    pub state: ReplicationState,
    /// Whether Postgres runs.
    pub pg_is_running: bool,
    /// Timeline.
    pub tli: i32,
    /// LSN, as text.
    pub lsn: &'a str,
    /// Best sync_state among the standbys ('' when none).
    pub sync_state: &'a str,
}

/// One row of `current_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStateRow {
    /// Formation kind.
    pub formation_kind: String,
    /// Node name.
    pub nodename: String,
    /// Host.
    pub nodehost: String,
    /// Port.
    pub nodeport: i32,
    /// Group.
    pub group_id: i32,
    /// Node id.
    pub node_id: i64,
    /// Reported state.
    pub current_group_state: String,
    /// Assigned state.
    pub assigned_group_state: String,
    /// Candidate priority.
    pub candidate_priority: i32,
    /// Replication quorum.
    pub replication_quorum: bool,
    /// Reported timeline.
    pub reported_tli: i32,
    /// Reported LSN.
    pub reported_lsn: String,
    /// Health: 1 good, 0 bad, -1 unknown.
    pub health: i32,
    /// The node's cluster name.
    pub nodecluster: String,
}

/// One row of `last_events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    /// Event id.
    pub eventid: i64,
    /// When, as text.
    pub eventtime: String,
    /// Formation.
    pub formationid: String,
    /// Node id.
    pub nodeid: i64,
    /// Group.
    pub groupid: i32,
    /// Node name.
    pub nodename: String,
    /// Host.
    pub nodehost: String,
    /// Port.
    pub nodeport: i32,
    /// Reported state.
    pub reportedstate: String,
    /// Goal state.
    pub goalstate: String,
    /// Reported sync state.
    pub reportedrepstate: Option<String>,
    /// Reported timeline.
    pub reportedtli: i32,
    /// Reported LSN.
    pub reportedlsn: String,
    /// Candidate priority.
    pub candidatepriority: Option<i32>,
    /// Replication quorum.
    pub replicationquorum: Option<bool>,
    /// What happened.
    pub description: Option<String>,
}

/// One row of `formation_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingRow {
    /// formation or node.
    pub context: String,
    /// Group.
    pub group_id: Option<i32>,
    /// Node id.
    pub node_id: Option<i64>,
    /// Node name.
    pub nodename: String,
    /// Setting name.
    pub setting: String,
    /// Value.
    pub value: String,
}

/// One row of `pgautofailover.formation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormationRow {
    /// Formation id.
    pub formation_id: String,
    /// pgsql or citus.
    pub kind: String,
    /// Database name.
    pub dbname: String,
    /// Whether secondaries are enabled.
    pub opt_secondary: bool,
    /// number_sync_standbys.
    pub number_sync_standbys: i32,
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, MonitorError> {
    row.try_get(index)
        .map_err(|e| MonitorError::Protocol(format!("column {index}: {e}")))
}

fn state(row: &Row, index: usize) -> Result<ReplicationState, MonitorError> {
    let name: String = get(row, index)?;
    name.parse()
        .map_err(|e: fsm::UnknownStateError| MonitorError::Protocol(e.to_string()))
}

fn port(value: i32) -> Result<u16, MonitorError> {
    vocab::port("port", i64::from(value)).map_err(refused_value)
}

/// A value the monitor sent that is outside the vocabulary.
fn refused_value(e: vocab::VocabError) -> MonitorError {
    MonitorError::Protocol(format!("the monitor sent an {e}"))
}

fn assignment(row: &Row) -> Result<Assignment, MonitorError> {
    let group_id: i32 = get(row, 1)?;
    if group_id < 0 {
        return Err(MonitorError::Protocol(format!(
            "the monitor sent an invalid group id {group_id}"
        )));
    }
    Ok(Assignment {
        node_id: vocab::node_id("node id", get(row, 0)?).map_err(refused_value)?,
        group_id,
        state: state(row, 2)?,
        candidate_priority: get(row, 3)?,
        replication_quorum: get(row, 4)?,
    })
}

fn node_address(row: &Row) -> Result<NodeAddress, MonitorError> {
    let lsn: String = get(row, 4)?;
    Ok(NodeAddress {
        node_id: vocab::node_id("node id", get(row, 0)?).map_err(refused_value)?,
        name: NodeName::parse(&get::<String>(row, 1)?).map_err(refused_value)?,
        host: Host::parse(&get::<String>(row, 2)?).map_err(refused_value)?,
        port: port(get(row, 3)?)?,
        lsn: lsn
            .parse()
            .map_err(|e: fsm::InvalidLsnError| MonitorError::Protocol(e.to_string()))?,
        is_primary: get(row, 5)?,
    })
}

/// Whether `names` has the shape of a `synchronous_standby_names` a monitor makes: standby
/// names, numbers, `ANY`/`FIRST`, parentheses, commas, spaces, `*` and double quotes only,
/// at most 8 kB.
fn plausible_standby_names(names: &str) -> bool {
    names.len() <= 8192
        && names
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _,()*\"".contains(&b))
}

/// The nodes of `rows` that are valid; the others are logged and left out, so that one bad
/// row cannot stop the keeper from managing the rest of its group.
fn valid_nodes(rows: &[Row]) -> Vec<NodeAddress> {
    rows.iter()
        .filter_map(|row| match node_address(row) {
            Ok(node) => Some(node),
            Err(e) => {
                tracing::error!(error = %e, "ignoring a node the monitor lists");
                None
            }
        })
        .collect()
}

const NODE_COLUMNS: &str =
    "node_id, node_name, node_host, node_port, node_lsn::text, node_is_primary";

impl Monitor {
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, MonitorError> {
        Monitor::bounded(self.client().query(sql, params)).await
    }

    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row, MonitorError> {
        self.rows(sql, params)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| MonitorError::Protocol(format!("no row from {sql}")))
    }

    /// Takes the lease the monitor grants (`fsm::lease`): `node_lease_timeout`, at most
    /// `node_considered_unhealthy_timeout`, declared on this connection so that every
    /// `node_active` on it renews the lease. None: the monitor grants no leases (a
    /// pg_auto_failover 2.0 monitor, or leases turned off with 0).
    pub async fn take_lease(&self) -> Result<Option<u64>, MonitorError> {
        let row = self
            .one(
                "SELECT (SELECT setting::bigint FROM pg_settings \
                          WHERE name = 'pgautofailover.node_lease_timeout'), \
                        (SELECT setting::bigint FROM pg_settings \
                          WHERE name = 'pgautofailover.node_considered_unhealthy_timeout')",
                &[],
            )
            .await?;
        let lease: Option<i64> = get(&row, 0)?;
        let unhealthy: Option<i64> = get(&row, 1)?;
        let Some(lease) = lease.filter(|l| *l > 0) else {
            return Ok(None);
        };
        let lease = unhealthy.map_or(lease, |u| lease.min(u)).max(1);
        Monitor::bounded(
            self.client()
                .batch_execute(&format!("SET pgautofailover.keeper_lease = {lease}")),
        )
        .await?;
        Ok(u64::try_from(lease).ok())
    }

    /// `register_node`: adds this node to a formation and returns its first goal.
    pub async fn register_node(&self, r: &Registration<'_>) -> Result<Registered, MonitorError> {
        use api::register_node as f;
        let sysid = i64::from_ne_bytes(r.system_identifier.to_ne_bytes());
        let port = i32::from(r.port);
        let mut params: [&(dyn ToSql + Sync); f::FUNCTION.args.len()] = [&0; _];
        params[f::FORMATION_ID.index] = &r.formation;
        params[f::NODE_HOST.index] = &r.host;
        params[f::NODE_PORT.index] = &port;
        params[f::DBNAME.index] = &r.dbname;
        params[f::NODE_NAME.index] = &r.name;
        params[f::SYSIDENTIFIER.index] = &sysid;
        params[f::DESIRED_NODE_ID.index] = &-1_i64;
        params[f::DESIRED_GROUP_ID.index] = &r.desired_group;
        params[f::INITIAL_GROUP_ROLE.index] = &"init";
        params[f::NODE_KIND.index] = &"standalone";
        params[f::CANDIDATE_PRIORITY.index] = &r.candidate_priority;
        params[f::REPLICATION_QUORUM.index] = &r.replication_quorum;
        params[f::NODE_CLUSTER.index] = &"default";
        let row = self.one(&f::FUNCTION.select(), &params).await?;
        let name: Option<String> = get(&row, 5)?;
        Ok(Registered {
            assignment: assignment(&row)?,
            name: name
                .map(|n| NodeName::parse(&n).map_err(refused_value))
                .transpose()?,
        })
    }

    /// `node_active`: the heartbeat. Reports this node's state and returns its goal. The
    /// statement is prepared once per connection.
    pub async fn node_active(&mut self, h: &Heartbeat<'_>) -> Result<Assignment, MonitorError> {
        let statement = match &self.node_active {
            Some(s) => s.clone(),
            None => {
                let sql = api::node_active::FUNCTION.select();
                let s = Monitor::bounded(self.client.prepare(&sql)).await?;
                self.node_active = Some(s.clone());
                s
            }
        };
        let state = h.state.as_str();
        let params = api::node_active::Arguments::<&(dyn ToSql + Sync)> {
            formation_id: &h.formation,
            node_id: &h.node_id,
            group_id: &h.group_id,
            current_group_role: &state,
            current_pg_is_running: &h.pg_is_running,
            current_tli: &h.tli,
            current_lsn: &h.lsn,
            current_rep_state: &h.sync_state,
        }
        .in_order();
        let rows = Monitor::bounded(self.client.query(&statement, &params)).await?;
        let row = rows
            .first()
            .ok_or_else(|| MonitorError::Protocol("node_active returned no row".to_string()))?;
        assignment(row)
    }

    /// `set_node_system_identifier`.
    pub async fn set_node_system_identifier(
        &self,
        node_id: i64,
        system_identifier: u64,
    ) -> Result<(), MonitorError> {
        let sysid = i64::from_ne_bytes(system_identifier.to_ne_bytes());
        self.rows(
            "SELECT node_id FROM pgautofailover.set_node_system_identifier($1, $2)",
            &[&node_id, &sysid],
        )
        .await
        .map(|_| ())
    }

    /// `get_primary`: the primary of a group, if any.
    pub async fn get_primary(
        &self,
        formation: &str,
        group: i32,
    ) -> Result<Option<NodeAddress>, MonitorError> {
        let rows = self
            .rows(
                "SELECT primary_node_id, primary_name, primary_host, primary_port, '0/0', true \
                 FROM pgautofailover.get_primary($1, $2) WHERE primary_node_id IS NOT NULL",
                &[&formation, &group],
            )
            .await;
        match rows {
            Ok(rows) => rows.first().map(node_address).transpose(),
            // 2.0 raises an error when the group has no primary
            Err(MonitorError::Refused { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `get_other_nodes(node_id)`: the valid ones (see [`valid_nodes`]).
    pub async fn get_other_nodes(&self, node_id: i64) -> Result<Vec<NodeAddress>, MonitorError> {
        let rows = self
            .rows(
                &format!("SELECT {NODE_COLUMNS} FROM pgautofailover.get_other_nodes($1)"),
                &[&node_id],
            )
            .await?;
        Ok(valid_nodes(&rows))
    }

    /// The most advanced node reporting its LSN for an election in `group`, other than
    /// `exclude`: highest (timeline, LSN), as the monitor's election ranks them (2.0's
    /// `get_most_advanced_standby` orders by LSN alone, and may name the caller itself).
    pub async fn most_advanced_reporting(
        &self,
        formation: &str,
        group: i32,
        exclude: i64,
    ) -> Result<Option<NodeAddress>, MonitorError> {
        let rows = self
            .rows(
                "SELECT node_id, nodename, nodehost, nodeport, reported_lsn::text, false \
                   FROM pgautofailover.current_state($1, $2) \
                  WHERE current_group_state = 'report_lsn' AND node_id <> $3 \
                  ORDER BY reported_tli DESC, reported_lsn DESC, health DESC, node_id \
                  LIMIT 1",
                &[&formation, &group, &exclude],
            )
            .await?;
        rows.first().map(node_address).transpose()
    }

    /// `synchronous_standby_names(formation, group)`: checked to be what a monitor makes
    /// (`ANY n (...)`, `FIRST n (...)`, `*` or empty) before the keeper hands it to Postgres.
    pub async fn synchronous_standby_names(
        &self,
        formation: &str,
        group: i32,
    ) -> Result<String, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.synchronous_standby_names($1, $2)",
                &[&formation, &group],
            )
            .await?;
        let names = get::<Option<String>>(&row, 0)?.unwrap_or_default();
        if !plausible_standby_names(&names) {
            return Err(MonitorError::Protocol(format!(
                "the monitor sent synchronous_standby_names {}, which is not a list of standbys",
                vocab::shown(&names)
            )));
        }
        Ok(names)
    }

    /// `remove_node(node_id, force)`.
    pub async fn remove_node(&self, node_id: i64, force: bool) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.remove_node($1::bigint, $2)",
                &[&node_id, &force],
            )
            .await?;
        get(&row, 0)
    }

    /// `remove_node(host, port, force)`.
    pub async fn remove_node_by_host(
        &self,
        host: &str,
        port: u16,
        force: bool,
    ) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.remove_node($1::text, $2::int, $3)",
                &[&host, &i32::from(port), &force],
            )
            .await?;
        get(&row, 0)
    }

    /// `perform_failover(formation, group)`.
    pub async fn perform_failover(&self, formation: &str, group: i32) -> Result<(), MonitorError> {
        self.rows(
            "SELECT pgautofailover.perform_failover($1, $2)",
            &[&formation, &group],
        )
        .await
        .map(|_| ())
    }

    /// `perform_promotion(formation, name)`.
    pub async fn perform_promotion(
        &self,
        formation: &str,
        name: &str,
    ) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.perform_promotion($1, $2)",
                &[&formation, &name],
            )
            .await?;
        get(&row, 0)
    }

    /// `start_maintenance(node_id)` / `stop_maintenance(node_id)`.
    pub async fn maintenance(&self, node_id: i64, start: bool) -> Result<bool, MonitorError> {
        let sql = if start {
            "SELECT pgautofailover.start_maintenance($1)"
        } else {
            "SELECT pgautofailover.stop_maintenance($1)"
        };
        let row = self.one(sql, &[&node_id]).await?;
        get(&row, 0)
    }

    /// `set_node_candidate_priority`.
    pub async fn set_candidate_priority(
        &self,
        formation: &str,
        name: &str,
        priority: i32,
    ) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.set_node_candidate_priority($1, $2, $3)",
                &[&formation, &name, &priority],
            )
            .await?;
        get(&row, 0)
    }

    /// `set_node_replication_quorum`.
    pub async fn set_replication_quorum(
        &self,
        formation: &str,
        name: &str,
        quorum: bool,
    ) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.set_node_replication_quorum($1, $2, $3)",
                &[&formation, &name, &quorum],
            )
            .await?;
        get(&row, 0)
    }

    /// `set_formation_number_sync_standbys`.
    pub async fn set_number_sync_standbys(
        &self,
        formation: &str,
        value: i32,
    ) -> Result<bool, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.set_formation_number_sync_standbys($1, $2)",
                &[&formation, &value],
            )
            .await?;
        get(&row, 0)
    }

    /// `update_node_metadata(node_id, name, host, port)`.
    pub async fn update_node_metadata(
        &self,
        node_id: i64,
        name: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<bool, MonitorError> {
        let port = port.map(i32::from);
        let row = self
            .one(
                "SELECT pgautofailover.update_node_metadata($1, $2, $3, $4)",
                &[&node_id, &name, &host, &port],
            )
            .await?;
        get(&row, 0)
    }

    /// `current_state(formation[, group])`, with whether each node's Postgres runs.
    pub async fn current_state(
        &self,
        formation: &str,
        group: Option<i32>,
    ) -> Result<Vec<NodeStateRow>, MonitorError> {
        let rows = self
            .rows(
                "SELECT s.formation_kind, s.nodename, s.nodehost, s.nodeport, s.group_id, \
                 s.node_id, s.current_group_state::text, s.assigned_group_state::text, \
                 s.candidate_priority, s.replication_quorum, s.reported_tli, \
                 s.reported_lsn::text, s.health, s.nodecluster \
                 FROM pgautofailover.current_state($1) s \
                 WHERE $2::int IS NULL OR s.group_id = $2 \
                 ORDER BY s.group_id, s.node_id",
                &[&formation, &group],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeStateRow {
                    formation_kind: get(row, 0)?,
                    nodename: get(row, 1)?,
                    nodehost: get(row, 2)?,
                    nodeport: get(row, 3)?,
                    group_id: get(row, 4)?,
                    node_id: get(row, 5)?,
                    current_group_state: get(row, 6)?,
                    assigned_group_state: get(row, 7)?,
                    candidate_priority: get(row, 8)?,
                    replication_quorum: get(row, 9)?,
                    reported_tli: get(row, 10)?,
                    reported_lsn: get(row, 11)?,
                    health: get(row, 12)?,
                    nodecluster: get(row, 13)?,
                })
            })
            .collect()
    }

    /// `last_events(formation[, group], count)`, oldest first.
    pub async fn last_events(
        &self,
        formation: &str,
        group: Option<i32>,
        count: i32,
    ) -> Result<Vec<EventRow>, MonitorError> {
        let rows = match group {
            Some(group) => {
                self.rows(
                    "SELECT eventid, eventtime::text, formationid, nodeid, groupid, nodename, \
                     nodehost, nodeport, reportedstate::text, goalstate::text, reportedrepstate, \
                     reportedtli, reportedlsn::text, candidatepriority, replicationquorum, \
                     description FROM pgautofailover.last_events($1, $2, $3)",
                    &[&formation, &group, &count],
                )
                .await?
            }
            None => {
                self.rows(
                    "SELECT eventid, eventtime::text, formationid, nodeid, groupid, nodename, \
                     nodehost, nodeport, reportedstate::text, goalstate::text, reportedrepstate, \
                     reportedtli, reportedlsn::text, candidatepriority, replicationquorum, \
                     description FROM pgautofailover.last_events($1, count => $2)",
                    &[&formation, &count],
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(EventRow {
                    eventid: get(row, 0)?,
                    eventtime: get(row, 1)?,
                    formationid: get(row, 2)?,
                    nodeid: get(row, 3)?,
                    groupid: get(row, 4)?,
                    nodename: get(row, 5)?,
                    nodehost: get(row, 6)?,
                    nodeport: get(row, 7)?,
                    reportedstate: get(row, 8)?,
                    goalstate: get(row, 9)?,
                    reportedrepstate: get(row, 10)?,
                    reportedtli: get(row, 11)?,
                    reportedlsn: get(row, 12)?,
                    candidatepriority: get(row, 13)?,
                    replicationquorum: get(row, 14)?,
                    description: get(row, 15)?,
                })
            })
            .collect()
    }

    /// `formation_settings(formation)`.
    pub async fn formation_settings(
        &self,
        formation: &str,
    ) -> Result<Vec<SettingRow>, MonitorError> {
        let rows = self
            .rows(
                "SELECT context, group_id, node_id, nodename, setting, value \
                 FROM pgautofailover.formation_settings($1)",
                &[&formation],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SettingRow {
                    context: get(row, 0)?,
                    group_id: get(row, 1)?,
                    node_id: get(row, 2)?,
                    nodename: get::<Option<String>>(row, 3)?.unwrap_or_default(),
                    setting: get(row, 4)?,
                    value: get::<Option<String>>(row, 5)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// `formation_uri(formation, 'default', sslmode, sslrootcert, sslcrl)`.
    pub async fn formation_uri(
        &self,
        formation: &str,
        sslmode: &str,
        sslrootcert: &str,
        sslcrl: &str,
    ) -> Result<String, MonitorError> {
        let row = self
            .one(
                "SELECT pgautofailover.formation_uri($1, 'default', $2, $3, $4)",
                &[&formation, &sslmode, &sslrootcert, &sslcrl],
            )
            .await?;
        Ok(get::<Option<String>>(&row, 0)?.unwrap_or_default())
    }

    /// The formation row, if it exists.
    pub async fn formation(&self, formation: &str) -> Result<Option<FormationRow>, MonitorError> {
        let rows = self
            .rows(
                "SELECT formationid, kind, dbname::text, opt_secondary, number_sync_standbys \
                 FROM pgautofailover.formation WHERE formationid = $1",
                &[&formation],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(FormationRow {
                    formation_id: get(row, 0)?,
                    kind: get(row, 1)?,
                    dbname: get(row, 2)?,
                    opt_secondary: get(row, 3)?,
                    number_sync_standbys: get(row, 4)?,
                })
            })
            .transpose()
    }

    /// `create_formation`.
    pub async fn create_formation(&self, f: &FormationRow) -> Result<FormationRow, MonitorError> {
        let row = self
            .one(
                "SELECT formation_id, kind, dbname::text, opt_secondary, number_sync_standbys \
                 FROM pgautofailover.create_formation($1, $2, $3::text::name, $4, $5)",
                &[
                    &f.formation_id,
                    &f.kind,
                    &f.dbname,
                    &f.opt_secondary,
                    &f.number_sync_standbys,
                ],
            )
            .await?;
        Ok(FormationRow {
            formation_id: get(&row, 0)?,
            kind: get(&row, 1)?,
            dbname: get(&row, 2)?,
            opt_secondary: get(&row, 3)?,
            number_sync_standbys: get(&row, 4)?,
        })
    }

    /// `drop_formation`.
    pub async fn drop_formation(&self, formation: &str) -> Result<(), MonitorError> {
        self.rows("SELECT pgautofailover.drop_formation($1)", &[&formation])
            .await
            .map(|_| ())
    }

    /// `enable_secondary` / `disable_secondary`.
    pub async fn set_secondary(&self, formation: &str, enable: bool) -> Result<(), MonitorError> {
        let sql = if enable {
            "SELECT pgautofailover.enable_secondary($1)"
        } else {
            "SELECT pgautofailover.disable_secondary($1)"
        };
        self.rows(sql, &[&formation]).await.map(|_| ())
    }

    /// The node row of `name` in `formation`: (node id, group id, host, port).
    pub async fn node_by_name(
        &self,
        formation: &str,
        name: &str,
    ) -> Result<Option<(i64, i32, String, u16)>, MonitorError> {
        let rows = self
            .rows(
                "SELECT nodeid, groupid, nodehost, nodeport FROM pgautofailover.node \
                 WHERE formationid = $1 AND nodename = $2",
                &[&formation, &name],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok((
                    get(row, 0)?,
                    get(row, 1)?,
                    get(row, 2)?,
                    port(get(row, 3)?)?,
                ))
            })
            .transpose()
    }

    /// A node's candidate priority and replication quorum.
    pub async fn node_settings(&self, node_id: i64) -> Result<Option<(i32, bool)>, MonitorError> {
        let rows = self
            .rows(
                "SELECT candidatepriority, replicationquorum FROM pgautofailover.node WHERE nodeid = $1",
                &[&node_id],
            )
            .await?;
        rows.first()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
            .transpose()
    }
}

impl Monitor {
    /// The system identifier the monitor recorded for a node, if any.
    pub async fn node_system_identifier(&self, node_id: i64) -> Result<Option<u64>, MonitorError> {
        let rows = self
            .rows(
                "SELECT sysidentifier FROM pgautofailover.node WHERE nodeid = $1",
                &[&node_id],
            )
            .await?;
        Ok(match rows.first() {
            Some(row) => get::<Option<i64>>(row, 0)?.map(|v| u64::from_ne_bytes(v.to_ne_bytes())),
            None => None,
        })
    }
}

impl Monitor {
    /// Every formation id, sorted.
    pub async fn formation_ids(&self) -> Result<Vec<String>, MonitorError> {
        self.rows(
            "SELECT formationid FROM pgautofailover.formation ORDER BY formationid",
            &[],
        )
        .await?
        .iter()
        .map(|row| get(row, 0))
        .collect()
    }
}

impl Monitor {
    /// `last_events` as the JSON array the server builds (2.0's `show events --json`).
    pub async fn last_events_json(
        &self,
        formation: &str,
        group: Option<i32>,
        count: i32,
    ) -> Result<serde_json::Value, MonitorError> {
        let row = match group {
            Some(group) => {
                self.one(
                    "SELECT coalesce(jsonb_agg(e ORDER BY e.eventid), '[]')::text \
                     FROM pgautofailover.last_events($1, $2, $3) e",
                    &[&formation, &group, &count],
                )
                .await?
            }
            None => {
                self.one(
                    "SELECT coalesce(jsonb_agg(e ORDER BY e.eventid), '[]')::text \
                     FROM pgautofailover.last_events($1, count => $2) e",
                    &[&formation, &count],
                )
                .await?
            }
        };
        let text: String = get(&row, 0)?;
        serde_json::from_str(&text).map_err(|e| MonitorError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lists_of_standbys_are_taken_as_synchronous_standby_names() {
        for ok in [
            "",
            "*",
            "ANY 1 (pgautofailover_standby_2, pgautofailover_standby_3)",
            "FIRST 2 (\"pgautofailover_standby_2\")",
        ] {
            assert!(plausible_standby_names(ok), "{ok}");
        }
        for bad in ["ANY 1 (a)'; DROP", "a\nb", "x = 'y'", &"a".repeat(9000)] {
            assert!(!plausible_standby_names(bad), "{bad}");
        }
    }
}
