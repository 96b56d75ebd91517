//! The catalogue of the monitor's C functions: for each, its SQL name, its C symbol, its
//! arguments in order with their SQL types, and its result columns, as
//! `sql/pgautofailover--2.0.sql` declares them (a test reads that file and compares). The
//! extension reads its arguments through these typed [`Arg`]s, the keeper and the test and
//! bench harnesses build their calls from [`Function::call`].

use super::types;
use super::{Arg, Column, Function, SqlType};

/// Every C function of the extension.
pub const FUNCTIONS: [&Function; 20] = [
    &create_formation::FUNCTION,
    &drop_formation::FUNCTION,
    &enable_secondary::FUNCTION,
    &disable_secondary::FUNCTION,
    &set_formation_number_sync_standbys::FUNCTION,
    &register_node::FUNCTION,
    &node_active::FUNCTION,
    &update_node_metadata::FUNCTION,
    &get_nodes::FUNCTION,
    &get_primary::FUNCTION,
    &get_other_nodes::FUNCTION,
    &remove_node_by_nodeid::FUNCTION,
    &remove_node_by_host::FUNCTION,
    &perform_failover::FUNCTION,
    &perform_promotion::FUNCTION,
    &start_maintenance::FUNCTION,
    &stop_maintenance::FUNCTION,
    &set_node_candidate_priority::FUNCTION,
    &set_node_replication_quorum::FUNCTION,
    &synchronous_standby_names::FUNCTION,
];

/// `pgautofailover.create_formation` (C symbol `pgaf_create_formation`).
pub mod create_formation {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `kind`.
    pub const KIND: Arg<Text> = Arg::new(1, "kind");
    /// `dbname`.
    pub const DBNAME: Arg<Name> = Arg::new(2, "dbname");
    /// `opt_secondary`.
    pub const OPT_SECONDARY: Arg<Bool> = Arg::new(3, "opt_secondary");
    /// `number_sync_standbys`.
    pub const NUMBER_SYNC_STANDBYS: Arg<Int> = Arg::new(4, "number_sync_standbys");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "create_formation",
        symbol: "pgaf_create_formation",
        args: &[
            FORMATION_ID.info(),
            KIND.info(),
            DBNAME.info(),
            OPT_SECONDARY.info(),
            NUMBER_SYNC_STANDBYS.info(),
        ],
        out: &[
            Column::new("formation_id", SqlType::Text),
            Column::new("kind", SqlType::Text),
            Column::new("dbname", SqlType::Name),
            Column::new("opt_secondary", SqlType::Bool),
            Column::new("number_sync_standbys", SqlType::Int),
        ],
    };
}

