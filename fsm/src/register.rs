//! Where a registering node goes and which state it starts in (`register_node` in 2.0).
//!
//! Only plain Postgres formations are supported: every node joins group 0. The first node with
//! a non-zero candidate priority becomes `single`; later nodes are standbys (`wait_standby`).

use crate::group::{Group, MAX_USER_CANDIDATE_PRIORITY};
use crate::model::{Formation, FormationKind};
use crate::vocab::{self, ClusterName, FormationId, Host, NodeName, PgIdentifier};
use crate::{FsmError, ReplicationState as S};

/// A `register_node()` call, validated field by field by [`Registration::check`] (which
/// [`plan`] calls first).
#[derive(Debug, Clone)]
pub struct Registration {
    /// `node_host`.
    pub host: String,
    /// `node_port`.
    pub port: i32,
    /// `dbname`.
    pub dbname: String,
    /// `node_name` ('' lets the monitor name it `node_<id>`).
    pub name: String,
    /// `desired_node_id` (-1: the next free id).
    pub desired_node_id: i64,
    /// `node_cluster`.
    pub node_cluster: String,
    /// `desired_group_id` (-1: let the monitor choose).
    pub desired_group_id: i32,
    /// `initial_group_role`: `init` lets the monitor choose, anything else must match.
    pub initial_state: S,
    /// `node_kind`: standalone, coordinator or worker.
    pub node_kind: String,
    /// `candidate_priority`.
    pub candidate_priority: i32,
}

/// What registering the node changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The group the node joins.
    pub group_id: i32,
    /// Its first goal state.
    pub goal: S,
    /// The formation's kind changes to this (first node of an empty formation).
    pub set_kind: Option<FormationKind>,
    /// The formation's dbname changes to this (first node of an empty formation).
    pub set_dbname: Option<String>,
}

/// What a new node's registration could collide with, as the store found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// The node registered at the same host and port (its label) and its formation.
    pub endpoint: Option<(String, String)>,
    /// The requested name is taken in the formation.
    pub name: bool,
    /// The requested node id is taken.
    pub node_id: bool,
}

/// Refuses a registration whose host and port, name or node id is taken (23505); nothing is
/// stored then.
pub fn check_unique(
    request: &Registration,
    formation_id: &str,
    taken: &Taken,
) -> Result<(), FsmError> {
    if let Some((label, other)) = &taken.endpoint {
        return Err(FsmError::AlreadyExists {
            message: format!(
                "node {}:{} is already registered as {label} in formation \"{other}\"",
                request.host, request.port
            ),
            hint: Some(
                "Remove it first (pg_autoctl drop node), or register another host or port."
                    .to_string(),
            ),
        });
    }
    if !request.name.is_empty() && taken.name {
        return Err(FsmError::AlreadyExists {
            message: format!(
                "a node named \"{}\" is already registered in formation \"{formation_id}\"",
                request.name
            ),
            hint: Some("Choose another --name.".to_string()),
        });
    }
    if request.desired_node_id > 0 && taken.node_id {
        return Err(FsmError::AlreadyExists {
            message: format!("node id {} is already in use", request.desired_node_id),
            hint: None,
        });
    }
    Ok(())
}

/// Decides group and initial state for a new node. `formation_node_count` counts every node of
/// the formation; `group` holds group 0 as it is before the node joins.
pub fn plan(
    formation: &Formation,
    formation_node_count: usize,
    group: &Group,
    request: &Registration,
) -> Result<Plan, FsmError> {
    request.check()?;
    let endpoint = format!("{}:{}", request.host, request.port);
    if !(0..=MAX_USER_CANDIDATE_PRIORITY).contains(&request.candidate_priority) {
        return Err(FsmError::invalid(format!(
            "invalid value for candidate_priority \"{}\": expected an integer value between 0 \
             and {MAX_USER_CANDIDATE_PRIORITY}",
            request.candidate_priority
        )));
    }
    let kind = match request.node_kind.as_str() {
        "" | "unknown" | "standalone" => FormationKind::Pgsql,
        "coordinator" | "worker" => {
            return Err(FsmError::NotSupported(format!(
                "node {endpoint} of kind \"{}\" can not be registered: Citus formations are not \
                 supported by this monitor",
                request.node_kind
            )));
        }
        other => {
            return Err(FsmError::invalid(format!(
                "unknown node kind \"{other}\": expected standalone, coordinator or worker"
            )));
        }
    };
    if request.desired_group_id > 0 {
        return Err(FsmError::invalid(format!(
            "node {endpoint} can not be registered in group {} in formation \"{}\" of type \
             pgsql: in a pgsql formation there can be only one group, with groupId 0",
            request.desired_group_id, formation.id
        )));
    }

    let empty_formation = formation_node_count == 0;
    let set_kind = if formation.kind != kind {
        if !empty_formation {
            return Err(FsmError::not_ready(
                format!(
                    "node {endpoint} of kind \"{}\" can not be registered in formation \"{}\" of \
                     kind \"{}\"",
                    request.node_kind,
                    formation.id,
                    formation.kind.as_str()
                ),
                None,
            ));
        }
        Some(kind)
    } else {
        None
    };
    let set_dbname = if formation.dbname != request.dbname {
        if !empty_formation {
            return Err(FsmError::not_ready(
                format!(
                    "node {endpoint} with dbname \"{}\" can not be registered in formation \
                     \"{}\" which expects dbname \"{}\"",
                    request.dbname, formation.id, formation.dbname
                ),
                Some("Use the formation's dbname, or another formation."),
            ));
        }
        Some(request.dbname.clone())
    } else {
        None
    };

    let goal = initial_state(formation, group, request, &endpoint)?;
    if request.initial_state != S::Init && request.initial_state != goal {
        return Err(FsmError::not_ready(
            format!(
                "node {endpoint} can not be registered in state {}, it should be in state {goal}",
                request.initial_state
            ),
            None,
        ));
    }
    Ok(Plan {
        group_id: 0,
        goal,
        set_kind,
        set_dbname,
    })
}

