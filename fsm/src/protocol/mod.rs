//! The contract between keepers and the monitor, written once: the SQL functions both sides
//! call, with their arguments in order and typed ([`api`]); the heartbeat's answer
//! ([`Assignment`]); the names that travel between them (standbys' replication slots and
//! application names); and the error codes after which a keeper tries again. The extension,
//! the keeper's monitor client, `tests/` and `bench/` use it; a test checks
//! `sql/pgautofailover--2.0.sql` against it.

pub mod api;

use std::marker::PhantomData;

use crate::ReplicationState;
use crate::error::ErrorClass;

/// The SQL types of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `text`.
    Text,
    /// `name`.
    Name,
    /// `int`.
    Int,
    /// `bigint`.
    BigInt,
    /// `bool`.
    Bool,
    /// `pg_lsn`.
    PgLsn,
    /// `pgautofailover.replication_state`.
    State,
}

impl SqlType {
    /// The type as `sql/` spells it.
    pub const fn sql(self) -> &'static str {
        match self {
            SqlType::Text => "text",
            SqlType::Name => "name",
            SqlType::Int => "int",
            SqlType::BigInt => "bigint",
            SqlType::Bool => "bool",
            SqlType::PgLsn => "pg_lsn",
            SqlType::State => "pgautofailover.replication_state",
        }
    }

    /// A parameter placeholder `$n` of this type in a call: the extension's own types travel
    /// as text and are cast on the server, so that a call works whatever their OIDs.
    fn placeholder(self, n: usize) -> String {
        match self {
            SqlType::State | SqlType::PgLsn | SqlType::Name => {
                format!("${n}::text::{}", self.sql())
            }
            _ => format!("${n}"),
        }
    }
}

/// Marker types for [`Arg`]: the SQL type of an argument, known at compile time, so that an
/// argument is read as the type `sql/` declares or the code does not compile.
pub mod types {
    use super::{SqlType, WireType};

    /// Declares marker types and the SQL type each stands for.
    macro_rules! markers {
        ($($(#[$doc:meta])* $name:ident => $sql:ident,)*) => {
            $(
                $(#[$doc])*
                #[derive(Debug, Clone, Copy)]
                pub struct $name;

                impl WireType for $name {
                    const SQL: SqlType = SqlType::$sql;
                }
            )*
        };
    }

    markers! {
        /// `text`.
        Text => Text,
        /// `name`.
        Name => Name,
        /// `int`.
        Int => Int,
        /// `bigint`.
        BigInt => BigInt,
        /// `bool`.
        Bool => Bool,
        /// `pg_lsn`.
        PgLsn => PgLsn,
        /// `pgautofailover.replication_state`.
        State => State,
    }
}

/// A marker type of [`types`].
pub trait WireType {
    /// Its SQL type.
    const SQL: SqlType;
}

/// An argument of an API function: its position (0-based), its name and, in `T`, its type.
#[derive(Debug)]
pub struct Arg<T> {
    /// Position, from 0.
    pub index: usize,
    /// Name, as declared.
    pub name: &'static str,
    marker: PhantomData<T>,
}

impl<T> Clone for Arg<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Arg<T> {}

impl<T: WireType> Arg<T> {
    /// The argument at `index` named `name`.
    pub const fn new(index: usize, name: &'static str) -> Self {
        Arg {
            index,
            name,
            marker: PhantomData,
        }
    }

    /// Its description, for the catalogue.
    pub const fn info(&self) -> Column {
        Column::new(self.name, T::SQL)
    }
}

/// An argument or a result column: name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub sql_type: SqlType,
}

impl Column {
    /// A column.
    pub const fn new(name: &'static str, sql_type: SqlType) -> Self {
        Column { name, sql_type }
    }
}

/// A C function of the extension.
#[derive(Debug)]
pub struct Function {
    /// Its SQL name (in schema `pgautofailover`).
    pub name: &'static str,
    /// Its C symbol, as `sql/` names it.
    pub symbol: &'static str,
    /// Its arguments, in order (an overload may declare only the first ones).
    pub args: &'static [Column],
    /// Its result columns (OUT parameters), if it returns a record.
    pub out: &'static [Column],
}

impl Function {
    /// `pgautofailover.<name>($1, …)` with the first `count` arguments as parameters.
    pub fn call_with(&self, count: usize) -> String {
        let params: Vec<String> = self
            .args
            .iter()
            .take(count)
            .enumerate()
            .map(|(i, a)| a.sql_type.placeholder(i + 1))
            .collect();
        format!("pgautofailover.{}({})", self.name, params.join(", "))
    }

    /// `pgautofailover.<name>($1, …)` with every argument as a parameter.
    pub fn call(&self) -> String {
        self.call_with(self.args.len())
    }

    /// `SELECT <its result columns> FROM <call>`, states and LSNs as text.
    pub fn select(&self) -> String {
        let columns: Vec<String> = self
            .out
            .iter()
            .map(|c| match c.sql_type {
                SqlType::State | SqlType::PgLsn | SqlType::Name => format!("{}::text", c.name),
                _ => c.name.to_string(),
            })
            .collect();
        format!("SELECT {} FROM {}", columns.join(", "), self.call())
    }
}

/// The monitor's answer to a heartbeat (`node_active`, and `register_node` without the name):
/// the columns of [`api::node_active::FUNCTION`]'s result, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The node's id.
    pub node_id: i64,
    /// Its group.
    pub group_id: i32,
    /// The state it must reach.
    pub state: ReplicationState,
    /// Its candidate priority.
    pub candidate_priority: i32,
    /// Whether it counts in the replication quorum.
    pub replication_quorum: bool,
}

/// The prefix of standbys' replication slots and application names.
pub const STANDBY_PREFIX: &str = "pgautofailover_standby_";

/// The replication slot and application name of the standby with id `node_id`.
pub fn standby_name(node_id: i64) -> String {
    format!("{STANDBY_PREFIX}{node_id}")
}

/// The SQLSTATE the monitor raises for a refusal of class `class`.
pub const fn sqlstate(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::InvalidParameterValue => "22023",
        ErrorClass::UndefinedObject => "42704",
        ErrorClass::InvalidObjectDefinition => "42P17",
        ErrorClass::ObjectNotInPrerequisiteState => "55000",
        ErrorClass::ObjectInUse => OBJECT_IN_USE,
        ErrorClass::FeatureNotSupported => "0A000",
        ErrorClass::UniqueViolation => "23505",
        ErrorClass::Internal => "XX000",
    }
}

/// `object_in_use`: the monitor asks to try again in a moment.
const OBJECT_IN_USE: &str = "55006";

/// The SQLSTATEs after which a keeper tries the same call again later: the monitor asked
/// (`object_in_use`), a lock wait timed out (`lock_not_available`, `group_lock_timeout`), a
/// transaction lost a race (serialization failure, deadlock), or the server is shutting down
/// (`admin_shutdown`).
pub const RETRYABLE_SQLSTATES: [&str; 5] = [OBJECT_IN_USE, "55P03", "40001", "40P01", "57P01"];

/// Whether a call refused with `sqlstate` may succeed if tried again.
pub fn is_retryable(sqlstate: &str) -> bool {
    RETRYABLE_SQLSTATES.contains(&sqlstate)
}

#[cfg(test)]
mod tests;