/// `pgautofailover.drop_formation` (C symbol `pgaf_drop_formation`).
pub mod drop_formation {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "drop_formation",
        symbol: "pgaf_drop_formation",
        args: &[FORMATION_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.enable_secondary` (C symbol `pgaf_enable_secondary`).
pub mod enable_secondary {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "enable_secondary",
        symbol: "pgaf_enable_secondary",
        args: &[FORMATION_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.disable_secondary` (C symbol `pgaf_disable_secondary`).
pub mod disable_secondary {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "disable_secondary",
        symbol: "pgaf_disable_secondary",
        args: &[FORMATION_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.set_formation_number_sync_standbys` (C symbol `pgaf_set_formation_number_sync_standbys`).
pub mod set_formation_number_sync_standbys {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `number_sync_standbys`.
    pub const NUMBER_SYNC_STANDBYS: Arg<Int> = Arg::new(1, "number_sync_standbys");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "set_formation_number_sync_standbys",
        symbol: "pgaf_set_formation_number_sync_standbys",
        args: &[FORMATION_ID.info(), NUMBER_SYNC_STANDBYS.info()],
        out: &[],
    };
}

/// `pgautofailover.register_node` (C symbol `pgaf_register_node`).
pub mod register_node {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `node_host`.
    pub const NODE_HOST: Arg<Text> = Arg::new(1, "node_host");
    /// `node_port`.
    pub const NODE_PORT: Arg<Int> = Arg::new(2, "node_port");
    /// `dbname`.
    pub const DBNAME: Arg<Name> = Arg::new(3, "dbname");
    /// `node_name`.
    pub const NODE_NAME: Arg<Text> = Arg::new(4, "node_name");
    /// `sysidentifier`.
    pub const SYSIDENTIFIER: Arg<BigInt> = Arg::new(5, "sysidentifier");
    /// `desired_node_id`.
    pub const DESIRED_NODE_ID: Arg<BigInt> = Arg::new(6, "desired_node_id");
    /// `desired_group_id`.
    pub const DESIRED_GROUP_ID: Arg<Int> = Arg::new(7, "desired_group_id");
    /// `initial_group_role`.
    pub const INITIAL_GROUP_ROLE: Arg<State> = Arg::new(8, "initial_group_role");
    /// `node_kind`.
    pub const NODE_KIND: Arg<Text> = Arg::new(9, "node_kind");
    /// `candidate_priority`.
    pub const CANDIDATE_PRIORITY: Arg<Int> = Arg::new(10, "candidate_priority");
    /// `replication_quorum`.
    pub const REPLICATION_QUORUM: Arg<Bool> = Arg::new(11, "replication_quorum");
    /// `node_cluster`.
    pub const NODE_CLUSTER: Arg<Text> = Arg::new(12, "node_cluster");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "register_node",
        symbol: "pgaf_register_node",
        args: &[
            FORMATION_ID.info(),
            NODE_HOST.info(),
            NODE_PORT.info(),
            DBNAME.info(),
            NODE_NAME.info(),
            SYSIDENTIFIER.info(),
            DESIRED_NODE_ID.info(),
            DESIRED_GROUP_ID.info(),
            INITIAL_GROUP_ROLE.info(),
            NODE_KIND.info(),
            CANDIDATE_PRIORITY.info(),
            REPLICATION_QUORUM.info(),
            NODE_CLUSTER.info(),
        ],
        out: &[
            Column::new("assigned_node_id", SqlType::BigInt),
            Column::new("assigned_group_id", SqlType::Int),
            Column::new("assigned_group_state", SqlType::State),
            Column::new("assigned_candidate_priority", SqlType::Int),
            Column::new("assigned_replication_quorum", SqlType::Bool),
            Column::new("assigned_node_name", SqlType::Text),
        ],
    };
}

/// `pgautofailover.node_active` (C symbol `pgaf_node_active`).
pub mod node_active {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `node_id`.
    pub const NODE_ID: Arg<BigInt> = Arg::new(1, "node_id");
    /// `group_id`.
    pub const GROUP_ID: Arg<Int> = Arg::new(2, "group_id");
    /// `current_group_role`.
    pub const CURRENT_GROUP_ROLE: Arg<State> = Arg::new(3, "current_group_role");
    /// `current_pg_is_running`.
    pub const CURRENT_PG_IS_RUNNING: Arg<Bool> = Arg::new(4, "current_pg_is_running");
    /// `current_tli`.
    pub const CURRENT_TLI: Arg<Int> = Arg::new(5, "current_tli");
    /// `current_lsn`.
    pub const CURRENT_LSN: Arg<PgLsn> = Arg::new(6, "current_lsn");
    /// `current_rep_state`.
    pub const CURRENT_REP_STATE: Arg<Text> = Arg::new(7, "current_rep_state");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "node_active",
        symbol: "pgaf_node_active",
        args: &[
            FORMATION_ID.info(),
            NODE_ID.info(),
            GROUP_ID.info(),
            CURRENT_GROUP_ROLE.info(),
            CURRENT_PG_IS_RUNNING.info(),
            CURRENT_TLI.info(),
            CURRENT_LSN.info(),
            CURRENT_REP_STATE.info(),
        ],
        out: &[
            Column::new("assigned_node_id", SqlType::BigInt),
            Column::new("assigned_group_id", SqlType::Int),
            Column::new("assigned_group_state", SqlType::State),
            Column::new("assigned_candidate_priority", SqlType::Int),
            Column::new("assigned_replication_quorum", SqlType::Bool),
        ],
    };

    /// The arguments of one call, by name, as values of any one type (SQL parameters, SQL
    /// expressions); [`Arguments::in_order`] places them where the declaration puts them.
    #[derive(Debug, Clone, Copy)]
    pub struct Arguments<T> {
        /// `formation_id`.
        pub formation_id: T,
        /// `node_id`.
        pub node_id: T,
        /// `group_id`.
        pub group_id: T,
        /// `current_group_role`.
        pub current_group_role: T,
        /// `current_pg_is_running`.
        pub current_pg_is_running: T,
        /// `current_tli`.
        pub current_tli: T,
        /// `current_lsn`.
        pub current_lsn: T,
        /// `current_rep_state`.
        pub current_rep_state: T,
    }

    impl<T: Copy> Arguments<T> {
        /// The values in the declared order.
        pub fn in_order(self) -> [T; 8] {
            let mut out = [self.formation_id; 8];
            out[NODE_ID.index] = self.node_id;
            out[GROUP_ID.index] = self.group_id;
            out[CURRENT_GROUP_ROLE.index] = self.current_group_role;
            out[CURRENT_PG_IS_RUNNING.index] = self.current_pg_is_running;
            out[CURRENT_TLI.index] = self.current_tli;
            out[CURRENT_LSN.index] = self.current_lsn;
            out[CURRENT_REP_STATE.index] = self.current_rep_state;
            out[FORMATION_ID.index] = self.formation_id;
            out
        }
    }
}

/// `pgautofailover.update_node_metadata` (C symbol `pgaf_update_node_metadata`).
pub mod update_node_metadata {
    use super::types::*;
    use super::{Arg, Function};

    /// `node_id`.
    pub const NODE_ID: Arg<BigInt> = Arg::new(0, "node_id");
    /// `node_name`.
    pub const NODE_NAME: Arg<Text> = Arg::new(1, "node_name");
    /// `node_host`.
    pub const NODE_HOST: Arg<Text> = Arg::new(2, "node_host");
    /// `node_port`.
    pub const NODE_PORT: Arg<Int> = Arg::new(3, "node_port");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "update_node_metadata",
        symbol: "pgaf_update_node_metadata",
        args: &[
            NODE_ID.info(),
            NODE_NAME.info(),
            NODE_HOST.info(),
            NODE_PORT.info(),
        ],
        out: &[],
    };
}

/// `pgautofailover.get_nodes` (C symbol `pgaf_get_nodes`).
pub mod get_nodes {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `group_id`.
    pub const GROUP_ID: Arg<Int> = Arg::new(1, "group_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "get_nodes",
        symbol: "pgaf_get_nodes",
        args: &[FORMATION_ID.info(), GROUP_ID.info()],
        out: &[
            Column::new("node_id", SqlType::BigInt),
            Column::new("node_name", SqlType::Text),
            Column::new("node_host", SqlType::Text),
            Column::new("node_port", SqlType::Int),
            Column::new("node_lsn", SqlType::PgLsn),
            Column::new("node_is_primary", SqlType::Bool),
        ],
    };
}

/// `pgautofailover.get_primary` (C symbol `pgaf_get_primary`).
pub mod get_primary {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `group_id`.
    pub const GROUP_ID: Arg<Int> = Arg::new(1, "group_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "get_primary",
        symbol: "pgaf_get_primary",
        args: &[FORMATION_ID.info(), GROUP_ID.info()],
        out: &[
            Column::new("primary_node_id", SqlType::BigInt),
            Column::new("primary_name", SqlType::Text),
            Column::new("primary_host", SqlType::Text),
            Column::new("primary_port", SqlType::Int),
        ],
    };
}

/// `pgautofailover.get_other_nodes` (C symbol `pgaf_get_other_nodes`).
pub mod get_other_nodes {
    use super::types::*;
    use super::{Arg, Column, Function, SqlType};

    /// `nodeid`.
    pub const NODEID: Arg<BigInt> = Arg::new(0, "nodeid");
    /// `current_state`.
    pub const CURRENT_STATE: Arg<State> = Arg::new(1, "current_state");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "get_other_nodes",
        symbol: "pgaf_get_other_nodes",
        args: &[NODEID.info(), CURRENT_STATE.info()],
        out: &[
            Column::new("node_id", SqlType::BigInt),
            Column::new("node_name", SqlType::Text),
            Column::new("node_host", SqlType::Text),
            Column::new("node_port", SqlType::Int),
            Column::new("node_lsn", SqlType::PgLsn),
            Column::new("node_is_primary", SqlType::Bool),
        ],
    };
}

/// `pgautofailover.remove_node` (C symbol `pgaf_remove_node_by_nodeid`).
pub mod remove_node_by_nodeid {
    use super::types::*;
    use super::{Arg, Function};

    /// `node_id`.
    pub const NODE_ID: Arg<BigInt> = Arg::new(0, "node_id");
    /// `force`.
    pub const FORCE: Arg<Bool> = Arg::new(1, "force");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "remove_node",
        symbol: "pgaf_remove_node_by_nodeid",
        args: &[NODE_ID.info(), FORCE.info()],
        out: &[],
    };
}

/// `pgautofailover.remove_node` (C symbol `pgaf_remove_node_by_host`).
pub mod remove_node_by_host {
    use super::types::*;
    use super::{Arg, Function};

    /// `node_host`.
    pub const NODE_HOST: Arg<Text> = Arg::new(0, "node_host");
    /// `node_port`.
    pub const NODE_PORT: Arg<Int> = Arg::new(1, "node_port");
    /// `force`.
    pub const FORCE: Arg<Bool> = Arg::new(2, "force");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "remove_node",
        symbol: "pgaf_remove_node_by_host",
        args: &[NODE_HOST.info(), NODE_PORT.info(), FORCE.info()],
        out: &[],
    };
}

/// `pgautofailover.perform_failover` (C symbol `pgaf_perform_failover`).
pub mod perform_failover {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `group_id`.
    pub const GROUP_ID: Arg<Int> = Arg::new(1, "group_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "perform_failover",
        symbol: "pgaf_perform_failover",
        args: &[FORMATION_ID.info(), GROUP_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.perform_promotion` (C symbol `pgaf_perform_promotion`).
pub mod perform_promotion {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `node_name`.
    pub const NODE_NAME: Arg<Text> = Arg::new(1, "node_name");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "perform_promotion",
        symbol: "pgaf_perform_promotion",
        args: &[FORMATION_ID.info(), NODE_NAME.info()],
        out: &[],
    };
}

/// `pgautofailover.start_maintenance` (C symbol `pgaf_start_maintenance`).
pub mod start_maintenance {
    use super::types::*;
    use super::{Arg, Function};

    /// `node_id`.
    pub const NODE_ID: Arg<BigInt> = Arg::new(0, "node_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "start_maintenance",
        symbol: "pgaf_start_maintenance",
        args: &[NODE_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.stop_maintenance` (C symbol `pgaf_stop_maintenance`).
pub mod stop_maintenance {
    use super::types::*;
    use super::{Arg, Function};

    /// `node_id`.
    pub const NODE_ID: Arg<BigInt> = Arg::new(0, "node_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "stop_maintenance",
        symbol: "pgaf_stop_maintenance",
        args: &[NODE_ID.info()],
        out: &[],
    };
}

/// `pgautofailover.set_node_candidate_priority` (C symbol `pgaf_set_node_candidate_priority`).
pub mod set_node_candidate_priority {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `node_name`.
    pub const NODE_NAME: Arg<Text> = Arg::new(1, "node_name");
    /// `candidate_priority`.
    pub const CANDIDATE_PRIORITY: Arg<Int> = Arg::new(2, "candidate_priority");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "set_node_candidate_priority",
        symbol: "pgaf_set_node_candidate_priority",
        args: &[
            FORMATION_ID.info(),
            NODE_NAME.info(),
            CANDIDATE_PRIORITY.info(),
        ],
        out: &[],
    };
}

/// `pgautofailover.set_node_replication_quorum` (C symbol `pgaf_set_node_replication_quorum`).
pub mod set_node_replication_quorum {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `node_name`.
    pub const NODE_NAME: Arg<Text> = Arg::new(1, "node_name");
    /// `replication_quorum`.
    pub const REPLICATION_QUORUM: Arg<Bool> = Arg::new(2, "replication_quorum");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "set_node_replication_quorum",
        symbol: "pgaf_set_node_replication_quorum",
        args: &[
            FORMATION_ID.info(),
            NODE_NAME.info(),
            REPLICATION_QUORUM.info(),
        ],
        out: &[],
    };
}

/// `pgautofailover.synchronous_standby_names` (C symbol `pgaf_synchronous_standby_names`).
pub mod synchronous_standby_names {
    use super::types::*;
    use super::{Arg, Function};

    /// `formation_id`.
    pub const FORMATION_ID: Arg<Text> = Arg::new(0, "formation_id");
    /// `group_id`.
    pub const GROUP_ID: Arg<Int> = Arg::new(1, "group_id");
    /// The function.
    pub const FUNCTION: Function = Function {
        name: "synchronous_standby_names",
        symbol: "pgaf_synchronous_standby_names",
        args: &[FORMATION_ID.info(), GROUP_ID.info()],
        out: &[],
    };
}