impl Registration {
    /// Checks every value against the vocabulary ([`crate::vocab`]): the host other nodes will
    /// write into their `pg_hba.conf` and connection strings, the port, names and ids. Nothing
    /// is looked up yet, so a refused value is never stored nor searched for.
    pub fn check(&self) -> Result<(), FsmError> {
        check_endpoint(&self.host, i64::from(self.port))?;
        PgIdentifier::parse(&self.dbname).map_err(|e| e.for_field("dbname"))?;
        if !self.name.is_empty() {
            NodeName::parse(&self.name).map_err(|e| e.for_field("node_name"))?;
        }
        if self.desired_node_id != -1 {
            vocab::node_id("desired_node_id", self.desired_node_id)
                .map_err(|e| FsmError::invalid(format!("{e}, or -1 for the next free one")))?;
        }
        if self.desired_group_id < -1 {
            return Err(FsmError::invalid(format!(
                "invalid desired_group_id {}: a group id is 0 or more, or -1 to let the monitor \
                 choose",
                self.desired_group_id
            )));
        }
        ClusterName::parse(&self.node_cluster).map_err(|e| e.for_field("node_cluster"))?;
        Ok(())
    }
}

/// Checks a node's host and port, as `register_node()` and `update_node_metadata()` take them.
pub fn check_endpoint(host: &str, port: i64) -> Result<(), FsmError> {
    Host::parse(host).map_err(|e| e.for_field("node_host"))?;
    vocab::port("node_port", port)?;
    Ok(())
}

/// Checks what `update_node_metadata()` sets.
pub fn check_metadata(name: &str, host: &str, port: i64) -> Result<(), FsmError> {
    NodeName::parse(name).map_err(|e| e.for_field("node_name"))?;
    check_endpoint(host, port)
}

/// Checks a new formation: its id, kind, database and `number_sync_standbys`; returns the
/// kind.
pub fn check_new_formation(
    id: &str,
    kind: &str,
    dbname: &str,
    number_sync_standbys: i32,
) -> Result<FormationKind, FsmError> {
    FormationId::parse(id).map_err(|e| e.for_field("formation_id"))?;
    let kind = FormationKind::parse(kind).ok_or_else(|| {
        FsmError::invalid(format!(
            "unknown formation kind {}: expected pgsql or citus",
            vocab::shown(kind)
        ))
    })?;
    PgIdentifier::parse(dbname).map_err(|e| e.for_field("dbname"))?;
    if number_sync_standbys < 0 {
        return Err(FsmError::InvalidValue {
            message: format!("invalid value for number_sync_standbys: \"{number_sync_standbys}\""),
        });
    }
    Ok(kind)
}

fn initial_state(
    formation: &Formation,
    group: &Group,
    request: &Registration,
    endpoint: &str,
) -> Result<S, FsmError> {
    if group.member_count() == 0 {
        if request.candidate_priority > 0 {
            return Ok(S::Single);
        }
        return Err(FsmError::invalid(format!(
            "node {endpoint} can not be the first node of group 0 in formation \"{}\" with \
             candidate priority 0: the first node becomes the primary",
            formation.id
        )));
    }
    if !formation.opt_secondary {
        return Err(FsmError::not_ready(
            format!(
                "Formation \"{}\" does not allow secondary nodes",
                formation.id
            ),
            Some("use pg_autoctl enable secondary"),
        ));
    }
    if group.writable_member().is_some() || group.candidate_being_promoted().is_some() {
        return Ok(S::WaitStandby);
    }
    // Only priority-0 nodes are left, waiting in report_lsn: the newcomer can copy from them
    // and become a candidate.
    let upstream = group
        .members()
        .any(|n| n.candidate_priority == 0 && n.is_converged(S::ReportLsn));
    if upstream {
        return Ok(S::ReportLsn);
    }
    Err(FsmError::RetryLater {
        message: format!(
            "couldn't find the primary node in formation \"{}\", group {}",
            formation.id, group.group_id
        ),
        hint: Some("Retry registering in a moment".to_string()),
    })
}

/// After a standby joined: the second quorum standby turns `number_sync_standbys` from 0 to 1,
/// so that losing one standby no longer stops writes. Returns whether it changed.
pub fn adjust_number_sync_standbys(group: &mut Group, new_node: crate::NodeId) -> bool {
    if group.formation.number_sync_standbys != 0
        || group.get(new_node).map(|n| n.goal) != Some(S::WaitStandby)
    {
        return false;
    }
    let Some(primary) = group.writable_member() else {
        return false;
    };
    let quorum_standbys = group
        .other_ids(primary)
        .iter()
        .filter_map(|id| group.get(*id))
        .filter(|n| n.replication_quorum)
        .count();
    let total = group.other_ids(primary).len();
    if quorum_standbys == 2 {
        group.set_number_sync_standbys(
            1,
            format!(
                "Setting number_sync_standbys to 1 for formation {} now that we have \
                 {quorum_standbys}/{total} standby nodes set with replication-quorum.",
                group.formation.id
            ),
        );
        return true;
    }
    false
}
